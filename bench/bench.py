#!/usr/bin/env python3
"""Passport's benchmark suite. Started by bench/run.sh; see docs/performance.md.

Sections (all by default, or pick with --only):
  overhead    nginx (1 worker) and a Node `http` server under wrk on loopback, in rounds that
              interleave the conditions: untraced, floor (same tracepoints, empty programs),
              passport (every request sampled), for nginx passport-5% (default sampling rules)
              and passport-5%-nogate (the same with --no-sample-gate: unsampled requests shipped
              to the agent), and for Node the X-Ray SDK instead. Ratios to the same round's untraced run.
              Also gives Passport's CPU per request and peak RSS under load, and its loss counters.
  stress      loss at the highest load this machine makes (more connections, two wrk threads)
  idle        Passport with 10,000 idle keep-alive connections open to the traced nginx
  syscalls    per-syscall cost in a busy process Passport does not select, and in one it selects
  pipeline    the userspace pipeline on a recorded stream: events/s, and instructions/event
              under callgrind

Every process started here is stopped by its pid. Standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------------------
# processes


class Proc:
    """A started process with its stdout/stderr in files; stopped by pid only."""

    live = []

    def __init__(self, name, argv, log_dir, env=None, preexec_fn=None):
        self.name = name
        self.out_path = os.path.join(log_dir, name + ".out")
        self.err_path = os.path.join(log_dir, name + ".err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                      preexec_fn=preexec_fn)
        self.pid = self.p.pid
        Proc.live.append(self)

    def alive(self):
        return self.p.poll() is None

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def wait_text(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr() or text in self.stdout():
                return True
            if not self.alive():
                return False
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.alive():
            try:
                os.kill(self.pid, sig)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait()
            except ProcessLookupError:
                pass
        if self in Proc.live:
            Proc.live.remove(self)
        return self.p.returncode

    @classmethod
    def stop_all(cls):
        for p in list(reversed(cls.live)):
            p.stop(signal.SIGTERM, timeout=10)


def fail(msg):
    raise RuntimeError(msg)


# ----------------------------------------------------------------------------------------------
# /proc readers


def task_cpu_ns(pid):
    """CPU time of every thread of pid (schedstat run time, ns); 0 if gone."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def descendants(root):
    """root and every process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_cpu_ns(pids):
    return sum(task_cpu_ns(p) for p in pids)


def status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def rss_breakdown(pid):
    """Resident MB by kind of mapping: BPF maps (ring buffer) / heap and anonymous / files."""
    out = {"bpf_maps": 0.0, "heap_anon": 0.0, "files": 0.0, "other": 0.0}
    kind = "other"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(" ", 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else ""
                    kind = ("bpf_maps" if "bpf" in name else "heap_anon" if name in ("", "[heap]")
                            else "files" if name.startswith("/") else "other")
                elif first == "Rss:":
                    out[kind] += int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return {k: round(v, 1) for k, v in out.items()}


def machine_cpu():
    """(busy seconds over all CPUs, steal seconds) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    return (user + nice + system + irq + softirq) / hz, steal / hz


def self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def port_free(port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_port(port, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            if not proc.alive():
                return False
            time.sleep(0.05)
    return False


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_counters(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"counter (\S+) (\d+)$", line.strip())
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                pass
    return None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def add_ratios(row, runs, base):
    """Throughput, p50 and p99 of runs into row: medians and spreads of the values and of their
    ratios to the same round's run in base (round -> run)."""
    for key, metric in (("throughput", "rps"), ("p50", "p50_us"), ("p99", "p99_us")):
        ratios = [r[metric] / base[r["round"]][metric] for r in runs if base[r["round"]][metric]]
        row[key + "_ratio"] = median(ratios)
        row[key + "_ratio_min"], row[key + "_ratio_max"] = spread(ratios)
        row[key] = median([r[metric] for r in runs])
        row[key + "_min"], row[key + "_max"] = spread([r[metric] for r in runs])


def cmd_version(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


# ----------------------------------------------------------------------------------------------
# the benchmark


class Bench:
    # passport-5%: the agent with its default sampling rules (1 request/s, then 5 %), i.e. what an
    # out-of-the-box deployment pays; "passport" samples every request, as the targets assume;
    # passport-5%-nogate: the same with --no-sample-gate (unsampled requests shipped to the agent).
    CONDITIONS = {"nginx": ["untraced", "floor", "passport", "passport-5%", "passport-5%-nogate"],
                  "node": ["untraced", "floor", "passport", "xray-sdk"]}

    def __init__(self, args):
        self.a = args
        self.src = os.path.abspath(args.source)
        self.build = os.path.abspath(args.build)
        self.bin_dir = os.path.join(self.build, "bench")
        self.work = os.path.join(self.bin_dir, "work")
        # Snapshot the binaries: the build tree may be rebuilt while a run is under way.
        self.snap = os.path.join(self.work, "bin")
        os.makedirs(self.snap, exist_ok=True)
        self.binaries = {}
        for name, path in [("passport", os.path.join(self.build, "agent", "passport"))] + [
                (n, os.path.join(self.bin_dir, n)) for n in
                ("passport_floor", "passport_pipeline_bench", "udp_sink", "idle_conns", "syscall_spin")]:
            if not os.path.exists(path):
                fail(f"{path} is missing: build it first (bench/run.sh does)")
            shutil.copy2(path, os.path.join(self.snap, name))
            with open(path, "rb") as f:
                self.binaries[name] = hashlib.sha256(f.read()).hexdigest()[:16]
        self.bin_passport = os.path.join(self.snap, "passport")
        # --baseline: another passport binary (e.g. main's), run as extra conditions in the same
        # interleaved rounds ("passport-base" on nginx, "base-other"/"base-self" per syscall), so a
        # change is compared with its baseline on the same noisy machine.
        self.bin_baseline = None
        if args.baseline:
            self.bin_baseline = os.path.join(self.snap, "passport-base")
            shutil.copy2(args.baseline, self.bin_baseline)
            with open(args.baseline, "rb") as f:
                self.binaries["passport-base"] = hashlib.sha256(f.read()).hexdigest()[:16]
            self.CONDITIONS = {k: list(v) for k, v in self.CONDITIONS.items()}
            self.CONDITIONS["nginx"].append("passport-base")
        self.out_dir = os.path.abspath(args.out) if args.out else os.path.join(self.bin_dir, "results")
        self.logs = os.path.join(self.work, "logs")
        for d in (self.work, self.out_dir, self.logs):
            os.makedirs(d, exist_ok=True)
        self.port_nginx, self.port_node, self.port_sink = args.base_port, args.base_port + 1, args.base_port + 2
        self.rules = os.path.join(self.work, "sample-all.json")
        with open(self.rules, "w") as f:
            json.dump({"version": 2, "default": {"fixed_target": 1, "rate": 1.0}, "rules": []}, f)
        self.notes = []
        self.results = {"notes": self.notes}
        self.run_seq = 0
        self.xray_ready = False
        self.quiet_waits = []

    # -- helpers -------------------------------------------------------------------------------

    def note(self, msg):
        self.notes.append(msg)
        self.log(f"note: {msg}")

    def log(self, msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def run_dir(self, label):
        self.run_seq += 1
        d = os.path.join(self.logs, f"{self.run_seq:03d}-{label}")
        os.makedirs(d, exist_ok=True)
        return d

    def wait_quiet(self, limit_pct=25.0, max_wait=20.0):
        """Waits (up to max_wait s) until the machine's busy CPU, sampled over 0.5 s while our own
        processes idle, is below limit_pct of one CPU: other work may share the machine."""
        t0 = time.monotonic()
        while True:
            b0 = machine_cpu()[0]
            time.sleep(0.5)
            busy = (machine_cpu()[0] - b0) / 0.5 * 100
            if busy < limit_pct or time.monotonic() - t0 > max_wait:
                waited = time.monotonic() - t0 - 0.5
                if waited > 0.1:
                    self.log(f"    waited {waited:.1f}s for other load to settle (busy {busy:.0f}%)")
                self.quiet_waits.append(round(waited, 1))
                return busy

    def bin(self, name):
        return os.path.join(self.snap, name)

    def nginx_conf(self, name, worker_connections=1024):
        root = os.path.join(self.work, "nginx-" + name)
        os.makedirs(os.path.join(root, "html"), exist_ok=True)
        os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
        with open(os.path.join(root, "html", "index.html"), "w") as f:
            f.write("x" * 600)  # the same 600-byte page the Node server returns
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""# generated by bench/bench.py
worker_processes 1;
worker_rlimit_nofile {min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)};
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  keepalive_timeout 300s;
  client_body_temp_path {root}/tmp;
  proxy_temp_path {root}/tmp;
  fastcgi_temp_path {root}/tmp;
  uwsgi_temp_path {root}/tmp;
  scgi_temp_path {root}/tmp;
  server {{
    listen 127.0.0.1:{self.port_nginx} backlog=4096;
    root {root}/html;
    location / {{ }}
  }}
}}
""")
        return conf, root

    def start_sink(self, d):
        sink = Proc("udp_sink", [self.bin("udp_sink"), str(self.port_sink)], d)
        if not sink.wait_text("udp_sink: ready", 5):
            fail("udp_sink did not start: " + sink.stderr())
        return sink

    def stop_sink(self, sink):
        sink.stop(signal.SIGTERM)
        return (last_json(sink.stdout()) or {}).get("datagrams", 0)

    def start_server(self, server, cond, d, worker_connections=1024):
        if server == "nginx":
            conf, root = self.nginx_conf("bench" if worker_connections <= 1024 else "idle", worker_connections)
            p = Proc("nginx", ["nginx", "-c", conf, "-p", root], d, preexec_fn=raise_nofile)
            if not wait_port(self.port_nginx, 10, p):
                fail("nginx did not start: " + p.stderr())
            time.sleep(0.2)  # the worker is forked after the listen socket exists
            return p, f"http://127.0.0.1:{self.port_nginx}/index.html"
        env = dict(os.environ)
        env["NODE_PATH"] = os.path.join(self.bin_dir, "node", "node_modules")
        env["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{self.port_sink}"
        mode = "xray" if cond == "xray-sdk" else "plain"
        p = Proc("node", ["node", os.path.join(HERE, "node", "server.js"), str(self.port_node), mode], d, env=env)
        if not p.wait_text("node-bench: ready", 15) or not wait_port(self.port_node, 5, p):
            fail("node did not start: " + p.stderr())
        return p, f"http://127.0.0.1:{self.port_node}/"

    def start_tracer(self, kind, target_pid, d):
        if kind == "floor":
            t = Proc("floor", [self.bin("passport_floor")], d)
            if not t.wait_text("passport_floor: ready", 30):
                fail("passport_floor did not attach: " + t.stderr())
            return t
        rules = [] if kind.startswith("passport-5%") else ["--sampling-rules", self.rules]
        if kind.endswith("-nogate"):
            rules.append("--no-sample-gate")
        exe = self.bin_baseline if kind == "passport-base" else self.bin_passport
        t = Proc("passport", [exe, "--pid", str(target_pid)] + rules +
                 ["--daemon-address", f"127.0.0.1:{self.port_sink}"], d)
        if not t.wait_text("passport: ready", 60):
            fail("passport did not attach: " + t.stderr()[-2000:])
        return t

    def wrk(self, url, seconds, connections, threads, d, name="wrk"):
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "5s",
                "-s", os.path.join(HERE, "wrk", "report.lua"), url]
        out_path = os.path.join(d, name + ".out")
        with open(out_path, "w") as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        return self.finish_wrk(p, out_path)

    # -- section 1: overhead -------------------------------------------------------------------

    def overhead_run(self, server, cond, rnd):
        d = self.run_dir(f"{server}-{cond}-r{rnd}")
        a = self.a
        res = {"server": server, "condition": cond, "round": rnd}
        sink = self.start_sink(d)
        srv, tracer = None, None
        try:
            srv, url = self.start_server(server, cond, d)
            spids = descendants(srv.pid)
            if cond != "untraced" and cond != "xray-sdk":
                tracer = self.start_tracer(cond, srv.pid, d)
            res["idle_busy_pct"] = self.wait_quiet()
            warm = self.wrk(url, a.warmup, a.connections, a.threads, d, "wrk-warmup")
            time.sleep(0.3)
            s0, t0 = tree_cpu_ns(spids), task_cpu_ns(tracer.pid) if tracer else 0
            k0, st0, sink0, me0, w0 = machine_cpu()[0], machine_cpu()[1], task_cpu_ns(sink.pid), self_cpu_s(), time.monotonic()
            r = self.wrk(url, a.duration, a.connections, a.threads, d)
            time.sleep(0.25)  # Passport drains its ring every 10 ms; count that work too
            s1, t1 = tree_cpu_ns(spids), task_cpu_ns(tracer.pid) if tracer else 0
            k1, st1, sink1, me1, w1 = machine_cpu()[0], machine_cpu()[1], task_cpu_ns(sink.pid), self_cpu_s(), time.monotonic()
            res.update({k: r[k] for k in ("requests", "rps", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
                                          "mean_us", "errors")})
            res["warmup_requests"] = warm["requests"]
            n = max(1, r["requests"])
            res["server_cpu_us_per_req"] = (s1 - s0) / 1e3 / n
            res["tracer_cpu_us_per_req"] = (t1 - t0) / 1e3 / n if tracer else 0.0
            res["sink_cpu_us_per_req"] = (sink1 - sink0) / 1e3 / n
            res["wrk_cpu_us_per_req"] = r["wrk_cpu_s"] * 1e6 / n
            res["machine_cpu_us_per_req"] = (k1 - k0) * 1e6 / n
            ours = (s1 - s0 + t1 - t0 + sink1 - sink0) / 1e9 + r["wrk_cpu_s"] + (me1 - me0)
            res["foreign_cpu_pct"] = max(0.0, (k1 - k0) - ours) / (w1 - w0) * 100
            res["steal_pct"] = (st1 - st0) / (w1 - w0) * 100
            if tracer and cond.startswith("passport"):
                res["agent_rss_kb"] = status_kb(tracer.pid, "VmRSS")
                res["agent_hwm_kb"] = status_kb(tracer.pid, "VmHWM")
                res["agent_rss_breakdown_mb"] = rss_breakdown(tracer.pid)
        finally:
            if tracer:
                tracer.stop(signal.SIGINT, timeout=60)
            if srv:
                srv.stop(signal.SIGTERM)
            datagrams = self.stop_sink(sink)
        res["sink_datagrams"] = datagrams
        if cond.startswith("passport"):
            c = parse_counters(tracer.stderr())
            res["counters"] = c
            served = res["warmup_requests"] + res["requests"]
            res["served_at_least"] = served
            res["documents"] = c.get("pipeline.documents", 0)
            res["kernel_dropped"] = sum(v for k, v in c.items() if k in KERNEL_LOSS)
            res["kernel_truncated"] = c.get("kernel.payload_truncated", 0) + c.get("kernel.iov_limit", 0)
            # Every request must be seen (parsed, or gated in the kernel as unsampled); with default
            # sampling only some become documents.
            res["requests_unseen"] = max(0, served - c.get("http.requests", 0) - c.get("kernel.gate_requests", 0))
            res["documents_missing"] = max(0, served - res["documents"]) if cond == "passport" else res["requests_unseen"]
            res["export_failed"] = c.get("export.udp_send_failed", 0)
        if cond == "xray-sdk":
            res["documents"] = datagrams
            res["documents_missing"] = max(0, res["warmup_requests"] + res["requests"] - datagrams)
        self.log(f"  {server:5} {cond:9} round {rnd}: {res['rps']:9.0f} req/s  p50 {res['p50_us']:6d} us"
                 f"  p99 {res['p99_us']:7d} us  server {res['server_cpu_us_per_req']:5.1f} us/req"
                 + (f"  agent {res['tracer_cpu_us_per_req']:5.1f} us/req" if cond.startswith("passport") else "")
                 + f"  other load {res['foreign_cpu_pct']:4.0f}%")
        return res

    def section_overhead(self):
        a = self.a
        combos = [(s, c) for s, cs in self.CONDITIONS.items() for c in cs
                  if not (c == "xray-sdk" and not self.xray_ready)]
        rng = random.Random(a.seed)
        runs = []
        self.retries_left = a.retries
        self.log(f"overhead: {len(combos)} conditions x {a.rounds} rounds, wrk -t{a.threads} -c{a.connections}"
                 f" {a.warmup}s warm-up + {a.duration}s")
        for rnd in range(1, a.rounds + 1):
            order = combos[:]
            rng.shuffle(order)
            self.log(f"round {rnd}/{a.rounds}: " + ", ".join(f"{s}/{c}" for s, c in order))
            for s, c in order:
                attempt = 1
                while True:
                    r = self.overhead_run(s, c, rnd)
                    if r["foreign_cpu_pct"] <= a.max_other_load or self.retries_left <= 0:
                        break
                    self.retries_left -= 1
                    attempt += 1
                    self.log(f"    other processes used {r['foreign_cpu_pct']:.0f}% of a CPU during that run: "
                             f"running it again ({self.retries_left} retries left)")
                    self.wait_quiet(max_wait=45.0)
                r["attempts"] = attempt
                runs.append(r)
        summary = {}
        for server, conds in self.CONDITIONS.items():
            base = {r["round"]: r for r in runs if r["server"] == server and r["condition"] == "untraced"}
            summary[server] = {}
            for cond in conds:
                rs = [r for r in runs if r["server"] == server and r["condition"] == cond and r["round"] in base]
                if not rs:
                    continue
                row = {"rounds": len(rs)}
                add_ratios(row, rs, base)
                row["server_cpu_us_per_req"] = median([r["server_cpu_us_per_req"] for r in rs])
                row["extra_server_cpu_us_per_req"] = median(
                    [r["server_cpu_us_per_req"] - base[r["round"]]["server_cpu_us_per_req"] for r in rs])
                row["agent_cpu_us_per_req"] = (median([r["tracer_cpu_us_per_req"] for r in rs])
                                               if cond.startswith("passport") else 0.0)
                row["extra_machine_cpu_us_per_req"] = median(
                    [r["machine_cpu_us_per_req"] - base[r["round"]]["machine_cpu_us_per_req"] for r in rs])
                row["foreign_cpu_pct"] = median([r["foreign_cpu_pct"] for r in rs])
                row["disturbed_runs"] = sum(1 for r in rs if r["foreign_cpu_pct"] > a.max_other_load)
                row["sink_cpu_us_per_req"] = median([r["sink_cpu_us_per_req"] for r in rs])
                row["wrk_cpu_us_per_req"] = median([r["wrk_cpu_us_per_req"] for r in rs])
                row["errors"] = sum(r["errors"] for r in rs)
                if cond.startswith("passport"):
                    row["documents_per_request"] = sum(r["documents"] for r in rs) / max(1, sum(r["served_at_least"] for r in rs))
                    row["agent_cpu_s_per_1000_req"] = row["agent_cpu_us_per_req"] / 1000.0
                    row["agent_peak_rss_mb"] = max(r["agent_hwm_kb"] for r in rs) / 1024
                    row["agent_rss_breakdown_mb"] = max(rs, key=lambda r: r["agent_hwm_kb"])["agent_rss_breakdown_mb"]
                    row["kernel_dropped"] = sum(r["kernel_dropped"] for r in rs)
                    row["documents_missing"] = sum(r["documents_missing"] for r in rs)
                    row["documents"] = sum(r["documents"] for r in rs)
                    row["served"] = sum(r["served_at_least"] for r in rs)
                    row["max_rps"] = max(r["rps"] for r in rs)
                if cond == "xray-sdk":
                    row["documents_missing"] = sum(r["documents_missing"] for r in rs)
                summary[server][cond] = row
            # Cost in CPU per request beyond untraced: Passport = extra in the server (its BPF
            # programs run in the server's syscalls) + the agent's own CPU; floor = extra in the server.
            p, f = summary[server].get("passport"), summary[server].get("floor")
            if p and f:
                p_cost = p["extra_server_cpu_us_per_req"] + p["agent_cpu_us_per_req"]
                summary[server]["passport_vs_floor"] = {
                    "passport_cost_us_per_req": p_cost,
                    "floor_cost_us_per_req": f["extra_server_cpu_us_per_req"],
                    "ratio": p_cost / f["extra_server_cpu_us_per_req"] if f["extra_server_cpu_us_per_req"] > 0.05 else None,
                    "passport_machine_cost_us_per_req": p["extra_machine_cpu_us_per_req"],
                    "floor_machine_cost_us_per_req": f["extra_machine_cpu_us_per_req"],
                    "throughput_loss_ratio": (1 - p["throughput_ratio"]) / (1 - f["throughput_ratio"])
                    if f["throughput_ratio"] < 0.995 else None,
                }
        self.results["overhead"] = {"runs": runs, "summary": summary,
                                    "retries_used": a.retries - self.retries_left,
                                    "disturbed_runs": sum(1 for r in runs if r["foreign_cpu_pct"] > a.max_other_load),
                                    "params": {"max_other_load_pct": a.max_other_load, "rounds": a.rounds, "warmup_s": a.warmup, "duration_s": a.duration,
                                               "connections": a.connections, "threads": a.threads, "seed": a.seed}}

    # -- section: a traced client (header injection) ---------------------------------------------

    # wrk itself is the traced process: every request it sends is an outgoing call outside any
    # served request (a segment of its own, sampled in the kernel), and with injection on, the
    # sk_msg program inserts X-Amzn-Trace-Id into each one inside wrk's own send().
    CLIENT_CONDITIONS = ["untraced", "passport-no-inject", "passport"]

    def gated_wrk(self, url, seconds, d, name):
        """wrk exec'd by a shell that first reads a line from a FIFO (blocked, forking nothing), so
        Passport can select the shell's pid before wrk connects (an exec keeps the pid). Returns
        (proc, fifo_path, out_path); release() it to start wrk."""
        go = os.path.join(d, name + ".go")
        if os.path.exists(go):
            os.unlink(go)
        os.mkfifo(go)
        out_path = os.path.join(d, name + ".out")
        argv = ["wrk", "-t", str(self.a.threads), "-c", str(self.a.connections), "-d", f"{max(1, round(seconds))}s",
                "--timeout", "5s", "-s", os.path.join(HERE, "wrk", "report.lua"), url]
        sh = f"read line < {shlex.quote(go)}; exec " + " ".join(shlex.quote(x) for x in argv)
        out = open(out_path, "w")
        p = subprocess.Popen(["sh", "-c", sh], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return p, go, out_path

    def finish_wrk(self, p, out_path):
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        with open(out_path) as f:
            text = f.read()
        m = re.search(r"^BENCHJSON (\{.*\})$", text, re.M)
        if p.returncode != 0 or not m:
            fail(f"wrk failed ({p.returncode}): {text[-1000:]}")
        r = json.loads(m.group(1))
        r["errors"] = sum(r[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["wrk_cpu_s"] = ru.ru_utime + ru.ru_stime
        return r

    def client_run(self, cond, rnd):
        d = self.run_dir(f"client-{cond}-r{rnd}")
        a = self.a
        res = {"condition": cond, "round": rnd}
        sink = self.start_sink(d)
        srv, tracer = None, None
        try:
            srv, url = self.start_server("nginx", "untraced", d)
            warm, warm_go, warm_out = self.gated_wrk(url, a.warmup, d, "wrk-warmup")
            run, run_go, run_out = self.gated_wrk(url, a.duration, d, "wrk")
            if cond != "untraced":
                argv = [self.bin_passport, "--pid", str(warm.pid), "--pid", str(run.pid), "--sampling-rules", self.rules,
                        "--daemon-address", f"127.0.0.1:{self.port_sink}"]
                if cond == "passport-no-inject":
                    argv.append("--no-inject")
                tracer = Proc("passport", argv, d)
                if not tracer.wait_text("passport: ready", 60):
                    fail("passport did not attach: " + tracer.stderr()[-2000:])
            res["idle_busy_pct"] = self.wait_quiet()
            with open(warm_go, "w") as f:
                f.write("go\n")
            w = self.finish_wrk(warm, warm_out)
            time.sleep(0.3)
            s0, t0 = tree_cpu_ns(descendants(srv.pid)), task_cpu_ns(tracer.pid) if tracer else 0
            with open(run_go, "w") as f:
                f.write("go\n")
            r = self.finish_wrk(run, run_out)
            time.sleep(0.25)
            s1, t1 = tree_cpu_ns(descendants(srv.pid)), task_cpu_ns(tracer.pid) if tracer else 0
            n = max(1, r["requests"])
            res.update({k: r[k] for k in ("requests", "rps", "p50_us", "p99_us", "errors")})
            res["warmup_requests"] = w["requests"]
            res["client_cpu_us_per_req"] = r["wrk_cpu_s"] * 1e6 / n
            res["server_cpu_us_per_req"] = (s1 - s0) / 1e3 / n
            res["agent_cpu_us_per_req"] = (t1 - t0) / 1e3 / n if tracer else 0.0
        finally:
            if tracer:
                tracer.stop(signal.SIGINT, timeout=60)
            if srv:
                srv.stop(signal.SIGTERM)
            self.stop_sink(sink)
        if tracer:
            c = parse_counters(tracer.stderr())
            res["injected"] = c.get("inject.injected", 0)
            res["calls"] = c.get("http.requests", 0)
            res["documents"] = c.get("pipeline.documents", 0)
            res["kernel_dropped"] = sum(v for k, v in c.items() if k in KERNEL_LOSS)
        self.log(f"  client {cond:18} round {rnd}: {res['rps']:9.0f} req/s  p99 {res['p99_us']:7d} us"
                 f"  wrk {res['client_cpu_us_per_req']:5.1f} us/req"
                 + (f"  agent {res['agent_cpu_us_per_req']:5.1f} us/req  injected {res['injected']}" if tracer else ""))
        return res

    def section_client(self):
        a = self.a
        rng = random.Random(a.seed + 1)
        runs = []
        self.log(f"client: {len(self.CLIENT_CONDITIONS)} conditions x {a.rounds} rounds, traced wrk -t{a.threads}"
                 f" -c{a.connections} against nginx")
        for rnd in range(1, a.rounds + 1):
            order = self.CLIENT_CONDITIONS[:]
            rng.shuffle(order)
            for cond in order:
                runs.append(self.client_run(cond, rnd))
        base = {r["round"]: r for r in runs if r["condition"] == "untraced"}
        summary = {}
        for cond in self.CLIENT_CONDITIONS:
            rs = [r for r in runs if r["condition"] == cond and r["round"] in base]
            row = {"rounds": len(rs)}
            add_ratios(row, rs, base)
            row["client_cpu_us_per_req"] = median([r["client_cpu_us_per_req"] for r in rs])
            row["extra_client_cpu_us_per_req"] = median(
                [r["client_cpu_us_per_req"] - base[r["round"]]["client_cpu_us_per_req"] for r in rs])
            row["agent_cpu_us_per_req"] = median([r["agent_cpu_us_per_req"] for r in rs])
            row["errors"] = sum(r["errors"] for r in rs)
            if cond != "untraced":
                row["injected_per_request"] = sum(r["injected"] for r in rs) / max(
                    1, sum(r["requests"] + r["warmup_requests"] for r in rs))
                row["kernel_dropped"] = sum(r["kernel_dropped"] for r in rs)
            summary[cond] = row
        self.results["client"] = {"runs": runs, "summary": summary,
                                  "params": {"rounds": a.rounds, "duration_s": a.duration, "connections": a.connections,
                                             "threads": a.threads}}

    # -- section: loss at the highest load -----------------------------------------------------

    def section_stress(self):
        a = self.a
        d = self.run_dir("stress")
        self.log(f"stress: nginx + passport, wrk -t2 -c{a.stress_connections} {a.stress_duration}s")
        sink = self.start_sink(d)
        srv = tracer = None
        try:
            srv, url = self.start_server("nginx", "passport", d)
            tracer = self.start_tracer("passport", srv.pid, d)
            self.wait_quiet()
            t0 = task_cpu_ns(tracer.pid)
            r = self.wrk(url, a.stress_duration, a.stress_connections, 2, d)
            time.sleep(0.3)
            t1 = task_cpu_ns(tracer.pid)
            hwm = status_kb(tracer.pid, "VmHWM")
        finally:
            if tracer:
                tracer.stop(signal.SIGINT, timeout=60)
            if srv:
                srv.stop(signal.SIGTERM)
            datagrams = self.stop_sink(sink)
        c = parse_counters(tracer.stderr())
        res = {"rps": r["rps"], "requests": r["requests"], "p99_us": r["p99_us"], "errors": r["errors"],
               "connections": a.stress_connections, "threads": 2, "duration_s": a.stress_duration,
               "documents": c.get("pipeline.documents", 0), "sink_datagrams": datagrams,
               "kernel_dropped": sum(v for k, v in c.items() if k in KERNEL_LOSS),
               "kernel_truncated": c.get("kernel.payload_truncated", 0) + c.get("kernel.iov_limit", 0),
               "documents_missing": max(0, r["requests"] - c.get("pipeline.documents", 0)),
               "export_failed": c.get("export.udp_send_failed", 0),
               "agent_cpu_us_per_req": (t1 - t0) / 1e3 / max(1, r["requests"]),
               "agent_peak_rss_mb": hwm / 1024,
               "loss_counters": {k: v for k, v in c.items() if LOSS_RE.search(k) and v}}
        self.log(f"  {res['rps']:.0f} req/s, kernel drops {res['kernel_dropped']}, documents missing "
                 f"{res['documents_missing']}, agent {res['agent_cpu_us_per_req']:.1f} us/req")
        self.results["stress"] = res

    # -- section: 10,000 idle connections ------------------------------------------------------

    def section_idle(self):
        a = self.a
        d = self.run_dir("idle")
        n = a.idle_connections
        self.log(f"idle: nginx + passport with {n} idle keep-alive connections, {a.idle_seconds}s idle then "
                 f"{a.duration}s of wrk on top")
        sink = self.start_sink(d)
        srv = tracer = conns = None
        res = {"connections": n}
        try:
            srv, url = self.start_server("nginx", "passport", d, worker_connections=n + 1000)
            tracer = self.start_tracer("passport", srv.pid, d)
            rss_before = status_kb(tracer.pid, "VmRSS")
            self.wait_quiet()
            b0, bw0 = task_cpu_ns(tracer.pid), time.monotonic()
            time.sleep(a.idle_seconds / 2)
            res["agent_cpu_ms_per_s_no_connections"] = (task_cpu_ns(tracer.pid) - b0) / 1e6 / (time.monotonic() - bw0)
            conns = Proc("idle_conns", [self.bin("idle_conns"), "127.0.0.1", str(self.port_nginx), str(n)], d,
                         preexec_fn=raise_nofile)
            if not conns.wait_text("idle_conns: ready", 300):
                fail("idle_conns failed: " + conns.stderr())
            time.sleep(1.0)  # let the agent take in the last connections
            self.wait_quiet(limit_pct=40.0)
            t0, w0 = task_cpu_ns(tracer.pid), time.monotonic()
            time.sleep(a.idle_seconds)
            t1, w1 = task_cpu_ns(tracer.pid), time.monotonic()
            res["agent_rss_mb_before"] = rss_before / 1024
            res["agent_rss_mb_idle"] = status_kb(tracer.pid, "VmRSS") / 1024
            res["agent_cpu_ms_per_s_idle"] = (t1 - t0) / 1e6 / (w1 - w0)
            r = self.wrk(url, a.duration, a.connections, a.threads, d)
            time.sleep(0.25)
            t2 = task_cpu_ns(tracer.pid)
            res["load_rps"] = r["rps"]
            res["load_requests"] = r["requests"]
            res["agent_cpu_us_per_req_load"] = (t2 - t1) / 1e3 / max(1, r["requests"])
            res["agent_peak_rss_mb"] = status_kb(tracer.pid, "VmHWM") / 1024
            res["agent_rss_breakdown_mb"] = rss_breakdown(tracer.pid)
        finally:
            if conns:
                conns.stop(signal.SIGTERM)
            if tracer:
                tracer.stop(signal.SIGINT, timeout=60)
            if srv:
                srv.stop(signal.SIGTERM)
            self.stop_sink(sink)
        res["idle_conns"] = last_json(conns.stdout())
        c = parse_counters(tracer.stderr())
        res["connections_seen"] = c.get("stream.connections_opened", 0)
        res["documents"] = c.get("pipeline.documents", 0)
        res["kernel_dropped"] = sum(v for k, v in c.items() if k in KERNEL_LOSS)
        res["loss_counters"] = {k: v for k, v in c.items() if LOSS_RE.search(k) and v}
        self.log(f"  RSS {res['agent_rss_mb_before']:.1f} MiB -> {res['agent_rss_mb_idle']:.1f} MiB idle, peak "
                 f"{res['agent_peak_rss_mb']:.1f} MiB; idle CPU {res['agent_cpu_ms_per_s_idle']:.2f} ms/s; under load "
                 f"{res['agent_cpu_us_per_req_load']:.1f} us/req at {res['load_rps']:.0f} req/s")
        self.results["idle"] = res

    # -- section: per-syscall cost, unselected and selected processes ---------------------------

    def section_syscalls(self):
        """syscall_spin under: untraced; floor; Passport selecting another (idle) process; Passport
        selecting the spinning process itself (its TCP syscalls are then captured and emitted)."""
        a = self.a
        conds = ["untraced", "floor", "passport-other", "passport-self"]
        if self.bin_baseline:
            conds += ["base-other", "base-self"]
        modes = ["devnull", "socketpair", "tcp"]
        rng = random.Random(a.seed + 1)
        runs = []
        self.log(f"syscalls: syscall_spin {'/'.join(modes)} {a.spin_seconds}s each, {len(conds)} conditions, "
                 f"{a.rounds} rounds")
        for rnd in range(1, a.rounds + 1):
            order = conds[:]
            rng.shuffle(order)
            for cond in order:
                d = self.run_dir(f"syscalls-{cond}-r{rnd}")
                other = tracer = spin = None
                counters = {}
                try:
                    argv = [self.bin("syscall_spin"), str(a.spin_seconds)] + modes
                    kind = "passport-base" if cond.startswith("base-") else "passport"
                    if cond.endswith("-self"):
                        spin = Proc("syscall_spin", argv[:1] + ["--wait-signal"] + argv[1:], d)
                        if not spin.wait_text("syscall_spin: waiting", 10):
                            fail("syscall_spin did not start: " + spin.stderr())
                        tracer = self.start_tracer(kind, spin.pid, d)
                    elif cond.endswith("-other"):
                        other = Proc("selected_sleep", ["sleep", "100000"], d)
                        tracer = self.start_tracer(kind, other.pid, d)
                    elif cond == "floor":
                        tracer = self.start_tracer("floor", 0, d)
                    self.wait_quiet()
                    if spin:
                        os.kill(spin.pid, signal.SIGUSR1)
                        spin.p.wait(timeout=len(modes) * a.spin_seconds + 60)
                        out, rc = spin.stdout(), spin.p.returncode
                    else:
                        r = subprocess.run(argv, capture_output=True, text=True, timeout=len(modes) * a.spin_seconds + 60)
                        out, rc = r.stdout, r.returncode
                    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
                    if rc != 0 or len(lines) != len(modes):
                        fail(f"syscall_spin failed ({rc}): {out}")
                    for j in lines:
                        runs.append({"condition": cond, "mode": j["mode"], "round": rnd, "ns_per_op": j["ns_per_op"],
                                     "ops_per_s": j["ops"] / j["seconds"]})
                finally:
                    if spin:
                        spin.stop(signal.SIGTERM)
                    if tracer:
                        tracer.stop(signal.SIGINT, timeout=60)
                        counters = parse_counters(tracer.stderr()) if cond != "floor" else {}
                    if other:
                        other.stop(signal.SIGTERM)
                if cond.endswith("-self"):
                    runs[-1]["kernel_dropped"] = sum(v for k, v in counters.items() if k in KERNEL_LOSS)
                    runs[-1]["events_decoded"] = counters.get("decode.ok", 0)
            self.log(f"  round {rnd}: " + ", ".join(
                f"{r['condition']}/{r['mode']} {r['ns_per_op']:.0f} ns" for r in runs if r["round"] == rnd))
        summary = {}
        for mode in modes:
            base = {r["round"]: r for r in runs if r["mode"] == mode and r["condition"] == "untraced"}
            summary[mode] = {}
            for cond in conds:
                rs = [r for r in runs if r["mode"] == mode and r["condition"] == cond]
                ratios = [r["ops_per_s"] / base[r["round"]]["ops_per_s"] for r in rs]
                lo, hi = spread(ratios)
                summary[mode][cond] = {"ns_per_op": median([r["ns_per_op"] for r in rs]),
                                       "rate_ratio": median(ratios), "rate_ratio_min": lo, "rate_ratio_max": hi,
                                       "extra_ns_per_op": median([r["ns_per_op"] - base[r["round"]]["ns_per_op"]
                                                                  for r in rs])}
            f = summary[mode]["floor"]["extra_ns_per_op"]
            for cond in conds[2:]:
                x = summary[mode][cond]["extra_ns_per_op"]
                summary[mode][cond]["vs_floor"] = x / f if f > 20 else None
        self.results["syscalls"] = {"runs": runs, "summary": summary, "spin_seconds": a.spin_seconds,
                                    "self_kernel_dropped": sum(r.get("kernel_dropped", 0) for r in runs)}

    # -- section: userspace pipeline -----------------------------------------------------------

    def section_pipeline(self):
        a = self.a
        d = self.run_dir("pipeline")
        exe = self.bin("passport_pipeline_bench")
        self.log(f"pipeline: replay {a.pipeline_seconds}s (discarding emitter), {a.pipeline_seconds}s (UDP to a sink), "
                 f"callgrind {a.callgrind_iterations} iterations")

        def run(argv, timeout):
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            j = last_json(r.stdout)
            if r.returncode != 0 or not j:
                fail(f"{' '.join(argv)} failed: {r.stderr[-1500:]}")
            return j

        res = {"native": [], "udp": None, "callgrind": None}
        for _ in range(3):
            res["native"].append(run([exe, "--seconds", str(a.pipeline_seconds / 3)], 120))
        best = max(res["native"], key=lambda j: j["events_per_s"])
        res["events_per_s"] = median([j["events_per_s"] for j in res["native"]])
        res["ns_per_event"] = median([j["ns_per_event"] for j in res["native"]])
        res["us_per_document"] = median([j["us_per_document"] for j in res["native"]])
        res["events_per_s_best"] = best["events_per_s"]
        sink = self.start_sink(d)
        try:
            res["udp"] = run([exe, "--seconds", str(a.pipeline_seconds / 3), "--udp", f"127.0.0.1:{self.port_sink}"], 120)
            res["udp_unbatched"] = run([exe, "--seconds", str(a.pipeline_seconds / 3), "--udp",
                                        f"127.0.0.1:{self.port_sink}", "--udp-batch", "1"], 120)
        finally:
            self.stop_sink(sink)
        if shutil.which("valgrind"):
            out = os.path.join(d, "callgrind.out")
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", exe,
                    "--iterations", str(a.callgrind_iterations), "--warmup", "5"]
            j = run(argv, 1800)
            total = None
            with open(out) as f:
                for line in f:
                    m = re.match(r"(?:totals|summary):\s+(\d+)", line)
                    if m:
                        total = int(m.group(1))
            if total:
                res["callgrind"] = {"iterations": j["iterations"], "events": j["events"], "documents": j["documents"],
                                    "instructions": total, "instructions_per_event": total / j["events"],
                                    "instructions_per_document": total / max(1, j["documents"]),
                                    "out_file": os.path.relpath(out, self.build)}
        else:
            self.note("valgrind not installed: no instructions/event")
        self.log(f"  {res['events_per_s']:.0f} events/s ({res['ns_per_event']:.0f} ns/event, "
                 f"{res['us_per_document']:.1f} us/document); with UDP send {res['udp']['us_per_document']:.1f} us/document"
                 + (f"; {res['callgrind']['instructions_per_event']:.0f} instructions/event" if res["callgrind"] else ""))
        self.results["pipeline"] = res

    # -- setup ---------------------------------------------------------------------------------

    def prepare_node(self):
        """npm install of the X-Ray SDK into the build tree, once."""
        self.xray_ready = False
        nd = os.path.join(self.bin_dir, "node")
        os.makedirs(nd, exist_ok=True)
        want = os.path.join(HERE, "node", "package.json")
        have = os.path.join(nd, "package.json")
        marker = os.path.join(nd, "node_modules", "aws-xray-sdk-express", "package.json")
        if not os.path.exists(marker) or not os.path.exists(have) or open(want).read() != open(have).read():
            if not shutil.which("npm"):
                self.note("npm not found: the X-Ray SDK condition is skipped")
                return
            shutil.copyfile(want, have)
            self.log("installing aws-xray-sdk-core, aws-xray-sdk-express, express with npm into " + nd)
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev"], cwd=nd,
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                self.note("npm install failed, the X-Ray SDK condition is skipped: " + r.stderr[-500:])
                return
        self.xray_ready = os.path.exists(marker)

    def meta(self):
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        git = subprocess.run(["git", "-C", self.src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", self.src, "status", "--porcelain"], capture_output=True, text=True)
        return {
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "kernel": os.uname().release,
            "cpu": cpu,
            "cpus": os.cpu_count(),
            "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "virtualization": "nested Firecracker VM (PVM)" if "fc" in os.uname().release else "unknown",
            "git": git.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
            "loadavg_at_start": loadavg(),
            "versions": {"nginx": cmd_version(["nginx", "-v"]), "node": cmd_version(["node", "-v"]),
                         "wrk": cmd_version(["wrk", "-v"]), "valgrind": cmd_version(["valgrind", "--version"])},
            "mode": "quick" if self.a.quick else "full",
            "binaries_sha256": self.binaries,
        }

    def run(self):
        self.results["meta"] = self.meta()
        t0 = time.monotonic()
        for p, kind in ((self.port_nginx, socket.SOCK_STREAM), (self.port_node, socket.SOCK_STREAM),
                        (self.port_sink, socket.SOCK_DGRAM)):
            if not port_free(p, kind):
                fail(f"port {p} is in use on 127.0.0.1; pick another with --base-port")
        sections = (self.a.only.split(",") if self.a.only
                    else ["pipeline", "overhead", "client", "stress", "idle", "syscalls"])
        if "overhead" in sections:
            self.prepare_node()
        for s in sections:
            getattr(self, "section_" + s)()
        self.results["meta"]["loadavg_at_end"] = loadavg()
        self.results["meta"]["elapsed_s"] = round(time.monotonic() - t0)
        self.results["meta"]["quiet_waits_s"] = {"count": len(self.quiet_waits), "total": round(sum(self.quiet_waits), 1)}
        self.results["targets"] = targets(self.results)


# Kernel counters that mean an event was lost (truncation only shortens a payload's copy).
KERNEL_LOSS = {"kernel.ringbuf_full", "kernel.args_map_full", "kernel.conn_map_full", "kernel.read_user_failed"}
LOSS_RE = re.compile(r"(lost|dropped|drop|failed|overflow|evicted|rejected|full|missing|incomplete|stale)")


# ----------------------------------------------------------------------------------------------
# targets, table, chart


def targets(R):
    out = []

    def add(name, target, measured, met, detail=""):
        out.append({"name": name, "target": target, "measured": measured, "met": met, "detail": detail})

    ov = R.get("overhead", {}).get("summary", {})
    ng = ov.get("nginx", {}).get("passport")
    if ng:
        add("nginx throughput, Passport / untraced", ">= 0.97x", f"{ng['throughput_ratio']:.2f}x",
            ng["throughput_ratio"] >= 0.97, f"range {ng['throughput_ratio_min']:.2f}-{ng['throughput_ratio_max']:.2f}")
        add("nginx p99 latency, Passport / untraced", "<= 1.2x", f"{ng['p99_ratio']:.2f}x", ng["p99_ratio"] <= 1.2,
            f"range {ng['p99_ratio_min']:.2f}-{ng['p99_ratio_max']:.2f}")
    for server in ("nginx", "node"):
        pf = ov.get(server, {}).get("passport_vs_floor")
        if pf:
            ratio = pf["ratio"]
            add(f"{server}: Passport's cost / the floor's (extra CPU per request)", "<= 1.5x",
                f"{ratio:.1f}x" if ratio is not None else "floor cost below resolution",
                ratio is not None and ratio <= 1.5,
                f"{pf['passport_cost_us_per_req']:.2f} us vs {pf['floor_cost_us_per_req']:.2f} us per request")
    for server in ("nginx", "node"):
        p = ov.get(server, {}).get("passport")
        if p:
            add(f"agent CPU per request ({server})", "<= 1 us", f"{p['agent_cpu_us_per_req']:.2f} us",
                p["agent_cpu_us_per_req"] <= 1.0, f"{p['agent_cpu_s_per_1000_req']:.4f} CPU-s per 1,000 requests")
    rss = [p["agent_peak_rss_mb"] for s in ("nginx", "node") for p in [ov.get(s, {}).get("passport")] if p]
    if R.get("idle"):
        rss.append(R["idle"]["agent_peak_rss_mb"])
    if R.get("stress"):
        rss.append(R["stress"]["agent_peak_rss_mb"])
    if rss:
        add("agent peak RSS (all runs, incl. 10k idle connections)", "<= 48 MB", f"{max(rss):.1f} MiB ({max(rss) * 1.048576:.1f} MB)",
            max(rss) * 1.048576 <= 48)
    loads = []
    for s in ("nginx", "node"):
        p = ov.get(s, {}).get("passport")
        if p:
            loads.append((p["max_rps"], p["kernel_dropped"], p["documents_missing"]))
    if R.get("stress"):
        st = R["stress"]
        loads.append((st["rps"], st["kernel_dropped"], st["documents_missing"]))
    if loads:
        top = max(l[0] for l in loads)
        drops = sum(l[1] + l[2] for l in loads)
        add("zero drops at 20k requests/s", "0 at >= 20,000 req/s",
            f"{drops} dropped; highest load reached {top:,.0f} req/s",
            drops == 0 and top >= 20000 if drops == 0 else False,
            "" if top >= 20000 else "this machine did not reach 20k req/s with Passport attached")
    sc = R.get("syscalls", {}).get("summary", {})
    for mode in ("devnull", "socketpair", "tcp"):
        row = sc.get(mode, {}).get("passport-other")
        if row:
            add(f"unselected busy process ({mode}): syscall rate with Passport selecting another / untraced",
                "close to nothing (no number set)", f"{row['rate_ratio']:.3f}x", None,
                f"{row['extra_ns_per_op']:+.0f} ns per op; the floor alone {sc[mode]['floor']['rate_ratio']:.3f}x "
                f"({sc[mode]['floor']['extra_ns_per_op']:+.0f} ns)")
    row = sc.get("tcp", {}).get("passport-self")
    if row and row.get("vs_floor") is not None:
        add("kernel cost per traced TCP write+read, Passport / floor", "<= 1.5x", f"{row['vs_floor']:.1f}x",
            row["vs_floor"] <= 1.5,
            f"{row['extra_ns_per_op']:+.0f} ns vs {sc['tcp']['floor']['extra_ns_per_op']:+.0f} ns per write+read "
            f"over untraced")
    return out


def fmt_rss(b):
    return ", ".join(f"{k.replace('_', '/')} {v:.1f} MiB" for k, v in b.items() if v >= 0.05)


def fmt_ratio(row, key):
    if row.get(key + "_ratio") is None:
        return "-"
    return f"{row[key + '_ratio']:.2f} [{row[key + '_ratio_min']:.2f}-{row[key + '_ratio_max']:.2f}]"


def table(R):
    L = []
    m = R["meta"]
    L.append(f"Passport benchmarks — {m['date']} — {m['cpus']} vCPU {m['cpu']}, {m['memory_gb']} GB, "
             f"kernel {m['kernel']}, {m['virtualization']}; git {m['git']}; {m['mode']} run, {m.get('elapsed_s', 0)} s")
    ov = R.get("overhead")
    if ov:
        p = ov["params"]
        L.append("")
        L.append(f"1. Overhead on a traced server — wrk -t{p['threads']} -c{p['connections']} {p['duration_s']} s per run, "
                 f"{p['rounds']} interleaved rounds; median [min-max] of per-round ratios to untraced")
        L.append(f"   ({ov['retries_used']} runs repeated because other processes loaded the machine; "
                 f"{ov['disturbed_runs']} of {len(ov['runs'])} kept runs still had > {p['max_other_load_pct']:.0f}% of a CPU of other load)")
        L.append(f"{'server':6} {'condition':10} {'req/s':>8} {'throughput':>18} {'p50':>18} {'p99':>18} "
                 f"{'p50 us':>7} {'p99 us':>7} {'srv us/req':>10} {'agent us/req':>12}")
        for server, conds in ov["summary"].items():
            for cond, row in conds.items():
                if cond == "passport_vs_floor":
                    continue
                L.append(f"{server:6} {cond:10} {row['throughput']:8.0f} {fmt_ratio(row, 'throughput'):>18} "
                         f"{fmt_ratio(row, 'p50'):>18} {fmt_ratio(row, 'p99'):>18} {row['p50']:7.0f} {row['p99']:7.0f} "
                         f"{row['server_cpu_us_per_req']:10.1f} "
                         + (f"{row['agent_cpu_us_per_req']:12.2f}" if cond.startswith("passport") else f"{'-':>12}"))
        for server, conds in ov["summary"].items():
            pf = conds.get("passport_vs_floor")
            if pf:
                r = f"{pf['ratio']:.1f}x" if pf["ratio"] is not None else "n/a (floor below resolution)"
                L.append(f"   {server}: extra CPU per request — floor {pf['floor_cost_us_per_req']:.2f} us, Passport "
                         f"{pf['passport_cost_us_per_req']:.2f} us (server + agent) = {r} the floor")
    cl = R.get("client")
    if cl:
        p = cl["params"]
        L.append("")
        L.append(f"1b. Overhead on a traced client (wrk -t{p['threads']} -c{p['connections']} as the traced process, calling "
                 f"nginx; every request is a call outside any served request; {p['rounds']} interleaved rounds)")
        L.append(f"{'condition':19} {'req/s':>8} {'throughput':>18} {'p99':>18} {'client us/req':>13} {'+client':>8} "
                 f"{'agent us/req':>12} {'injected':>9}")
        for cond, row in cl["summary"].items():
            inj = f"{row['injected_per_request'] * 100:8.1f}%" if "injected_per_request" in row else f"{'-':>9}"
            L.append(f"{cond:19} {row['throughput']:8.0f} {fmt_ratio(row, 'throughput'):>18} {fmt_ratio(row, 'p99'):>18} "
                     f"{row['client_cpu_us_per_req']:13.1f} {row['extra_client_cpu_us_per_req']:+8.1f} "
                     f"{row['agent_cpu_us_per_req']:12.2f} {inj}")
        a, b = cl["summary"].get("passport"), cl["summary"].get("passport-no-inject")
        if a and b:
            L.append(f"   injection itself (passport vs passport-no-inject): client CPU "
                     f"{a['extra_client_cpu_us_per_req'] - b['extra_client_cpu_us_per_req']:+.1f} us per request")
    L.append("")
    L.append("2. Agent cost (Passport's own process, from /proc)")
    row5 = (ov or {}).get("summary", {}).get("nginx", {}).get("passport-5%")
    for server in ("nginx", "node"):
        row = (ov or {}).get("summary", {}).get(server, {}).get("passport")
        if row:
            L.append(f"   under {server} load: {row['agent_cpu_us_per_req']:.2f} us CPU per request = "
                     f"{row['agent_cpu_s_per_1000_req']:.4f} CPU-s per 1,000 requests; peak RSS {row['agent_peak_rss_mb']:.1f} MiB "
                     f"(resident at the end: {fmt_rss(row['agent_rss_breakdown_mb'])})")
    if row5:
        L.append(f"   nginx, default sampling ({row5['documents_per_request'] * 100:.1f}% of requests became documents): "
                 f"{row5['agent_cpu_us_per_req']:.2f} us CPU per request")
    row5o = (ov or {}).get("summary", {}).get("nginx", {}).get("passport-5%-nogate")
    if row5 and row5o:
        L.append(f"   nginx, default sampling, unsampled requests shipped to the agent (--no-sample-gate): "
                 f"{row5o['agent_cpu_us_per_req']:.2f} us CPU per request, server +"
                 f"{row5o['extra_server_cpu_us_per_req']:.2f} us (gated: +{row5['extra_server_cpu_us_per_req']:.2f} us)")
    if R.get("idle"):
        i = R["idle"]
        L.append(f"   {i['connections']:,} idle connections ({i['connections_seen']:,} seen by Passport): RSS "
                 f"{i['agent_rss_mb_before']:.1f} -> {i['agent_rss_mb_idle']:.1f} MiB, idle CPU {i['agent_cpu_ms_per_s_idle']:.2f} ms/s "
                 f"(no connections: {i['agent_cpu_ms_per_s_no_connections']:.2f} ms/s); "
                 f"+ wrk load {i['load_rps']:.0f} req/s: {i['agent_cpu_us_per_req_load']:.2f} us/request, peak RSS "
                 f"{i['agent_peak_rss_mb']:.1f} MiB ({fmt_rss(i['agent_rss_breakdown_mb'])})")
    if R.get("pipeline"):
        P = R["pipeline"]
        L.append("")
        L.append("3. Userspace pipeline (recorded stream replayed: decode -> reassembly -> parse -> correlate -> document)")
        L.append(f"   {P['events_per_s']:,.0f} events/s = {P['ns_per_event']:.0f} ns/event, {P['us_per_document']:.1f} us/document "
                 f"(discarding emitter); with the agent's UDP emitter {P['udp']['us_per_document']:.1f} us/document "
                 f"(sendmmsg batches of 64; one sendto per document: {P['udp_unbatched']['us_per_document']:.1f})")
        if P.get("callgrind"):
            c = P["callgrind"]
            L.append(f"   callgrind: {c['instructions_per_event']:,.0f} instructions/event, {c['instructions_per_document']:,.0f} "
                     f"instructions/document ({c['events']:,} events)")
    L.append("")
    L.append("4. Loss (Passport's counters)")
    for server in ("nginx", "node"):
        row = (ov or {}).get("summary", {}).get(server, {}).get("passport")
        if row:
            L.append(f"   {server}, all Passport rounds (up to {row['max_rps']:,.0f} req/s): kernel drops {row['kernel_dropped']}, "
                     f"documents missing {row['documents_missing']} of {row['served']:,} served")
    if R.get("stress"):
        s = R["stress"]
        L.append(f"   stress (nginx, wrk -t2 -c{s['connections']}): {s['rps']:,.0f} req/s, kernel drops {s['kernel_dropped']}, "
                 f"documents missing {s['documents_missing']} of {s['requests']:,}"
                 + (f"; counters {s['loss_counters']}" if s["loss_counters"] else ""))
    if R.get("syscalls"):
        L.append("")
        L.append("5. Cost per syscall (syscall_spin; median ns per op, [min-max] of rate vs untraced)")
        for mode, rows in R["syscalls"]["summary"].items():
            parts = [f"{c} {r['ns_per_op']:.0f}" + (f" ({r['extra_ns_per_op']:+.0f}) [{r['rate_ratio_min']:.2f}-{r['rate_ratio_max']:.2f}]"
                                                    if c != "untraced" else "") for c, r in rows.items()]
            L.append(f"   {mode:10}: " + "; ".join(parts))
        L.append("   (passport-other: Passport selecting another process; passport-self: selecting the spinning process;"
                 " base-*: the same with the --baseline binary)")
    if R.get("targets"):
        L.append("")
        L.append("Targets")
        for t in R["targets"]:
            mark = "MET " if t["met"] else ("info" if t["met"] is None else "MISS")
            L.append(f"   [{mark}] {t['name']}: {t['measured']} (target {t['target']})" + (f" — {t['detail']}" if t["detail"] else ""))
    if R.get("notes"):
        L.append("")
        L.extend("note: " + n for n in R["notes"])
    return "\n".join(L)


def chart(R, out_dir, png):
    ov = R.get("overhead")
    if not ov or not shutil.which("gnuplot"):
        return False
    rat = os.path.join(out_dir, "ratios.dat")
    cost = os.path.join(out_dir, "cost.dat")
    with open(rat, "w") as f, open(cost, "w") as g:
        f.write("# label thr thr_min thr_max p50 p50_min p50_max p99 p99_min p99_max\n")
        g.write("# label extra_server_us agent_us\n")
        for server, conds in ov["summary"].items():
            for cond, row in conds.items():
                if cond in ("untraced", "passport_vs_floor"):
                    continue
                label = f'"{server}\\n{cond}"'
                f.write(f"{label} " + " ".join(f"{row[k + s]:.4f}" for k in ("throughput_ratio", "p50_ratio", "p99_ratio")
                                              for s in ("", "_min", "_max")) + "\n")
                g.write(f"{label} {max(0.0, row['extra_server_cpu_us_per_req']):.3f} {row['agent_cpu_us_per_req']:.3f}\n")
    m = R["meta"]
    title = (f"Passport overhead vs untraced — {m['date'][:10]}, {m['cpus']} vCPU nested VM, "
             f"{ov['params']['rounds']} rounds, median and min-max")
    r = subprocess.run(["gnuplot", "-c", os.path.join(HERE, "plot.gp"), rat, cost, png, title],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("gnuplot failed: " + r.stderr, file=sys.stderr)
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description="Passport benchmark suite (see docs/performance.md)")
    ap.add_argument("--source", default=os.path.dirname(HERE))
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--quick", action="store_true", help="2 rounds, short runs (about 5 minutes)")
    ap.add_argument("--only", help="comma-separated sections: pipeline,overhead,client,stress,idle,syscalls")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float, help="seconds of measured wrk load per run")
    ap.add_argument("--warmup", type=float, help="seconds of wrk warm-up per run")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stress-connections", type=int, default=256)
    ap.add_argument("--idle-connections", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--max-other-load", type=float, default=30.0,
                    help="a run during which other processes used more than this %% of one CPU is run again")
    ap.add_argument("--retries", type=int, help="how many disturbed runs may be run again (default 12, quick 4)")
    ap.add_argument("--base-port", type=int, default=28780)
    ap.add_argument("--baseline", help="another passport binary to compare with in the same rounds: adds the "
                                       "conditions passport-base (nginx) and base-other/base-self (syscalls)")
    ap.add_argument("--out", help="results directory (default BUILD/bench/results)")
    a = ap.parse_args()
    q = a.quick
    a.rounds = a.rounds or (2 if q else 5)
    a.duration = a.duration or (3 if q else 8)
    a.warmup = a.warmup or (1 if q else 2)
    a.retries = a.retries if a.retries is not None else (4 if q else 12)
    a.stress_duration = 4 if q else 10
    a.idle_seconds = 3 if q else 10
    a.spin_seconds = 1 if q else 1.5
    a.pipeline_seconds = 3 if q else 6
    a.callgrind_iterations = 30 if q else 100
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (loads BPF programs)")

    bench = Bench(a)

    def on_signal(signum, frame):
        Proc.stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        bench.run()
    finally:
        Proc.stop_all()
    R = bench.results
    text = table(R)
    with open(os.path.join(bench.out_dir, "results.json"), "w") as f:
        json.dump(R, f, indent=1)
    with open(os.path.join(bench.out_dir, "table.txt"), "w") as f:
        f.write(text + "\n")
    png = os.path.join(bench.out_dir, "performance.png")
    charted = chart(R, bench.out_dir, png)
    print(text)
    print(f"\nresults: {os.path.join(bench.out_dir, 'results.json')}" + (f", chart: {png}" if charted else ""))


if __name__ == "__main__":
    main()
