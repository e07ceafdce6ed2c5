#!/usr/bin/env python3
"""A stand-in for a container runtime's HTTP API on a unix socket, for tests only.

  GET /containers/<id>/json  -> the Docker Engine API's ContainerInspectResponse, trimmed to
      Id, Name, Image and Config {Hostname, Image, Labels}
      (https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Container/operation/ContainerInspect)
  GET /containers/<id>       -> CRI-O's container information: name, pid, image, labels, ...
      (ContainerInfo, https://github.com/cri-o/cri-o/blob/main/pkg/types/types.go)
  Unknown ids get 404 with a message, as both do.

The id chooses the answer, so one server covers the broken variants:
  a...a (64)  the container, with the labels the kubelet sets
  b...b       200 with a body that is not JSON
  c...c       200 with a 10 MB JSON body
  d...d       answers only after 5 s
  e...e       200 with labels and image of the wrong types
Prints "listening" once it accepts connections.
"""
import json
import os
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler

LABELS = {"io.kubernetes.pod.name": "web-1", "io.kubernetes.pod.namespace": "shop",
          "io.kubernetes.container.name": "app",
          "io.kubernetes.pod.uid": "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708"}
IMAGE = "registry.example/web:1.2"


def docker(cid, labels, image):
    return {"Id": cid, "Name": "/k8s_app_web-1_shop", "Image": "sha256:" + "1" * 64,
            "Config": {"Hostname": "web-1", "Image": image, "Labels": labels}}


def crio(cid, labels, image):
    return {"name": "k8s_app_web-1_shop_0", "pid": 4242, "image": image,
            "image_ref": "sha256:" + "1" * 64, "created_time": 0, "labels": labels,
            "annotations": {}, "crio_annotations": {}, "log_path": "", "root": "",
            "sandbox": "d" * 64, "ip_addresses": []}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def address_string(self):
        return "unix"

    def send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) < 3 or parts[1] != "containers":
            self.send(404, b'{"message":"page not found"}')
            return
        cid = parts[2]
        shape = docker if len(parts) == 4 and parts[3] == "json" else crio
        kind = cid[:1] if cid == cid[:1] * 64 else ""
        if kind == "a":
            self.send(200, json.dumps(shape(cid, LABELS, IMAGE)).encode())
        elif kind == "b":
            self.send(200, b"<html>not json")
        elif kind == "c":
            self.send(200, b'{"pad":"' + b"x" * (10 << 20) + b'"}')
        elif kind == "d":
            time.sleep(5)
            self.send(200, json.dumps(shape(cid, LABELS, IMAGE)).encode())
        elif kind == "e":
            self.send(200, json.dumps(shape(cid, {"io.kubernetes.pod.name": 7}, [1])).encode())
        else:
            self.send(404, json.dumps({"message": "No such container: " + cid}).encode())


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    server = Server(path, Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
