"""An asyncio service of the fidelity benchmark: aiohttp's web server and client (Debian's
python3-aiohttp), no tracing code; every request is served on the one event-loop thread.

Usage: python3 aio_hop.py PORT DOWN_URL_PREFIX
Listens on 0.0.0.0:PORT and prints "listening on port PORT". A request for /<hop>/<id> waits a
random 0-20 ms (asyncio.sleep), GETs DOWN_URL_PREFIX + <id> through one shared ClientSession
(pooled keep-alive connections), and answers 200 with that body after its own line (502 when the
call failed or answered >= 400).
"""
import asyncio
import random
import sys

import aiohttp
from aiohttp import web

PORT = int(sys.argv[1])
DOWN = sys.argv[2]


async def handle(request):
    hop, ident = request.match_info["hop"], request.match_info["id"]
    line = "%s %s\n" % (hop, ident)
    await asyncio.sleep(random.uniform(0, 0.020))
    try:
        async with request.app["session"].get(DOWN + ident) as resp:
            body = await resp.text()
            return web.Response(status=200 if resp.status < 400 else 502, text=line + body)
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        return web.Response(status=502, text=line + "call failed: %s\n" % e)


async def start_session(app):
    app["session"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))


async def close_session(app):
    await app["session"].close()


def main():
    app = web.Application()
    app.router.add_get("/{hop}/{id}", handle)
    app.on_startup.append(start_session)
    app.on_cleanup.append(close_session)
    print("listening on port %d" % PORT, flush=True)
    web.run_app(app, host="0.0.0.0", port=PORT, print=None, access_log=None, backlog=512)


if __name__ == "__main__":
    main()
