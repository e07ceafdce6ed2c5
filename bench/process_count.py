#!/usr/bin/env python3
"""Start and exit of the agent against the number of selected processes (docs/performance.md,
"Process count"). As root:

    bench/process_count.py --agent build/agent/passport [--counts 10,100,1000] [--runs 1]
                           [--agent-label NAME] [--json OUT]

For each count N: N idle interpreters (`import ssl, time; time.sleep(...)`, so each maps libssl)
are started from a copy of /usr/bin/python3 named `ppbench-python3`, so `--exe 'ppbench-python3*'`
selects exactly them and nothing else on the machine. Then the agent starts and the suite reads:

  loaded_s     agent start -> its BPF programs loaded and attached (the start report's tp_btf
               line): the part of the start that does not depend on the process count
  ready_s      agent start -> `ready` on its log (plaintext tracing on)
  tls_s        agent start -> `tls: attached to N binaries ...` (every TLS uprobe in place)
  rss_mb       the agent's VmHWM once TLS is attached
  cpu_s        the agent's user+system CPU from start to TLS attached
  exit_s       SIGTERM -> the agent's process reaped (its perf events are closed by then)
  released_s   SIGTERM -> no uprobe perf event of ours left (`bpftool -j perf`), no link left

An unselected process's cost per SSL call once its libssl is probed per binary is the other
figure (`--trap-cost`): a loop of SSL_write on an SSL object with no connection (returns at once)
in an unselected process, ns per call with and without the agent probing the same libssl.
Every process started here is stopped by its pid. Standard library only.
"""
import argparse
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

OUR_PROGRAMS = {"ssl_write_enter", "ssl_read_enter", "ssl_write_ex_enter", "ssl_read_ex_enter",
                "ssl_set_fd_enter", "ssl_ret"}
IDLE = "import ssl, time\nopen({marker!r}, 'a').close()\ntime.sleep(1e6)\n"


def uprobes_of_ours():
    """Perf-event attachments of our TLS programs, anywhere on the machine (-1: unreadable)."""
    try:
        progs = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True,
                                          text=True).stdout or "[]")
        perf = json.loads(subprocess.run(["bpftool", "-j", "perf", "list"], capture_output=True,
                                         text=True).stdout or "[]")
    except json.JSONDecodeError:
        return -1
    ours = {p["id"] for p in progs if p.get("name") in OUR_PROGRAMS}
    return sum(1 for e in perf if e.get("prog_id") in ours)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_line(path, pattern, deadline):
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            for line in f:
                if rx.search(line):
                    return time.monotonic()
        time.sleep(0.005)
    return None


class Idle:
    """N idle interpreters that map libssl, started from the renamed copy."""

    def __init__(self, python, n, tmp):
        self.procs = []
        markers = []
        for i in range(n):
            marker = os.path.join(tmp, f"up.{i}")
            markers.append(marker)
            self.procs.append(subprocess.Popen([python, "-c", IDLE.format(marker=marker)],
                                               stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + 60 + n / 10
        while not all(os.path.exists(m) for m in markers):
            if time.monotonic() > deadline:
                raise SystemExit("idle interpreters did not start")
            time.sleep(0.05)

    def stop(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def one_run(agent, n, python, tmp):
    idle = Idle(python, n, tmp)
    log = os.path.join(tmp, f"agent.{n}.log")
    r = {"processes": n}
    try:
        with open(log, "w") as err:
            t0 = time.monotonic()
            p = subprocess.Popen([agent, "--exe", "ppbench-python3*", "--no-inject", "--output",
                                  os.path.join(tmp, "docs.jsonl")],
                                 stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = t0 + 600
        loaded = wait_line(log, r"\] tp_btf - ", deadline)
        ready = wait_line(log, r"\bready$", deadline)
        tls = ready
        with open(log, errors="replace") as f:
            background = "attaching in the background" in f.read()
        if background:  # an agent that attaches before `ready` has no such line
            tls = wait_line(log, r"tls: attached to \d+ binaries", deadline)
        if ready is None or tls is None:
            p.kill()
            p.wait()
            raise SystemExit(f"agent did not get ready with {n} processes; log {log}")
        r["loaded_s"] = round(loaded - t0, 3) if loaded else None
        r["ready_s"] = round(ready - t0, 3)
        r["tls_s"] = round(tls - t0, 3)
        r["rss_mb"] = round(hwm_mb(p.pid), 1)
        r["cpu_s"] = round(cpu_s(p.pid), 3)
        with open(log, errors="replace") as f:
            m = re.search(r"tls: attached to (\d+) binaries covering (\d+) processes", f.read())
        if m:
            r["binaries"], r["covered"] = int(m.group(1)), int(m.group(2))
        r["uprobes"] = uprobes_of_ours()
        t1 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait()
        r["exit_s"] = round(time.monotonic() - t1, 3)
        while uprobes_of_ours() != 0 and time.monotonic() - t1 < 600:
            time.sleep(0.05)
        r["released_s"] = round(time.monotonic() - t1, 3)
    finally:
        idle.stop()
    return r


# --- the cost an unselected process pays per SSL call once its libssl is probed per binary ---

def trap_loop_ns(calls):
    """ns per SSL_write on a connectionless SSL object, in this process."""
    ssl = ctypes.CDLL("libssl.so.3")
    for name, res in (("TLS_client_method", ctypes.c_void_p), ("SSL_CTX_new", ctypes.c_void_p),
                      ("SSL_new", ctypes.c_void_p)):
        getattr(ssl, name).restype = res
    ssl.SSL_CTX_new.argtypes = [ctypes.c_void_p]
    ssl.SSL_new.argtypes = [ctypes.c_void_p]
    ssl.SSL_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    crypto = ctypes.CDLL("libcrypto.so.3")
    s = ssl.SSL_new(ssl.SSL_CTX_new(ssl.TLS_client_method()))
    buf = b"x"
    write, clear = ssl.SSL_write, crypto.ERR_clear_error
    t = time.perf_counter_ns()
    for _ in range(calls):
        write(s, buf, 1)
        clear()
    return (time.perf_counter_ns() - t) / calls


def trap_cost(agent, python, tmp, calls, rounds):
    """Unselected loop, without agent / with the agent probing libssl per binary."""
    res = {"without_ns": [], "with_ns": []}
    for _ in range(rounds):
        for cond in ("without_ns", "with_ns"):
            p = idle = None
            if cond == "with_ns":
                # More than kPerProcessMax selected: the libssl is probed once, for every process.
                idle = Idle(python, 8, tmp)
                log = os.path.join(tmp, "agent.trap.log")
                with open(log, "w") as err:
                    p = subprocess.Popen([agent, "--exe", "ppbench-python3*", "--no-inject",
                                          "--output", os.path.join(tmp, "docs.jsonl")],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
                if wait_line(log, r"tls: attached to \d+ binaries", time.monotonic() + 120) is None:
                    p.kill()
                    raise SystemExit(f"agent not attached; log {log}")
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--_trap-loop",
                                  str(calls)], capture_output=True, text=True, check=True)
            res[cond].append(float(out.stdout))
            if p:
                p.send_signal(signal.SIGTERM)
                p.wait()
                idle.stop()
    return {k: sorted(v)[len(v) // 2] for k, v in res.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--agent", default="build/agent/passport")
    ap.add_argument("--counts", default="10,100,1000")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--trap-cost", action="store_true", help="also measure the unselected cost")
    ap.add_argument("--json")
    ap.add_argument("--_trap-loop", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a._trap_loop:
        print(trap_loop_ns(a._trap_loop))
        return
    if os.geteuid() != 0:
        raise SystemExit("bench/process_count.py: must run as root (the agent loads BPF programs)")
    agent = os.path.abspath(a.agent)
    tmp = tempfile.mkdtemp(prefix="ppbench-")
    try:
        python = os.path.join(tmp, "ppbench-python3")
        shutil.copy2(os.path.realpath("/usr/bin/python3"), python)
        results = {"runs": []}
        for n in [int(x) for x in a.counts.split(",")]:
            for _ in range(a.runs):
                r = one_run(agent, n, python, tmp)
                print(json.dumps(r), flush=True)
                results["runs"].append(r)
        if a.trap_cost:
            results["trap"] = trap_cost(agent, python, tmp, 200000, 3)
            print(json.dumps(results["trap"]), flush=True)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
