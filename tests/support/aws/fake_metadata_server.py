#!/usr/bin/env python3
"""A stand-in for the AWS metadata endpoints, for tests only.

EC2 Instance Metadata Service (IMDS), answering as
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
describes it with IMDSv2 required:
  PUT /latest/api/token  (X-aws-ec2-metadata-token-ttl-seconds: 1..21600)
      -> 200, the token as text/plain; a missing or out-of-range TTL -> 400
  GET /latest/dynamic/instance-identity/document  (X-aws-ec2-metadata-token: <token>)
      -> 200, the identity document (fixtures/aws/identity-document.json,
         https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/retrieve-iid.html)
  GET /latest/meta-data/tags/instance[/<key>]
      -> the tag keys, one a line, or one tag's value, text/plain
         (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html)
  A GET without a valid token -> 401 (IMDSv2 required).
ECS task metadata endpoint v4
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4.html):
  GET /v4/<id>       -> this container's metadata (fixtures/aws/ecs-container.json)
  GET /v4/<id>/task  -> the task's metadata (fixtures/aws/ecs-task.json)

--mode makes it misbehave (on every path, or only on those starting with a --only prefix):
  normal      as above
  v1-only     an instance without IMDSv2: the token PUT gets 404 (the AWS SDKs fall back to
              IMDSv1 on 403, 404 or 405,
              https://docs.aws.amazon.com/sdkref/latest/guide/feature-imds-credentials.html)
              and GETs are answered without a token
  hang        reads the request, never answers
  slowloris   announces a 4 KiB body and sends one byte a second
  404         404 for everything
  garbage     200 with bytes that are not JSON (nor a token)
  huge        200 with a 10 MB body and no Content-Length (ends when the connection closes)
  wrong-types 200 with the documents' fields present but of the wrong JSON types

Every request is appended to --log as one JSON line: {"method", "path", "token", "ttl"}
(the token and TTL headers as received, null when absent). Prints "listening on port N" once it
accepts connections.
"""
import argparse
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures", "aws")
ARGS = None
TOKENS = set()
LOG_LOCK = threading.Lock()
STOP = threading.Event()
IMDS_KINDS = ("document", "imds-tags", "imds-tag")

WRONG_TYPES = {
    "document": {"instanceId": 1234567890, "availabilityZone": ["us-west-2b"],
                 "instanceType": {"name": "t2.micro"}, "imageId": True,
                 "accountId": 123456789012, "region": None},
    "container": {"DockerId": 42, "Name": ["curl"], "ContainerARN": {}},
    "task": {"TaskARN": 7, "Family": ["curltest"], "Cluster": False, "LaunchType": 1,
             "AvailabilityZone": {}},
}


def fixture(name):
    with open(os.path.join(ARGS.fixtures, name), "rb") as f:
        return f.read()


def tags():
    return json.loads(fixture("instance-tags.json"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        line = {"method": self.command, "path": self.path,
                "token": self.headers.get("X-aws-ec2-metadata-token"),
                "ttl": self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")}
        with LOG_LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(line) + "\n")

    def mode(self):
        if ARGS.only and not any(self.path.startswith(p) for p in ARGS.only):
            return "normal"
        return ARGS.mode

    def send(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        self.record()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.misbehave("token"):
            return
        if self.path != "/latest/api/token":
            return self.send(404, b"Not Found")
        if self.mode() == "v1-only":
            return self.send(404, b"Not Found")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.send(400, b"Bad Request")
        token = secrets.token_urlsafe(42)
        TOKENS.add(token)
        self.send(200, token.encode())

    def do_GET(self):
        self.record()
        kind, body = self.route()
        if kind is None:
            return self.send(404, b"Not Found")
        if kind in IMDS_KINDS and self.mode() != "v1-only":
            if self.headers.get("X-aws-ec2-metadata-token") not in TOKENS:
                return self.send(401, b"Unauthorized")
        if self.misbehave(kind):
            return
        ctype = "application/json" if kind in ("document", "container", "task") else "text/plain"
        self.send(200, body, ctype)

    def route(self):
        path = self.path.split("?", 1)[0]
        if path == "/latest/dynamic/instance-identity/document":
            return "document", fixture("identity-document.json")
        prefix = "/latest/meta-data/tags/instance"
        if path == prefix:
            return "imds-tags", "\n".join(tags().keys()).encode()
        if path.startswith(prefix + "/"):
            value = tags().get(path[len(prefix) + 1:])
            return ("imds-tag", value.encode()) if value is not None else (None, None)
        if path.startswith("/v4/"):
            rest = path[len("/v4/"):].rstrip("/")
            if rest.endswith("/task"):
                return "task", fixture("ecs-task.json")
            if rest and "/" not in rest:
                return "container", fixture("ecs-container.json")
        return None, None

    # Answers as the mode says; False when the request is to be answered normally.
    def misbehave(self, kind):
        mode = self.mode()
        if mode in ("normal", "v1-only"):
            return False
        if mode == "hang":
            STOP.wait()
            return True
        if mode == "404":
            self.send(404, b"Not Found")
        elif mode == "garbage":
            self.send(200, b"\x00\xff<html>not json {{{\x01", "text/html")
        elif mode == "slowloris":
            self.slowloris()
        elif mode == "huge":
            self.huge()
        elif mode == "wrong-types":
            if kind not in WRONG_TYPES:
                return False
            self.send(200, json.dumps(WRONG_TYPES[kind]).encode(), "application/json")
        return True

    def slowloris(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "4096")
        self.end_headers()
        self.wfile.flush()
        try:
            for _ in range(4096):
                if STOP.wait(1):
                    break
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up
        self.close_connection = True

    def huge(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            self.wfile.write(b'{"instanceId":"')
            for _ in range(10 * 1024 * 1024 // len(chunk)):
                self.wfile.write(chunk)
            self.wfile.write(b'"}')
        except OSError:
            pass  # the client stopped reading past its cap
        self.close_connection = True


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", default="normal",
                   choices=["normal", "v1-only", "hang", "slowloris", "404", "garbage", "huge",
                            "wrong-types"])
    p.add_argument("--only", action="append", default=[],
                   help="misbehave only on paths starting with this prefix (repeatable)")
    p.add_argument("--log", default=os.devnull)
    p.add_argument("--fixtures", default=FIXTURES)
    ARGS = p.parse_args()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((ARGS.host, ARGS.port), Handler)
    print(f"listening on port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        STOP.set()


if __name__ == "__main__":
    sys.exit(main())
