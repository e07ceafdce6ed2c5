#!/usr/bin/python3
"""What the rendered chart must do for Passport, checked on one render of the chart.

Usage: check_chart.py REPO_ROOT MANIFESTS.yaml...   (exit 1 with one line per broken promise)

Holds for every values file in helm/passport/ci/: the agent's DaemonSet runs in the host pid
namespace with the named capabilities only (or privileged), a read-only root with /tmp as an
emptyDir, the host mounts the agent needs, its config from the ConfigMap with a checksum
annotation, health probes on the metrics port, NODE_NAME, and something selected with
kube-system and its own namespace excluded unless named; RBAC matches the token mount;
selectors do not overlap; a ServiceMonitor selects the metrics Service.
"""
import json
import re
import sys

import yaml

CAPS = {"BPF", "PERFMON", "SYS_PTRACE", "NET_ADMIN", "DAC_READ_SEARCH", "CHECKPOINT_RESTORE"}
SELECTORS = ("k8s_namespace", "k8s_label", "k8s_workload", "exe", "port")


class Checker:
    def __init__(self, docs):
        self.docs = docs
        self.errors = []

    def expect(self, cond, msg):
        if not cond:
            self.errors.append(msg)
        return cond

    def of_kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]


def agent_daemonset(c):
    for ds in c.of_kind("DaemonSet"):
        for ctr in ds["spec"]["template"]["spec"]["containers"]:
            if ctr["name"] == "passport":
                return ds, ctr
    c.expect(False, "no DaemonSet with a container named passport")
    return None, None


def check_security(c, ctr):
    sc = ctr.get("securityContext", {})
    c.expect(sc.get("readOnlyRootFilesystem") is True, "root filesystem not read-only")
    if sc.get("privileged"):
        return
    c.expect(sc.get("privileged") is False, "privileged not set to false")
    caps = sc.get("capabilities", {})
    c.expect(caps.get("drop") == ["ALL"], f"capabilities.drop is {caps.get('drop')}, not [ALL]")
    added = set(caps.get("add", []))
    c.expect(CAPS <= added, f"capabilities missing: {sorted(CAPS - added)}")
    allowed = CAPS | {"SYS_RESOURCE", "SYS_ADMIN"}
    c.expect(added <= allowed, f"capabilities beyond the documented set: {sorted(added - allowed)}")
    if "SYS_ADMIN" not in added:
        c.expect(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation not false")


def mounts_by_path(pod, ctr):
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    return {m["mountPath"]: (m, volumes.get(m["name"], {})) for m in ctr.get("volumeMounts", [])}


def check_mounts(c, pod, ctr, configmap_name):
    mounts = mounts_by_path(pod, ctr)
    wanted = {"/host/sys/fs/cgroup": ("/sys/fs/cgroup", True), "/sys/kernel/btf": ("/sys/kernel/btf", True),
              "/sys/kernel/tracing": ("/sys/kernel/tracing", False), "/sys/fs/bpf": ("/sys/fs/bpf", False)}
    for path, (host, ro) in wanted.items():
        m, v = mounts.get(path, ({}, {}))
        c.expect(v.get("hostPath", {}).get("path") == host, f"{path}: not the host's {host}")
        if ro:
            c.expect(m.get("readOnly") is True, f"{path}: not read-only")
    c.expect("emptyDir" in mounts.get("/tmp", ({}, {}))[1], "/tmp is not an emptyDir")
    for path, (m, v) in mounts.items():
        if v.get("hostPath", {}).get("type") == "Socket":
            c.expect(m.get("readOnly") is True and path == "/host" + v["hostPath"]["path"],
                     f"{path}: a runtime socket not read-only at /host<its path>")
    cfg = mounts.get("/etc/passport", ({}, {}))[1]
    c.expect(cfg.get("configMap", {}).get("name") == configmap_name, "/etc/passport is not the chart's ConfigMap")


def check_container(c, ds, ctr, metrics_port):
    pod = ds["spec"]["template"]["spec"]
    c.expect(pod.get("hostPID") is True, "hostPID is not true")
    c.expect(ctr.get("command") == ["/usr/bin/passport"], f"command is {ctr.get('command')}")
    c.expect(ctr.get("args", [])[:2] == ["--config", "/etc/passport/passport.yaml"], "args do not start with --config")
    env = {e["name"]: e for e in ctr.get("env", [])}
    c.expect(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
             "NODE_NAME is not spec.nodeName")
    if "AWS_XRAY_DAEMON_ADDRESS" in env:
        c.expect(env.get("HOST_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP"
                 and env["AWS_XRAY_DAEMON_ADDRESS"]["value"].startswith("$(HOST_IP):"),
                 "AWS_XRAY_DAEMON_ADDRESS is not built from status.hostIP")
    ports = {p.get("name"): p for p in ctr.get("ports", [])}
    c.expect(ports.get("metrics", {}).get("containerPort") == metrics_port,
             f"port 'metrics' is not the metrics_address port {metrics_port}")
    for probe, path in (("livenessProbe", "/healthz"), ("startupProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = ctr.get(probe, {}).get("httpGet", {})
        c.expect(get.get("path") == path and get.get("port") == "metrics", f"{probe} is not GET {path} on port metrics")
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    c.expect(re.fullmatch(r"[0-9a-f]{64}", ann.get("checksum/config", "")), "no sha256 checksum/config annotation")
    if "prometheus.io/port" in ann:
        c.expect(ann["prometheus.io/port"] == str(metrics_port), "prometheus.io/port is not the metrics port")


def agent_flags(repo):
    """Long flags in the agent's option tables ({"--name", ...} rows of agent/*.cpp)."""
    import glob
    flags = set()
    for path in glob.glob(f"{repo}/agent/*.cpp"):
        with open(path, encoding="utf-8") as f:
            flags |= set(re.findall(r'\{"--([a-z0-9-]+)"', f.read()))
    return flags


def check_keys(c, config, repo):
    flags = agent_flags(repo)
    if "config" not in flags:
        if not getattr(check_keys, "noted", False):
            print("check_chart: note: this agent has no --config flag; config keys not compared with its flags")
            check_keys.noted = True
        return
    for key in config:
        flag = key.replace("_", "-")
        c.expect(flag in flags or f"no-{flag}" in flags, f"passport.yaml key {key}: the agent has no --{flag}")


def check_config(c, cm, repo):
    config = yaml.safe_load(cm["data"]["passport.yaml"])
    rules = json.loads(cm["data"]["sampling-rules.json"])
    c.expect(rules.get("version") in (1, 2) and "default" in rules, "sampling-rules.json lacks version/default")
    c.expect(config.get("sampling_rules") == "/etc/passport/sampling-rules.json", "sampling_rules not the mounted file")
    c.expect(any(config.get(k) for k in SELECTORS), "nothing selected: the agent would trace the whole node")
    if config.get("k8s_api") == "auto":
        named = config.get("k8s_namespace", [])
        excluded = config.get("k8s_exclude_namespace", [])
        for ns in ("kube-system", cm["metadata"]["namespace"]):
            c.expect(ns in named or ns in excluded, f"namespace {ns} neither named nor excluded")
    check_keys(c, config, repo)
    m = re.fullmatch(r"0\.0\.0\.0:(\d+)", str(config.get("metrics_address", "")))
    c.expect(m, "metrics_address is not 0.0.0.0:PORT")
    return int(m.group(1)) if m else None


def check_rbac(c, ds):
    pod = ds["spec"]["template"]["spec"]
    roles = c.of_kind("ClusterRole")
    if not pod.get("automountServiceAccountToken"):
        c.expect(not roles, "a ClusterRole is rendered but the agent gets no token")
        return
    c.expect(len(roles) == 1, "the agent mounts a token but no ClusterRole is rendered")
    granted = {(g, r) for rule in (roles[0]["rules"] if roles else []) if {"get", "list", "watch"} <= set(rule["verbs"])
               for g in rule["apiGroups"] for r in rule["resources"]}
    for need in (("", "pods"), ("", "namespaces"), ("apps", "replicasets"), ("apps", "deployments")):
        c.expect(need in granted, f"ClusterRole does not grant get/list/watch on {need}")
    binds = c.of_kind("ClusterRoleBinding")
    c.expect(any(s["name"] == pod["serviceAccountName"] for b in binds for s in b["subjects"]),
             "no ClusterRoleBinding for the agent's service account")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_selectors(c):
    daemonsets = c.of_kind("DaemonSet")
    for ds in daemonsets:
        for other in daemonsets:
            hit = selects(ds["spec"]["selector"]["matchLabels"], other["spec"]["template"]["metadata"]["labels"])
            c.expect(hit == (ds is other), f"DaemonSet {ds['metadata']['name']} selector vs pods of {other['metadata']['name']}")
    services = c.of_kind("Service")
    for svc in services:
        chosen = [d["metadata"]["name"] for d in daemonsets if selects(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        c.expect(len(chosen) == 1, f"Service {svc['metadata']['name']} selects pods of {chosen}")
    for sm in c.of_kind("ServiceMonitor"):
        match = [s for s in services if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
        c.expect(len(match) == 1, "the ServiceMonitor does not select exactly the metrics Service")
        ports = {p["name"] for s in match for p in s["spec"]["ports"]}
        c.expect(all(e["port"] in ports for e in sm["spec"]["endpoints"]), "ServiceMonitor endpoint port not in the Service")


def check_quota(c, ds):
    """A priority-class ResourceQuota must name the class the agent pods use."""
    cls = ds["spec"]["template"]["spec"].get("priorityClassName")
    for q in c.of_kind("ResourceQuota"):
        named = [v for e in q["spec"]["scopeSelector"]["matchExpressions"] if e["scopeName"] == "PriorityClass"
                 for v in e["values"]]
        c.expect(cls and cls in named, f"ResourceQuota {q['metadata']['name']} does not admit class {cls}")


def main(path, repo):
    with open(path, encoding="utf-8") as f:
        c = Checker([d for d in yaml.safe_load_all(f) if d])
    ds, ctr = agent_daemonset(c)
    cms = c.of_kind("ConfigMap")
    if ds and c.expect(len(cms) == 1, "not exactly one ConfigMap"):
        port = check_config(c, cms[0], repo)
        check_container(c, ds, ctr, port)
        check_security(c, ctr)
        check_mounts(c, ds["spec"]["template"]["spec"], ctr, cms[0]["metadata"]["name"])
        check_rbac(c, ds)
        check_selectors(c)
        check_quota(c, ds)
    for e in c.errors:
        print(f"check_chart: {path}: {e}", file=sys.stderr)
    if not c.errors:
        print(f"check_chart: {path}: ok")
    return 1 if c.errors else 0


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: check_chart.py REPO_ROOT MANIFESTS.yaml...")
    sys.exit(max(main(p, sys.argv[1]) for p in sys.argv[2:]))
