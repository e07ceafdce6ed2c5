"""A thread-per-request service of the fidelity benchmark: the standard library's
ThreadingHTTPServer, no tracing code.

Usage: python3 threaded.py PORT [DOWN_URL_PREFIX]
Listens on 0.0.0.0:PORT and prints "listening on port PORT". A request for /<hop>/<id>:
  - leaf (no DOWN_URL_PREFIX): 200 "<hop> <id>\n";
  - caller: waits a random 0-20 ms (time.sleep), GETs DOWN_URL_PREFIX + <id> on a new
    connection (http.client), and answers 200 with that body after its own line (502 when the
    call failed or answered >= 400).
"""
import http.client
import http.server
import random
import sys
import time
import urllib.parse

PORT = int(sys.argv[1])
DOWN = urllib.parse.urlsplit(sys.argv[2]) if len(sys.argv) > 2 else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) != 3:
            return self.reply(404, b"no route\n")
        line = ("%s %s\n" % (parts[1], parts[2])).encode()
        if DOWN is None:
            return self.reply(200, line)
        time.sleep(random.uniform(0, 0.020))
        conn = http.client.HTTPConnection(DOWN.hostname, DOWN.port, timeout=30)
        try:
            conn.request("GET", DOWN.path + parts[2])
            resp = conn.getresponse()
            body = resp.read()
            return self.reply(200 if resp.status < 400 else 502, line + body)
        except OSError as e:
            return self.reply(502, line + ("call failed: %s\n" % e).encode())
        finally:
            conn.close()

    def log_message(self, format, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # concurrency 64 fans out to more connections than the default 5


def main():
    server = Server(("0.0.0.0", PORT), Handler)
    print("listening on port %d" % PORT, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
