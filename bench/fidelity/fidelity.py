#!/usr/bin/env python3
"""Passport's fidelity benchmark: how many segments get exactly the parent they should have.

A multi-hop topology of unmodified services, each in its own network namespace, all traced by one
agent, is driven with requests whose ids every hop passes downstream; so the parent each
segment must have (its caller's call subsegment for that very request) is known, and the
documents the agent (and the X-Ray SDK of the Express hop) send to a loopback UDP collector are
counted against it: per hop and overall, for sequential requests and for requests sent 8 and 64
at a time.

    client ─▶ py-a (Python, thread per request)
                └▶ node-b (Node http server; three calls per request, in a random order)
                     ├▶ nginx /cka/ (Node's keep-alive global agent) ─▶ py-d (upstream keepalive)
                     ├▶ nginx /cnk/ (http.get with agent: false)      ─▶ py-d (no keepalive)
                     └▶ aio-e (fetch) ─▶ go-f (aiohttp client)
                                            └▶ sdk-g (Go net/http client)
                                                 └▶ py-d (X-Ray SDK for Node, keep-alive)

Every service that calls out waits a random 0-20 ms first. nginx runs 2 worker processes.
`--topology five` is a short form of the same services (a ctest, fidelity.five_service_chains):

    client ─▶ py-a ─▶ node-b ├▶ nginx /cka/ (keep-alive agent) ─▶ py-d (upstream keepalive)
                             └▶ sdk-g (keep-alive agent) ─▶ py-d (X-Ray SDK for Node)

and `--require-chains` turns the counts into pass or fail (chain_failures() says what is checked).

Run as root (it creates network namespaces and starts the agent, which loads BPF programs):
    bench/fidelity/fidelity.py [--build DIR] [--quick] [--json] [--topology five]
See bench/README.md for the columns, options and requirements. `run_fidelity()` is the same
run as a function that returns the counts, for tests.
"""
import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICES = os.path.join(HERE, "services")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's interpreter: python3-aiohttp is installed for it
PORT = 8080  # every service listens on it, each in its own namespace

# Two shapes of the topology. Each has its network namespaces (short names; the run's tag is
# prepended), the veth pairs joining them: (namespace, namespace, subnet third octet), with
# addresses 10.201.N.1 and 10.201.N.2, and the hops whose callee segments are measured:
# (name, caller's path prefix or None for the client, callee's path prefix). A request with id X
# reaches each callee at /<callee>/X. "event_loop_callers" are the callers (path prefixes) that
# serve many requests on one thread (Node, aiohttp; Go's goroutines on a thread pool): they may
# place a call under another of their requests, and must then mark its link inferred.
SEVEN = {
    "name": "seven",
    "namespaces": ["cl", "a", "b", "c", "d", "e", "f", "g"],
    "links": [("cl", "a", 1), ("a", "b", 2), ("b", "c", 3), ("b", "e", 4), ("c", "d", 5),
              ("e", "f", 6), ("f", "g", 7), ("g", "d", 8)],
    "hops": [
        ("client → python", None, "a"),
        ("python → node", "a", "b"),
        ("node keep-alive agent → nginx", "b", "cka"),
        ("node agent:false → nginx", "b", "cnk"),
        ("node fetch → aiohttp", "b", "e"),
        ("nginx upstream keepalive → python", "cka", "dka"),
        ("nginx → python", "cnk", "dnk"),
        ("aiohttp → go", "e", "f"),
        ("go → express+sdk", "f", "g"),
        ("express+sdk → python", "g", "dg"),
    ],
    "event_loop_callers": ["b", "e", "f"],
}
# The short form: Python → Node → nginx → Python, and Node → Express + X-Ray SDK → Python.
FIVE = {
    "name": "five",
    "namespaces": ["cl", "a", "b", "c", "d", "g"],
    "links": [("cl", "a", 1), ("a", "b", 2), ("b", "c", 3), ("c", "d", 5), ("b", "g", 7),
              ("g", "d", 8)],
    "hops": [
        ("client → python", None, "a"),
        ("python → node", "a", "b"),
        ("node keep-alive agent → nginx", "b", "cka"),
        ("node keep-alive agent → express+sdk", "b", "g"),
        ("nginx upstream keepalive → python", "cka", "dka"),
        ("express+sdk → python", "g", "dg"),
    ],
    "event_loop_callers": ["b"],
}
SHAPES = {"seven": SEVEN, "five": FIVE}
NAMESPACES, LINKS, HOPS = SEVEN["namespaces"], SEVEN["links"], SEVEN["hops"]
OUTCOMES = ["exact", "wrong_parent", "missing_parent", "other_trace", "missing_doc"]
CALL_PLACES = ["call_own", "call_elsewhere", "call_missing"]
# Besides its outcome, each hop counts "linked": the callee's parent is the call subsegment made
# for this very request, wherever that subsegment sits (the link of this hop alone is right;
# an "other trace" with it linked was broken further up the chain).

FULL_LEVELS = [(1, 300), (8, 300), (64, 320)]
QUICK_LEVELS = [(1, 20), (8, 48), (64, 128)]


def addr(ns_a, ns_b, links=LINKS):
    """The address of `ns_b`'s end of the link between the two namespaces."""
    for x, y, n in links:
        if (x, y) == (ns_a, ns_b):
            return "10.201.%d.2" % n
        if (y, x) == (ns_a, ns_b):
            return "10.201.%d.1" % n
    raise KeyError((ns_a, ns_b))


def url(ns_from, ns_to, prefix, links=LINKS):
    return "http://%s:%d/%s/" % (addr(ns_from, ns_to, links), PORT, prefix)


def log(msg):
    print("fidelity: " + msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# Namespaces, processes, collectors


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class Topology:
    """Namespaces and veth links: build() makes them, close() removes what was made."""

    def __init__(self, tag, shape=SEVEN):
        self.tag = tag
        self.shape = shape
        self.made = []

    def url(self, ns_from, ns_to, prefix):
        return url(ns_from, ns_to, prefix, self.shape["links"])

    def build(self):
        for short in self.shape["namespaces"]:
            name = self.ns(short)
            ip("netns", "add", name)
            self.made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        for x, y, n in self.shape["links"]:
            end_x, end_y = "%s%dx" % (self.tag, n), "%s%dy" % (self.tag, n)
            ip("link", "add", end_x, "type", "veth", "peer", "name", end_y)
            try:
                ip("link", "set", end_x, "netns", self.ns(x))
                ip("link", "set", end_y, "netns", self.ns(y))
            except RuntimeError:
                ip("link", "del", end_x, check=False)  # still in this namespace
                raise
            ip("-n", self.ns(x), "addr", "add", "10.201.%d.1/24" % n, "dev", end_x)
            ip("-n", self.ns(y), "addr", "add", "10.201.%d.2/24" % n, "dev", end_y)
            ip("-n", self.ns(x), "link", "set", end_x, "up")
            ip("-n", self.ns(y), "link", "set", end_y, "up")

    def ns(self, short):
        return "%s-%s" % (self.tag, short)

    def wrap(self, short, argv):
        return ["ip", "netns", "exec", self.ns(short), *argv]

    def close(self):
        for name in reversed(self.made):  # deleting a namespace deletes its veth ends
            ip("netns", "del", name, check=False)
        self.made = []


class Processes:
    """Child processes started by this run, stopped by pid (SIGTERM, then SIGKILL)."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.procs = {}

    def start(self, name, argv, env=None, cwd=None):
        out = open(os.path.join(self.logdir, name + ".out"), "wb")
        err = open(os.path.join(self.logdir, name + ".err"), "wb")
        full_env = dict(os.environ)
        for key in ("AWS_XRAY_TRACING_NAME", "OTEL_SERVICE_NAME", "AWS_XRAY_DAEMON_ADDRESS"):
            full_env.pop(key, None)
        full_env.update(env or {})
        with out, err:
            p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=full_env, cwd=cwd, start_new_session=True)
        self.procs[name] = p
        return p

    def wait_for_text(self, name, text, timeout=30, stream="out"):
        path = os.path.join(self.logdir, "%s.%s" % (name, stream))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(path, "rb") as f:
                if text.encode() in f.read():
                    return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("%s did not say %r; its stderr:\n%s" % (name, text, self.tail(name)))

    def tail(self, name, stream="err", size=2000):
        with open(os.path.join(self.logdir, "%s.%s" % (name, stream)), "rb") as f:
            return f.read()[-size:].decode(errors="replace")

    def stop(self, name, sig=signal.SIGTERM, timeout=10):
        p = self.procs.pop(name, None)
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)


CLONE_NEWNET = 0x40000000


def udp_socket_in_netns(netns):
    """A UDP socket bound to 127.0.0.1:2000 inside `netns` (setns on this thread, then back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open("/run/netns/" + netns, os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + netns)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 2000))
        finally:
            if libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
    return s


class Collector:
    """Receives X-Ray daemon datagrams ('{"format":"json","version":1}\\n' + document) on
    sockets, keeping each document with the name of the socket it came on."""

    def __init__(self):
        self.docs = []
        self.bad = 0
        self.lock = threading.Lock()
        self.threads = []
        self.socks = []

    def listen(self, source, sock):
        sock.settimeout(0.2)
        self.socks.append(sock)
        t = threading.Thread(target=self._loop, args=(source, sock), daemon=True)
        t.start()
        self.threads.append(t)

    def _loop(self, source, sock):
        while sock.fileno() >= 0:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            head, _, body = data.partition(b"\n")
            try:
                if json.loads(head).get("format") != "json":
                    raise ValueError("format")
                doc = json.loads(body)
            except ValueError:
                with self.lock:
                    self.bad += 1
                continue
            with self.lock:
                self.docs.append((source, doc))

    def count(self):
        with self.lock:
            return len(self.docs)

    def snapshot(self):
        with self.lock:
            return list(self.docs)

    def close(self):
        for s in self.socks:
            s.close()
        for t in self.threads:
            t.join(1)


# ------------------------------------------------------------------------------------------
# Services


def nginx_config(d, logs, links=LINKS):
    upstream = "%s:%d" % (addr("c", "d", links), PORT)
    return """daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {logs}/nginx-error.log warn;
events {{ worker_connections 2048; }}
http {{
  access_log off;
  client_body_temp_path {d}/client_body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream pooled {{ server {up}; keepalive 32; }}
  upstream fresh {{ server {up}; }}
  server {{
    listen {port} backlog=512;
    keepalive_requests 100000;
    location /cka/ {{
      proxy_pass http://pooled/dka/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location /cnk/ {{ proxy_pass http://fresh/dnk/; }}
  }}
}}
""".format(d=d, logs=logs, up=upstream, port=PORT)


def build_go(workdir):
    out = os.path.join(workdir, "go_hop")
    env = dict(os.environ, GOPROXY="off", GOFLAGS="", CGO_ENABLED="0")
    r = subprocess.run(["go", "build", "-o", out, os.path.join(SERVICES, "go_hop.go")],
                       capture_output=True, text=True, env=env, cwd=workdir)
    if r.returncode != 0:
        raise RuntimeError("go build failed:\n" + r.stderr)
    return out


def service_list(topo, nginx_dir, logdir, go_binary, npm_modules):
    """(name, namespace, argv, environment) of each service of the topology's shape, leaves
    first."""
    py, u = SYSTEM_PYTHON, topo.url
    threaded = os.path.join(SERVICES, "threaded.py")
    nginx = ["/usr/sbin/nginx", "-p", nginx_dir + "/", "-e", os.path.join(logdir, "nginx-error.log"),
             "-c", os.path.join(nginx_dir, "nginx.conf")]
    sdk_env = {"NODE_PATH": npm_modules, "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}
    node = ["node", os.path.join(SERVICES, "node_hop.js"), str(PORT)]
    sdk = ["node", os.path.join(SERVICES, "sdk_hop.js"), str(PORT), "sdk-g", u("g", "d", "dg")]
    if topo.shape is FIVE:
        return [
            ("py-d", "d", [py, threaded, str(PORT)], {}),
            ("nginx", "c", nginx, {}),
            ("sdk-g", "g", sdk, sdk_env),
            ("node-b", "b", node + ["keepalive=" + u("b", "c", "cka"),
                                    "keepalive=" + u("b", "g", "g")], {}),
            ("py-a", "a", [py, threaded, str(PORT), u("a", "b", "b")], {}),
        ]
    return [
        ("py-d", "d", [py, threaded, str(PORT)], {}),
        ("nginx", "c", nginx, {}),
        ("sdk-g", "g", sdk, sdk_env),
        ("go-f", "f", [go_binary, str(PORT), u("f", "g", "g")], {}),
        ("aio-e", "e", [py, os.path.join(SERVICES, "aio_hop.py"), str(PORT), u("e", "f", "f")], {}),
        ("node-b", "b", node + ["keepalive=" + u("b", "c", "cka"), "noagent=" + u("b", "c", "cnk"),
                                "fetch=" + u("b", "e", "e")], {}),
        ("py-a", "a", [py, threaded, str(PORT), u("a", "b", "b")], {}),
    ]


def start_services(topo, procs, workdir, go_binary, npm_modules):
    """Starts every service in its namespace; returns the pids the agent must trace."""
    nginx_dir = os.path.join(workdir, "nginx")
    os.makedirs(nginx_dir)
    with open(os.path.join(nginx_dir, "nginx.conf"), "w") as f:
        f.write(nginx_config(nginx_dir, procs.logdir, topo.shape["links"]))
    services = service_list(topo, nginx_dir, procs.logdir, go_binary, npm_modules)
    pids = []
    for name, ns, argv, env in services:
        env = dict(env, AWS_XRAY_TRACING_NAME=name, PYTHONUNBUFFERED="1")
        pids.append(procs.start(name, topo.wrap(ns, argv), env=env, cwd=workdir).pid)
    for name, _, _, _ in services:
        if name == "nginx":
            wait_for_port(topo, "c", procs, name)
        else:
            procs.wait_for_text(name, "listening on port")
    return pids


def wait_for_port(topo, ns, procs, name, timeout=20):
    end = time.monotonic() + timeout
    probe = "import socket; socket.create_connection(('127.0.0.1', %d), 1).close()" % PORT
    while time.monotonic() < end:
        if subprocess.run(topo.wrap(ns, [SYSTEM_PYTHON, "-c", probe]),
                          capture_output=True).returncode == 0:
            return
        if procs.procs[name].poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError("%s is not listening; its stderr:\n%s" % (name, procs.tail(name)))


# ------------------------------------------------------------------------------------------
# Agent and load


def start_agent(procs, agent, pids, port, workdir, extra_args=()):
    rules = os.path.join(workdir, "sampling-rules.json")
    with open(rules, "w") as f:
        f.write('{"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]}')
    argv = [agent, "--daemon-address", "127.0.0.1:%d" % port, "--sampling-rules", rules,
            "--metrics-address", "off", "--summary-interval", "0"]
    for pid in pids:
        argv += ["--pid", str(pid)]
    procs.start("agent", argv + list(extra_args))
    procs.wait_for_text("agent", "passport: ready", timeout=60, stream="err")


def stop_agent(procs):
    code = procs.stop("agent", sig=signal.SIGINT, timeout=60)
    counters = {}
    with open(os.path.join(procs.logdir, "agent.err"), errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "counter" and parts[2].isdigit():
                counters[parts[1]] = int(parts[2])
    return code, counters


def new_requests(label, n):
    """n (id, root, parent) triples; the ids name the level so levels never share one."""
    now = int(time.time())
    out = []
    for i in range(n):
        ident = "%s-%04d-%06x" % (label, i, random.getrandbits(24))
        root = "1-%08x-%024x" % (now, random.getrandbits(96) | 1)
        parent = "%016x" % (random.getrandbits(64) | 1)
        out.append((ident, root, parent))
    return out


def send_load(topo, procs, requests, concurrency):
    stdin = "".join("%s %s %s\n" % r for r in requests)
    argv = topo.wrap("cl", [SYSTEM_PYTHON, os.path.join(SERVICES, "load.py"),
                            topo.url("cl", "a", "a"), str(concurrency)])
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError("load client failed:\n" + r.stderr)
    return {res["id"]: res for res in map(json.loads, r.stdout.split("\n")[:-1])}


def wait_for_documents(collector, expected, quiet=3.0, limit=60.0):
    """Waits until `expected` documents arrived, or none arrived for `quiet` seconds."""
    end = time.monotonic() + limit
    last, last_change = collector.count(), time.monotonic()
    while time.monotonic() < end and collector.count() < expected:
        time.sleep(0.2)
        n = collector.count()
        if n != last:
            last, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > quiet:
            break


# ------------------------------------------------------------------------------------------
# Analysis


def url_path(node):
    u = (node.get("http") or {}).get("request", {}).get("url")
    return urllib.parse.urlsplit(u).path if isinstance(u, str) else None


class Index:
    """Segments by URL path, call subsegments by URL path with the segment that holds them."""

    def __init__(self, docs):
        self.segments = {}  # path -> segment document
        self.calls = {}  # path -> [(subsegment, holding segment id)]
        self.by_id = {}  # segment id -> segment document
        self.holder = {}  # subsegment id -> holding segment id
        self.sub_by_id = {}  # subsegment id -> subsegment
        loose = []
        # The SDK's documents last: for the SDK-instrumented service they are the reference.
        for source, doc in sorted(docs, key=lambda d: d[0] == "sdk"):
            if doc.get("type") == "subsegment":
                loose.append(doc)
                continue
            if doc.get("in_progress") and doc.get("id") in self.by_id:
                continue
            self.by_id[doc.get("id")] = doc
            path = url_path(doc)
            if path and (path not in self.segments or not doc.get("in_progress")):
                self.segments[path] = doc
            self._walk(doc, doc.get("id"))
        for doc in loose:  # independent subsegments: held by the segment their parent is in
            holder = doc.get("parent_id")
            holder = holder if holder in self.by_id else self.holder.get(holder)
            if holder is not None:
                self._add_call(doc, holder)
                self._walk(doc, holder)

    def _walk(self, node, holder):
        for sub in node.get("subsegments") or []:
            self._add_call(sub, holder)
            self._walk(sub, holder)

    def _add_call(self, sub, holder):
        self.holder[sub.get("id")] = holder
        self.sub_by_id[sub.get("id")] = sub
        path = url_path(sub)
        if path:
            self.calls.setdefault(path, []).append((sub, holder))

    def describe_parent(self, parent, ident):
        """Where a parent id that is not the segment's own call points."""
        if not parent:
            return "no parent"
        if parent in self.by_id:
            return "under a segment"
        sub = self.sub_by_id.get(parent)
        if sub is None:
            return "parent id in no document"
        hop = (url_path(sub) or "").split("/")
        if len(hop) != 3:
            return "under a subsegment that is no call"
        if hop[2] == ident:
            return "under this request's call to /%s/ (a hop skipped)" % hop[1]
        return "under another request's call to /%s/" % hop[1]

    def call_for(self, path, caller_segment):
        """The call subsegment for `path`, and whether the caller's own segment holds it."""
        found = self.calls.get(path) or []
        for sub, holder in found:
            if caller_segment is not None and holder == caller_segment.get("id"):
                return sub, True
        return (found[0][0], False) if found else (None, False)


def classify(index, hop, request):
    """(outcome, call placement, linked, detail, call) of one hop of one request. `detail` says
    where the parent of a segment that is not under its own call points; `call` is the caller's
    call subsegment for it (None for the client's hop or when there is none)."""
    _, caller, callee = hop
    ident, root, client_parent = request
    path = "/%s/%s" % (callee, ident)
    seg = index.segments.get(path)
    place, call = None, None
    if caller is not None:
        caller_seg = index.segments.get("/%s/%s" % (caller, ident))
        call, own = index.call_for(path, caller_seg)
        place = "call_own" if own else ("call_elsewhere" if call else "call_missing")
    if seg is None:
        return "missing_doc", place, False, None, call
    parent = seg.get("parent_id")
    if caller is None:
        linked = parent == client_parent
    else:
        linked = parent is not None and any(
            sub.get("id") == parent for sub, _ in index.calls.get(path) or [])
    detail = None if linked else index.describe_parent(parent, ident)
    if not parent:
        return "missing_parent", place, linked, detail, call
    if seg.get("trace_id") != root:
        return "other_trace", place, linked, detail, call
    if linked and (caller is None or place == "call_own"):
        return "exact", place, linked, detail, call
    return "wrong_parent", place, linked, detail, call


def analyse(docs, levels, shape=SEVEN):
    index = Index(docs)
    result = []
    for level in levels:
        hops = {name: {k: 0 for k in OUTCOMES + CALL_PLACES + ["linked", "inferred",
                                                              "elsewhere_inferred"]}
                for name, _, _ in shape["hops"]}
        details = {}
        chains_exact = 0
        for request in level["requests"]:
            whole = True
            for hop in shape["hops"]:
                outcome, place, linked, detail, call = classify(index, hop, request)
                hops[hop[0]][outcome] += 1
                hops[hop[0]]["linked"] += linked
                hops[hop[0]]["inferred"] += link_inferred(call)
                hops[hop[0]]["elsewhere_inferred"] += place == "call_elsewhere" and link_inferred(call)
                if place:
                    hops[hop[0]][place] += 1
                if detail:
                    key = "%s: %s" % (hop[0], detail)
                    details[key] = details.get(key, 0) + 1
                whole = whole and outcome == "exact"
            chains_exact += whole
        overall = {k: sum(h[k] for h in hops.values())
                   for k in OUTCOMES + CALL_PLACES + ["linked", "inferred", "elsewhere_inferred"]}
        result.append({
            "concurrency": level["concurrency"],
            "requests": len(level["requests"]),
            "answered_200": level["answered_200"],
            "chains_exact": chains_exact,
            "hops": hops,
            "overall": overall,
            "unlinked_parents": details,
        })
    return result


def link_inferred(call):
    """True when Passport marked a call subsegment's link as inferred (a guess on an event
    loop): metadata.passport.link.inferred."""
    link = ((call or {}).get("metadata") or {}).get("passport", {}).get("link") or {}
    return link.get("inferred") is True


def chain_failures(docs, levels, shape=SEVEN):
    """Per level, the list of broken promises (one line each; empty when all are kept):

    sequential (concurrency 1): every hop of every request is exact (so is its whole chain);
    concurrent: every document arrives; a caller that is not an event loop never places a call
    under another of its requests; an event loop that does marks that call's link inferred; and
    every segment that is not exact has such a misplaced call at or above its hop (so a proxy or
    an SDK under a caller that placed its call right is exact, and no document lands in another
    trace unless a call above it says its link is a guess). Every level: every request answered
    200."""
    index = Index(docs)
    hop_of = {hop[2]: hop for hop in shape["hops"]}
    out = []
    for level in levels:
        failures = []
        if level["answered_200"] != len(level["requests"]):
            failures.append("%d of %d requests answered 200" %
                            (level["answered_200"], len(level["requests"])))
        for request in level["requests"]:
            failures += request_failures(index, shape, hop_of, request, level["concurrency"])
        out.append(failures)
    return out


def request_failures(index, shape, hop_of, request, concurrency):
    """chain_failures' lines for one request, its hops judged from the client down."""
    ident = request[0]
    seen = {}  # callee prefix -> the misplaced call of that hop, or None
    failures = []
    for hop in shape["hops"]:
        name, caller, callee = hop
        outcome, place, _, detail, call = classify(index, hop, request)
        misplaced = seen[callee] = call if place == "call_elsewhere" else None
        where = "%s (%s): " % (ident, name)
        if concurrency == 1:
            if outcome != "exact":
                failures.append(where + outcome + (", " + detail if detail else ""))
            continue
        if outcome == "missing_doc":
            failures.append(where + "no document")
        if misplaced and caller not in shape["event_loop_callers"]:
            failures.append(where + "the call sits in " + holder_of(index, misplaced))
        elif misplaced and not link_inferred(misplaced):
            failures.append(where + "the call sits in " + holder_of(index, misplaced) +
                            ", link not marked inferred")
        if outcome not in ("exact", "missing_doc") and not misplaced_above(seen, hop_of, hop):
            failures.append(where + outcome + (", " + detail if detail else "") +
                            ", though every call above it sits in its own request")
    return failures


def holder_of(index, call):
    """Which segment holds a misplaced call, in words."""
    holder = index.by_id.get(index.holder.get(call.get("id")))
    path = url_path(holder) if holder else None
    if path:
        return "another request's segment (%s)" % path
    return "a segment of its own (made while no request was served, a new trace)"


def misplaced_above(seen, hop_of, hop):
    """Whether this hop's call or a call of a hop above it in the chain sits in another
    request's segment."""
    while hop is not None:
        if seen[hop[2]] is not None:
            return True
        hop = hop_of.get(hop[1])
    return False


# ------------------------------------------------------------------------------------------
# The run


def check_requirements(agent, npm_modules, shape=SEVEN):
    tools = ("ip", "node", "/usr/sbin/nginx") + (("go",) if shape is SEVEN else ())
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        return "missing %s (install them with .ci/install-deps.sh)" % ", ".join(missing)
    if shape is SEVEN and subprocess.run([SYSTEM_PYTHON, "-c", "import aiohttp"],
                                         capture_output=True).returncode:
        return "%s cannot import aiohttp (Debian package python3-aiohttp)" % SYSTEM_PYTHON
    if not os.path.exists(os.path.join(npm_modules, "aws-xray-sdk-express", "package.json")):
        return "the X-Ray SDK for Node is not in %s (run .ci/install-npm.sh)" % npm_modules
    if not os.access(agent, os.X_OK):
        return "no agent binary at %s (build it: cmake --build BUILD --target passport)" % agent
    if os.geteuid() != 0:
        return "must run as root (network namespaces, BPF programs)"
    return ""


@contextlib.contextmanager
def held_lock(path):
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Missing(RuntimeError):
    """Something the run needs is not installed (or not permitted): nothing was started."""


def run_fidelity(agent, levels=FULL_LEVELS, source=None, lock=None, logdir=None, agent_args=(),
                 shape=SEVEN):
    """Runs the topology of `shape` (SEVEN or FIVE) once per (concurrency, requests) level under
    one agent (started with `agent_args` added to its own) and returns
    {"levels": [...], "agent_exit": code, "agent_counters": {...}, ...}. Raises Missing (a
    RuntimeError) when something needed is missing, RuntimeError with the reason when a service
    does not start or answer."""
    source = source or os.path.dirname(os.path.dirname(HERE))
    npm_modules = os.path.join(source, "tests", "fixtures", "npm", "node_modules")
    why = check_requirements(agent, npm_modules, shape)
    if why:
        raise Missing(why)
    workdir = tempfile.mkdtemp(prefix="passport-fidelity-")
    logs = logdir or os.path.join(workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    procs, collector = Processes(logs), Collector()
    topo = Topology("ppf%d" % (os.getpid() % 100000), shape)
    old_handlers = _interrupt_on_signals()
    try:
        go_binary = None
        if shape is SEVEN:
            log("building the Go service")
            go_binary = build_go(workdir)
        topo.build()
        collector.listen("sdk", udp_socket_in_netns(topo.ns("g")))
        agent_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        agent_sock.bind(("127.0.0.1", 0))
        collector.listen("agent", agent_sock)
        pids = start_services(topo, procs, workdir, go_binary, npm_modules)
        with held_lock(lock):
            log("starting the agent")
            start_agent(procs, agent, pids, agent_sock.getsockname()[1], workdir, agent_args)
            done = measure(topo, procs, collector, levels)
            code, counters = stop_agent(procs)
        collector.close()
        docs = collector.snapshot()
        if logdir:
            keep(logdir, docs, done, shape)
        result = counted(docs, done, shape)
        result.update(agent_exit=code, agent_counters=counters, bad_datagrams=collector.bad)
        return result
    finally:
        procs.stop_all()
        collector.close()
        topo.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        shutil.rmtree(workdir, ignore_errors=True)  # the logs too, unless --logs put them elsewhere


def measure(topo, procs, collector, levels):
    """Sends a warm-up, then each level's requests; returns what each level sent."""
    warm = send_load(topo, procs, new_requests("warm", 3), 1)
    if any(a["status"] != 200 for a in warm.values()):
        raise RuntimeError("the services do not answer through the whole chain: %s\n%s" % (
            list(warm.values()), "\n".join(procs.tail(n, size=600) for n in list(procs.procs))))
    done = []
    for concurrency, n in levels:
        requests = new_requests("c%d" % concurrency, n)
        log("%d requests, %d at a time" % (n, concurrency))
        before = collector.count()
        started = time.monotonic()
        answers = send_load(topo, procs, requests, concurrency)
        seconds = time.monotonic() - started
        wait_for_documents(collector, before + n * len(topo.shape["hops"]))
        done.append({"concurrency": concurrency, "requests": requests, "seconds": seconds,
                     "answered_200": sum(a["status"] == 200 for a in answers.values())})
    return done


def keep(logdir, docs, done, shape):
    with open(os.path.join(logdir, "documents.jsonl"), "w") as f:
        for source_name, doc in docs:
            f.write(json.dumps({"source": source_name, "doc": doc}) + "\n")
    with open(os.path.join(logdir, "requests.json"), "w") as f:
        json.dump(done, f)
    with open(os.path.join(logdir, "topology"), "w") as f:
        f.write(shape["name"] + "\n")


def counted(docs, done, shape=SEVEN):
    results = analyse(docs, done, shape)
    for r, d, failures in zip(results, done, chain_failures(docs, done, shape)):
        r["seconds"] = round(d["seconds"], 1)
        r["chain_failures"] = len(failures)
        r["chain_failures_first"] = failures[:20]
    return {"topology": shape["name"], "levels": results, "documents": len(docs)}


def analyse_logs(logdir):
    """The counts of a run kept with --logs, computed again from its files."""
    with open(os.path.join(logdir, "documents.jsonl")) as f:
        docs = [(d["source"], d["doc"]) for d in map(json.loads, f)]
    with open(os.path.join(logdir, "requests.json")) as f:
        done = json.load(f)
    shape = SEVEN  # runs kept before the five-service form say nothing
    if os.path.exists(os.path.join(logdir, "topology")):
        with open(os.path.join(logdir, "topology")) as f:
            shape = SHAPES[f.read().strip()]
    result = counted(docs, done, shape)
    result.update(agent_exit=None, bad_datagrams=0)
    return result


def _interrupt_on_signals():
    """SIGTERM and SIGHUP end the run as Ctrl-C does (everything started is stopped); only
    possible on the main thread. Returns the handlers to put back."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


# ------------------------------------------------------------------------------------------
# Report


def pct(n, d):
    return "%5.1f%%" % (100.0 * n / d) if d else "    -"


def print_report(result, out=sys.stdout):
    cols = ["exact", "wrong_parent", "missing_parent", "other_trace", "missing_doc"]
    heads = ["exact", "wrong parent", "no parent", "other trace", "no document",
             "call in own req", "linked to call"]
    for level in result["levels"]:
        n = level["requests"]
        print("\nconcurrency %d: %d requests (%d answered 200, %.1f s); whole chain exact: %d (%s)"
              % (level["concurrency"], n, level["answered_200"], level.get("seconds", 0),
                 level["chains_exact"], pct(level["chains_exact"], n).strip()), file=out)
        width = max(len(name) for name in level["hops"]) + 2
        print("  %-*s" % (width, "hop (caller → callee)") +
              "".join("%16s" % h for h in heads), file=out)
        rows = [(name, h, name.startswith("client")) for name, h in level["hops"].items()]
        rows.append(("overall", level["overall"], False))
        for name, h, no_call in rows:
            total = sum(h[c] for c in cols)
            calls = sum(h[c] for c in CALL_PLACES)
            cells = ["%5d %s" % (h[c], pct(h[c], total)) for c in cols]
            cells.append("-" if no_call else "%5d %s" % (h["call_own"], pct(h["call_own"], calls)))
            cells.append("%5d %s" % (h["linked"], pct(h["linked"], total)))
            print("  %-*s" % (width, name) + "".join("%16s" % c for c in cells), file=out)
        for key, count in sorted(level["unlinked_parents"].items()):
            print("    not under its own call, %s: %d" % (key, count), file=out)
        total = level["overall"]
        print("  calls in another request's segment: %d, of which marked inferred: %d; calls "
              "marked inferred: %d" % (total["call_elsewhere"], total["elsewhere_inferred"],
                                       total["inferred"]), file=out)
        if "chain_failures" in level:
            print("  broken chain promises (see --require-chains): %d" % level["chain_failures"],
                  file=out)
            for line in level["chain_failures_first"]:
                print("    " + line, file=out)
    print("\nagent exit status %s, %d documents, %d bad datagrams" %
          (result["agent_exit"], result["documents"], result["bad_datagrams"]), file=out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default="build", help="build directory (default: build)")
    p.add_argument("--agent", help="agent binary (default: BUILD/agent/passport)")
    p.add_argument("--topology", choices=sorted(SHAPES), default="seven",
                   help="seven services (default), or five: Python, Node, nginx, Express with the "
                   "X-Ray SDK, Python leaf (no Go, no aiohttp)")
    p.add_argument("--quick", action="store_true", help="short form: %s" % QUICK_LEVELS)
    p.add_argument("--levels", help="CONCURRENCY:REQUESTS,... (default %s)" %
                   ",".join("%d:%d" % l for l in FULL_LEVELS))
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    p.add_argument("--lock", help="hold an exclusive flock on this file while the agent runs")
    p.add_argument("--logs", help="keep service and agent logs and the documents here")
    p.add_argument("--agent-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for the agent, e.g. --agent-arg=--no-inject")
    p.add_argument("--require-exact", type=float, metavar="PCT",
                   help="exit with status 1 when any hop at any level has fewer exact segments")
    p.add_argument("--require-chains", action="store_true",
                   help="exit with status 1 when a promise on exact chains is broken (sequential: "
                   "every hop exact; concurrent: see bench/README.md)")
    p.add_argument("--analyse", metavar="LOGS",
                   help="count again the documents a run kept with --logs LOGS (no agent)")
    a = p.parse_args()
    if a.analyse:
        result = analyse_logs(a.analyse)
        if a.json:
            print(json.dumps(result))
        else:
            print_report(result)
        return gate(result, a)
    levels = QUICK_LEVELS if a.quick else FULL_LEVELS
    if a.levels:
        levels = [tuple(int(x) for x in item.split(":")) for item in a.levels.split(",")]
    agent = os.path.abspath(a.agent or os.path.join(a.build, "agent", "passport"))
    try:
        result = run_fidelity(agent, levels, lock=a.lock, agent_args=a.agent_arg,
                              logdir=os.path.abspath(a.logs) if a.logs else None,
                              shape=SHAPES[a.topology])
    except Missing as e:
        print("fidelity: %s" % e, file=sys.stderr)
        return SKIPPED
    except RuntimeError as e:
        print("fidelity: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fidelity: interrupted", file=sys.stderr)
        return 130
    if not a.json:
        print_report(result)
    counters = result.pop("agent_counters")
    if a.json:
        print(json.dumps(result))
    else:
        print("FIDELITY_JSON " + json.dumps(result))
        if a.logs:
            with open(os.path.join(a.logs, "agent-counters.json"), "w") as f:
                json.dump(counters, f, indent=1)
    return gate(result, a)


SKIPPED = 77  # exit status when a requirement is missing (ctest: SKIP_RETURN_CODE)


def gate(result, a):
    """The exit status the --require-* options ask for: 1 (saying why) when one fails."""
    failed = a.require_exact is not None and below(result, a.require_exact)
    if a.require_chains:
        for level in result["levels"]:
            if level["chain_failures"]:
                print("fidelity: %d broken chain promises at concurrency %d (listed above)" %
                      (level["chain_failures"], level["concurrency"]), file=sys.stderr)
                failed = True
        if result["agent_exit"] not in (0, None) or result["bad_datagrams"]:
            print("fidelity: agent exit status %s, %d bad datagrams" %
                  (result["agent_exit"], result["bad_datagrams"]), file=sys.stderr)
            failed = True
    return 1 if failed else 0


def below(result, pct):
    """True (and says which) when a hop at some level has fewer than pct % exact segments."""
    short = [(level["concurrency"], name, h["exact"])
             for level in result["levels"] for name, h in level["hops"].items()
             if h["exact"] < pct / 100.0 * level["requests"]]
    for concurrency, name, exact in short:
        print("fidelity: below %.1f %% exact: %s at concurrency %d (%d)" %
              (pct, name, concurrency, exact), file=sys.stderr)
    return bool(short)


if __name__ == "__main__":
    sys.exit(main())
