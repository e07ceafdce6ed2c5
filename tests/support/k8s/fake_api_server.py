#!/usr/bin/env python3
"""A stand-in for the Kubernetes API server's pod endpoints, for tests only.

It answers as https://kubernetes.io/docs/reference/using-api/api-concepts/ describes:
  GET /api/v1/pods?fieldSelector=spec.nodeName=N[&limit=L&continue=C]
      -> a PodList: {"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"R",
         "continue":"..."},"items":[...]} ("Retrieving large results sets in chunks")
  GET /api/v1/pods?watch=1&resourceVersion=R&allowWatchBookmarks=true&timeoutSeconds=T&...
      -> HTTP/1.1 chunked, one JSON object per line: {"type":"ADDED|MODIFIED|DELETED","object":
         <Pod>}, {"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":
         {"resourceVersion":"R"}}} ("Watch bookmarks"), and, when R is older than what the server
         keeps, {"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure",
         "message":"too old resource version: ...","reason":"Expired","code":410}}
         ("Efficient detection of changes": 410 Gone, the client must list again)
Requests without "Authorization: Bearer <token>" get 401 with a Status object.
Pods are served as the test gives them, whole: metadata.annotations, spec.hostname and
status.containerStatuses / initContainerStatuses (containerID "<runtime>://<id>", as the kubelet
reports it once a container exists, https://kubernetes.io/docs/reference/kubernetes-api/
workload-resources/pod-v1/#PodStatus) come through LIST and WATCH unchanged; a status the
kubelet fills in later is a MODIFIED event (POST /_test/pods again with the status added).

Test control (not part of the Kubernetes API): POST /_test/pods with a Pod JSON body adds or
replaces it (one ADDED/MODIFIED event); DELETE /_test/pods/<uid> deletes it; POST /_test/expire
forgets every event so far (open watches, and later ones from an older resourceVersion, get
the 410 ERROR event).

Writes ca.crt (a self-signed certificate for 127.0.0.1, its own CA) and token into --sa-dir and
prints "listening on port N" once it accepts connections.
"""
import argparse
import json
import os
import secrets
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

STATE = threading.Condition()
PODS = {}     # uid -> pod object
EVENTS = []   # (rv, type, pod)
RV = [100]    # current resourceVersion
OLDEST = [0]  # watches from a resourceVersion below this get 410
EXPIRED = [0]  # bumped by /_test/expire: open watches end with a 410 ERROR event


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def record(kind, pod):
    with STATE:
        RV[0] += 1
        pod.setdefault("metadata", {})["resourceVersion"] = str(RV[0])
        if kind == "DELETED":
            PODS.pop(pod["metadata"]["uid"], None)
        else:
            PODS[pod["metadata"]["uid"]] = pod
        EVENTS.append((RV[0], kind, json.loads(json.dumps(pod))))
        STATE.notify_all()


def node_of(pod):
    return pod.get("spec", {}).get("nodeName", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    token = ""

    def log_message(self, fmt, *args):
        pass

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        if self.headers.get("Authorization") == "Bearer " + Handler.token:
            return True
        self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        return False

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if not self.authorized():
            return
        if url.path != "/api/v1/pods":
            self.send_json(404, status(404, "NotFound", "the server could not find the resource"))
            return
        node = ""
        selector = q.get("fieldSelector", "")
        if selector.startswith("spec.nodeName="):
            node = selector[len("spec.nodeName="):]
        if q.get("watch") in ("1", "true"):
            self.watch(node, q)
        else:
            self.list(node, q)

    def list(self, node, q):
        with STATE:
            items = [p for p in PODS.values() if not node or node_of(p) == node]
            rv = str(RV[0])
        items.sort(key=lambda p: p["metadata"]["uid"])
        start = int(q.get("continue", "0") or "0")
        limit = int(q.get("limit", "0") or "0")
        page = items[start:start + limit] if limit else items[start:]
        meta = {"resourceVersion": rv}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
        self.send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page})

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, obj):
        line = json.dumps(obj).encode() + b"\n"
        # Two chunks per event: a client must join lines across reads.
        half = len(line) // 2
        self.chunk(line[:half])
        self.chunk(line[half:])

    def watch(self, node, q):
        since = int(q.get("resourceVersion", "0") or "0")
        bookmarks = q.get("allowWatchBookmarks") == "true"
        deadline = time.monotonic() + min(int(q.get("timeoutSeconds", "30")), 60)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if since < OLDEST[0]:
                self.send_event({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %d (%d)" % (since, OLDEST[0]))})
            else:
                self.stream(node, since, bookmarks, deadline)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def stream(self, node, since, bookmarks, deadline):
        last_bookmark = time.monotonic()
        generation = EXPIRED[0]
        while time.monotonic() < deadline:
            if EXPIRED[0] != generation:
                self.send_event({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %d (%d)" % (since, OLDEST[0]))})
                return
            with STATE:
                pending = [e for e in EVENTS if e[0] > since]
                if not pending:
                    STATE.wait(0.2)
                    pending = [e for e in EVENTS if e[0] > since]
                rv = RV[0]
            for ev_rv, kind, pod in pending:
                since = ev_rv
                if not node or node_of(pod) == node:
                    self.send_event({"type": kind, "object": pod})
            if bookmarks and time.monotonic() - last_bookmark > 1.0:
                since = max(since, rv)
                self.send_event({"type": "BOOKMARK", "object": {
                    "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": str(since)}}})
                last_bookmark = time.monotonic()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/_test/pods":
            pod = json.loads(body)
            kind = "MODIFIED" if pod["metadata"]["uid"] in PODS else "ADDED"
            record(kind, pod)
            self.send_json(200, {"resourceVersion": str(RV[0])})
        elif self.path == "/_test/expire":
            with STATE:
                EVENTS.clear()
                OLDEST[0] = RV[0] + 1
                RV[0] += 1
                EXPIRED[0] += 1
                STATE.notify_all()
            self.send_json(200, {})
        else:
            self.send_json(404, {})

    def do_DELETE(self):
        uid = self.path.rsplit("/", 1)[-1]
        with STATE:
            pod = PODS.get(uid)
        if pod is None:
            self.send_json(404, {})
            return
        record("DELETED", pod)
        self.send_json(200, {})


def make_certificate(sa_dir):
    cert = os.path.join(sa_dir, "ca.crt")
    key = os.path.join(sa_dir, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sa-dir", required=True)
    ap.add_argument("--pods", help="JSON file: a list of Pod objects present at start")
    args = ap.parse_args()
    os.makedirs(args.sa_dir, exist_ok=True)
    cert, key = make_certificate(args.sa_dir)
    Handler.token = secrets.token_hex(16)
    with open(os.path.join(args.sa_dir, "token"), "w") as f:
        f.write(Handler.token + "\n")
    if args.pods:
        with open(args.pods) as f:
            for pod in json.load(f):
                record("ADDED", pod)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening on port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
