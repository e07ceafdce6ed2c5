"""The fidelity benchmark's client: sends one GET per id to URL_PREFIX + <id>, CONCURRENCY at a
time (a thread each, a new connection per request), each with its own X-Amzn-Trace-Id, so every
request is a trace whose root and first parent are known in advance.

Usage: python3 load.py URL_PREFIX CONCURRENCY < ids
stdin: one "ID ROOT PARENT" line per request. stdout: one JSON object per request,
{"id", "status", "error"} (status 0 when the request failed), in completion order.
"""
import concurrent.futures
import http.client
import json
import sys
import urllib.parse

URL = urllib.parse.urlsplit(sys.argv[1])
CONCURRENCY = int(sys.argv[2])


def send(ident, root, parent):
    header = "Root=%s;Parent=%s;Sampled=1" % (root, parent)
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=60)
    try:
        conn.request("GET", URL.path + ident, headers={"X-Amzn-Trace-Id": header})
        resp = conn.getresponse()
        resp.read()
        return {"id": ident, "status": resp.status, "error": ""}
    except OSError as e:
        return {"id": ident, "status": 0, "error": str(e)}
    finally:
        conn.close()


def main():
    work = [line.split() for line in sys.stdin if line.strip()]
    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for result in pool.map(lambda w: send(*w), work):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
