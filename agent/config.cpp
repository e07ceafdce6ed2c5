#include "agent/config.hpp"

#include <arpa/inet.h>
#include <fnmatch.h>

#include <array>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "agent/config_file.hpp"
#include "userspace/export/daemon_address.hpp"
#include "userspace/identity/naming.hpp"

namespace passport::agent {
namespace {

// Numbers a flag refuses although they are in range, and the reason it gives.
struct Refuse {
    bool (*when)(uint64_t) = nullptr;
    const char* why = "";
};

constexpr Refuse kZeroPort{[](uint64_t n) { return n == 0; }, "0 is not a port"};

Result<uint64_t> parse_uint(const std::string& flag, const std::string& v, uint64_t max,
                            Refuse refuse = {}) {
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
        return make_error(flag + ": expected a number, got '" + v + "'");
    errno = 0;
    unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
    if (errno != 0 || n > max)
        return make_error(flag + ": " + v + " is out of range (max " + std::to_string(max) + ")");
    if (refuse.when && refuse.when(n)) return make_error(flag + ": " + refuse.why);
    return static_cast<uint64_t>(n);
}

}  // namespace

Result<DenyEntry> parse_deny(const std::string& v) {
    DenyEntry e;
    if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos) {
        auto n = parse_uint("--inject-deny", v, 65535, kZeroPort);
        if (!n) return make_error(n.error());
        e.is_port = true;
        e.port = static_cast<uint16_t>(*n);
        return e;
    }
    std::string addr = v, prefix;
    if (auto slash = v.find('/'); slash != std::string::npos) {
        addr = v.substr(0, slash);
        prefix = v.substr(slash + 1);
    }
    if (inet_pton(AF_INET, addr.c_str(), e.addr) == 1) {
        e.family = AF_INET;
    } else if (inet_pton(AF_INET6, addr.c_str(), e.addr) == 1) {
        e.family = AF_INET6;
    } else {
        return make_error("--inject-deny: expected a port or an address/prefix (CIDR), got '" + v +
                          "'");
    }
    uint32_t max = e.family == AF_INET ? 32 : 128;
    e.prefix = max;
    if (!prefix.empty() || v.find('/') != std::string::npos) {
        auto n = parse_uint("--inject-deny prefix", prefix, max);
        if (!n) return make_error(n.error());
        e.prefix = static_cast<uint32_t>(*n);
    }
    return e;
}

std::string usage() {
    return R"(usage: passport [options]
       passport demo [options]
       passport check-tls PATH...

Traces HTTP requests served by unmodified processes with eBPF and sends them to an AWS X-Ray
daemon as segment documents. Needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).

Selection (none given: every process except passport itself):
  --pid N               trace process N and the processes it forks (repeatable)
  --exe GLOB            trace processes whose executable path, file name or command name
                        matches GLOB, running now or started later (repeatable)
  --port N              only server connections on local port N (repeatable)

Kubernetes selection (any of these: only processes in pods on this node; see docs/selection.md):
  --k8s-namespace NS    trace pods in namespace NS (repeatable; kube-system only when named)
  --k8s-exclude-namespace NS
                        never trace pods in namespace NS (repeatable)
  --k8s-label KEY=VALUE trace pods with this label (repeatable: any of them)
  --k8s-exclude-label KEY=VALUE
                        never trace pods with this label (repeatable)
  --k8s-workload KIND/NAME
                        trace pods of this workload, e.g. deployment/web (repeatable)
  --k8s-exclude-workload KIND/NAME
                        never trace pods of this workload (repeatable)
  --k8s-no-inject-namespace NS
                        trace pods in namespace NS but never inject into their requests
  --k8s-api auto|off|URL
                        pod labels and owners from the API server: auto (in a cluster), off,
                        or the server's https URL (default auto)
  --k8s-service-account-dir DIR
                        token and ca.crt for the API server
                        (default /var/run/secrets/kubernetes.io/serviceaccount)
  --node-name NAME      this node's name (default: $NODE_NAME)
  --runtime-socket PATH container runtime socket asked for a pod's labels when the API server
                        does not know it (repeatable; default: docker, podman and crio sockets
                        under /run and /host/run)
  With --pid/--exe as well, a process must satisfy both (AND).

Output:
  --daemon-address A    X-Ray daemon: HOST:PORT or "udp:HOST:PORT tcp:HOST:PORT"
                        (default: $AWS_XRAY_DAEMON_ADDRESS, else 127.0.0.1:2000)
  --output FILE|-       also write each document as a JSON line to FILE or stdout; without
                        --daemon-address/AWS_XRAY_DAEMON_ADDRESS, instead of UDP
                        (--output and --record files: mode 0600, never through a symlink,
                        an existing file only if it is the agent user's regular file)
  --service-name NAME   segment name when nothing more specific names the process (its
                        AWS_XRAY_TRACING_NAME/OTEL_SERVICE_NAME, its pod's workload, its ECS
                        container; docs/identity.md); default: script or executable name

Identity (aws.ec2/aws.ecs/aws.eks and origin in every segment; see docs/identity.md):
  --service-name-override NAMESPACE/KIND/NAME=SERVICE
                        name the pods of this workload SERVICE (repeatable; KIND e.g.
                        Deployment, StatefulSet, DaemonSet, CronJob, Job)
  --cluster-name NAME   the EKS cluster's name in aws.eks (default: the node's
                        eks:cluster-name instance tag from IMDS when tags are in metadata)
  --imds v2|v2-then-v1|off
                        EC2 instance identity from IMDSv2 (default); v2-then-v1 also tries
                        IMDSv1 when no token is given; off: none. AWS_EC2_METADATA_DISABLED
                        and AWS_EC2_METADATA_SERVICE_ENDPOINT are honoured as the AWS SDKs do
  --ecs-metadata-host H the only host an ECS_CONTAINER_METADATA_URI_V4 may name (default
                        169.254.170.2, the ECS agent's address); others are not fetched
  --sampling-rules FILE X-Ray local sampling rules (JSON, version 1 or 2); default: the SDKs'
                        default rule, 1 request per second then 5%
  --sampling centralized|local
                        centralized: X-Ray's sampling rules through the daemon's TCP proxy
                        (the tcp part of the daemon address), the local rules while X-Ray is
                        unreachable; local: only the local rules. Default: centralized when
                        documents go to a daemon, else local
  --no-sample-gate      ship the bytes of unsampled requests to the agent as well (they are then
                        dropped there); by default the kernel keeps them
  --record FILE         write the raw kernel events as JSON lines (for replay tests), with
                        credential header and query values masked with '*'
  --record-raw          --record keeps credential header and query values as captured

Secrets (see docs/xray-mapping.md "Redaction"):
  --redact-query-param NAME
                        also redact the value of query parameters and arguments named NAME
                        (any case; repeatable). Credential-looking names are redacted anyway
  --no-redact           keep credential query values in URLs (userinfo is always removed)
  --export-process-args record the process's arguments in metadata (redacted); default: only
                        the executable path

AWS API calls (outgoing calls become `aws` subsegments; see docs/aws.md):
  --aws-endpoint H[:P]  also treat calls to this host (and port) as AWS API calls: LocalStack,
                        VPC endpoints with private names, proxies (repeatable). Hosts under
                        amazonaws.com and SigV4-signed requests are recognised without it
  --no-aws-calls        record AWS API calls as plain `remote` HTTP subsegments

Trace context propagation:
  --no-inject           never insert X-Amzn-Trace-Id into outgoing HTTP requests (kill switch;
                        calls still become subsegments, linked on this node by connection)
  --inject-deny P|CIDR  never inject into connections to port P or to addresses in CIDR
                        (e.g. 6379, 10.0.0.0/8, fd00::/8; repeatable)
  --cgroup-root PATH    the host's cgroup v2 mount to attach injection to (e.g.
                        /host/sys/fs/cgroup in a pod); default: found (docs/injection.md)
  --sdk-segments suppress|keep
                        a process with its own X-Ray SDK (it sends daemon datagrams or its own
                        X-Amzn-Trace-Id): suppress Passport's server segments for it, leaving
                        the SDK's (default), or keep both (docs/sdk.md)

Configuration file and logs (see docs/configuration.md):
  --config FILE         read options from a YAML (or JSON) file, one key per long option
                        (--daemon-address -> daemon_address); flags given override it.
                        SIGHUP reloads it: sampling rules and selection change in place
  --log-format F        text (default) or json: one JSON object per line on stderr
  --summary-interval S  one summary line every S seconds (default 60; 0: none)

Other:
  --duration SECONDS    stop after this long (default: run until SIGINT/SIGTERM)
  --ringbuf-mb N        kernel-to-agent ring buffer size in MiB, a power of two (default 8; it is mapped twice, so it counts twice in RSS)
  --max-connections N   kernel connection table size (default 65536); the least recently used
                        entry is evicted when it is full (kernel.conns_evicted counts them)
  --memory-budget-mb N  bytes all connections' stream buffers may hold together, in MiB (default 256;
                        0 = unlimited); past it the connections holding bytes longest are dropped
  --metrics-address A   serve /healthz, /readyz and /metrics on HOST:PORT, or "off"
                        (default 127.0.0.1:9472; see docs/deploy.md "Health and metrics")
  --no-tls              do not attach the OpenSSL uprobes (HTTPS stays opaque)
  -v, --verbose         debug logging
  -h, --help            this text
  --version             print the version

`passport demo` runs a short self-contained demonstration: two unmodified services on
loopback, a client driving requests, and a summary of what was captured.
`passport check-tls PATH...` says whether each binary (a program or a shared library) exports
the OpenSSL functions Passport hooks for HTTPS (see docs/tls.md).
)";
}

bool exe_matches(const std::string& glob, const std::string& exe_path, const std::string& comm) {
    auto base = [](const std::string& p) {
        auto s = p.rfind('/');
        return s == std::string::npos ? p : p.substr(s + 1);
    };
    if (!exe_path.empty() && (fnmatch(glob.c_str(), exe_path.c_str(), 0) == 0 ||
                              fnmatch(glob.c_str(), base(exe_path).c_str(), 0) == 0))
        return true;
    return !comm.empty() && fnmatch(glob.c_str(), comm.c_str(), 0) == 0;
}

namespace {

// Each flag that takes a value applies it to the config; the returned text is the error, empty
// when the value is good.
using ValueFlag = std::string (*)(const std::string& v, Config& c);

std::string set_pid(const std::string& v, Config& c) {
    auto n = parse_uint("--pid", v, 0x3fffffff,
                        {[](uint64_t x) { return x == 0; }, "0 is not a process"});
    if (!n) return n.error();
    c.pids.push_back(static_cast<uint32_t>(*n));
    return {};
}

std::string set_port(const std::string& v, Config& c) {
    auto n = parse_uint("--port", v, 65535, kZeroPort);
    if (!n) return n.error();
    c.ports.push_back(static_cast<uint16_t>(*n));
    return {};
}

std::string set_aws_endpoint(const std::string& v, Config& c) {
    auto e = aws::parse_endpoint(v);
    if (!e) return "--aws-endpoint: " + e.error();
    c.aws_endpoints.push_back(std::move(*e));
    return {};
}

std::string set_duration(const std::string& v, Config& c) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || d < 0)
        return "--duration: expected seconds, got '" + v + "'";
    c.duration_s = d;
    return {};
}

std::string set_log_format(const std::string& v, Config& c) {
    if (v != "text" && v != "json") return "--log-format: expected text or json, got '" + v + "'";
    c.log_format = v;
    return {};
}

std::string set_sdk_segments(const std::string& v, Config& c) {
    if (v != "suppress" && v != "keep")
        return "--sdk-segments: expected suppress or keep, got '" + v + "'";
    c.keep_sdk_segments = v == "keep";
    return {};
}

std::string set_summary_interval(const std::string& v, Config& c) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0' || !(d == 0 || (d >= 0.1 && d <= 86400)))
        return "--summary-interval: expected 0 (off) or seconds from 0.1 to 86400, got '" + v + "'";
    c.summary_interval_s = d;
    return {};
}

std::string set_inject_deny(const std::string& v, Config& c) {
    auto d = parse_deny(v);
    if (!d) return d.error();
    c.inject_deny.push_back(v);
    return {};
}

// --k8s-* rules: each value checked by its parser, then kept in the selection rules.
std::string add_k8s_name(const std::string& flag, const std::string& v,
                         std::vector<std::string>& list) {
    if (v.empty()) return flag + ": empty namespace";
    list.push_back(v);
    return {};
}

std::string add_k8s_label(const std::string& flag, const std::string& v,
                          std::vector<k8s::LabelRule>& list) {
    auto rule = k8s::parse_label_rule(v);
    if (!rule) return flag + ": " + rule.error();
    list.push_back(std::move(*rule));
    return {};
}

std::string set_k8s_workload(const std::string& v, Config& c) {
    auto rule = k8s::parse_workload_rule(v);
    if (!rule) return "--k8s-workload: " + rule.error();
    c.k8s.workloads.push_back(std::move(*rule));
    return {};
}

std::string set_k8s_exclude_workload(const std::string& v, Config& c) {
    auto rule = k8s::parse_workload_rule(v);
    if (!rule) return "--k8s-exclude-workload: " + rule.error();
    c.k8s.exclude_workloads.push_back(std::move(*rule));
    return {};
}

std::string add_service_name_override(const std::string& v, Config& c) {
    auto parsed = identity::ServiceNameOverrides::parse({v});
    if (!parsed) return parsed.error();
    c.service_name_overrides.push_back(v);
    return {};
}

std::string set_imds(const std::string& v, Config& c) {
    if (v != "v2" && v != "v2-then-v1" && v != "off")
        return "--imds: expected v2, v2-then-v1 or off, got '" + v + "'";
    c.imds = v;
    return {};
}

std::string set_k8s_api(const std::string& v, Config& c) {
    if (v != "auto" && v != "off" && v.rfind("https://", 0) != 0)
        return "--k8s-api: expected auto, off or an https:// URL, got '" + v + "'";
    c.k8s_api = v;
    return {};
}

std::string set_ringbuf_mb(const std::string& v, Config& c) {
    auto n = parse_uint(
        "--ringbuf-mb", v, 1024,
        {[](uint64_t x) { return x == 0 || (x & (x - 1)) != 0; }, "must be a power of two"});
    if (!n) return n.error();
    c.ringbuf_mb = static_cast<uint32_t>(*n);
    return {};
}

std::string set_max_connections(const std::string& v, Config& c) {
    auto n = parse_uint("--max-connections", v, 1u << 24,
                        {[](uint64_t x) { return x < 16; }, "at least 16"});
    if (!n) return n.error();
    c.max_connections = static_cast<uint32_t>(*n);
    return {};
}

std::string set_memory_budget_mb(const std::string& v, Config& c) {
    auto n = parse_uint("--memory-budget-mb", v, 1u << 20);
    if (!n) return n.error();
    c.memory_budget_mb = static_cast<uint32_t>(*n);
    return {};
}

// --metrics-address: "off", or HOST:PORT with HOST an IPv4 address or a bracketed IPv6 one
// (a listening address, so no name to resolve); port 0 lets the kernel pick one.
std::string set_metrics_address(const std::string& v, Config& c) {
    c.metrics_address_explicit = true;
    if (v == "off") {
        c.metrics_address.clear();
        return {};
    }
    const auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0)
        return "--metrics-address: expected HOST:PORT or off, got '" + v + "'";
    auto port = parse_uint("--metrics-address port", v.substr(colon + 1), 65535);
    if (!port) return port.error();
    const std::string host = v.substr(0, colon);
    std::array<uint8_t, 16> addr{};
    const bool v6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
    if (v6 ? inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), addr.data()) != 1
           : inet_pton(AF_INET, host.c_str(), addr.data()) != 1)
        return "--metrics-address: HOST must be an IPv4 address or a bracketed IPv6 address, "
               "got '" +
               host + "'";
    c.metrics_address = v;
    return {};
}

std::string set_cgroup_root(const std::string& v, Config& c) {
    if (v.empty() || v[0] != '/')
        return "--cgroup-root: expected an absolute path, got '" + v + "'";
    c.cgroup_root = v;
    return {};
}

// The flags that only keep their value as it is.
template <std::string Config::*field>
std::string set_text(const std::string& v, Config& c) {
    c.*field = v;
    return {};
}

// The repeatable flags whose values are kept as given, refused when empty with `empty_error`.
std::string append_nonempty(const std::string& v, std::vector<std::string>& list,
                            const char* empty_error) {
    if (v.empty()) return empty_error;
    list.push_back(v);
    return {};
}

const std::map<std::string, ValueFlag>& value_flags() {
    static const std::map<std::string, ValueFlag> flags = {
        {"--daemon-address",
         [](const std::string& v, Config& c) {
             c.daemon_address = v;
             c.daemon_address_explicit = true;
             return std::string();
         }},
        {"--output", set_text<&Config::output>},
        {"--pid", set_pid},
        {"--exe",
         [](const std::string& v, Config& c) {
             return append_nonempty(v, c.exe_globs, "--exe: empty pattern");
         }},
        {"--port", set_port},
        {"--service-name", set_text<&Config::service_name>},
        {"--sampling-rules", set_text<&Config::sampling_rules>},
        {"--sampling",
         [](const std::string& v, Config& c) {
             if (v != "centralized" && v != "local")
                 return std::string("--sampling: expected centralized or local, got '" + v + "'");
             c.sampling = v;
             return std::string();
         }},
        {"--record", set_text<&Config::record>},
        {"--redact-query-param",
         [](const std::string& v, Config& c) {
             return append_nonempty(v, c.redact_names, "--redact-query-param: empty name");
         }},
        {"--aws-endpoint", set_aws_endpoint},
        {"--duration", set_duration},
        {"--inject-deny", set_inject_deny},
        {"--ringbuf-mb", set_ringbuf_mb},
        {"--max-connections", set_max_connections},
        {"--memory-budget-mb", set_memory_budget_mb},
        {"--config", set_text<&Config::config_file>},
        {"--log-format", set_log_format},
        {"--summary-interval", set_summary_interval},
        {"--metrics-address", set_metrics_address},
        {"--cgroup-root", set_cgroup_root},
        {"--sdk-segments", set_sdk_segments},
        {"--k8s-namespace",
         [](const std::string& v, Config& c) {
             return add_k8s_name("--k8s-namespace", v, c.k8s.namespaces);
         }},
        {"--k8s-exclude-namespace",
         [](const std::string& v, Config& c) {
             return add_k8s_name("--k8s-exclude-namespace", v, c.k8s.exclude_namespaces);
         }},
        {"--k8s-no-inject-namespace",
         [](const std::string& v, Config& c) {
             return add_k8s_name("--k8s-no-inject-namespace", v, c.k8s.no_inject_namespaces);
         }},
        {"--k8s-label", [](const std::string& v,
                           Config& c) { return add_k8s_label("--k8s-label", v, c.k8s.labels); }},
        {"--k8s-exclude-label",
         [](const std::string& v, Config& c) {
             return add_k8s_label("--k8s-exclude-label", v, c.k8s.exclude_labels);
         }},
        {"--k8s-workload", set_k8s_workload},
        {"--k8s-exclude-workload", set_k8s_exclude_workload},
        {"--k8s-api", set_k8s_api},
        {"--k8s-service-account-dir", set_text<&Config::k8s_service_account_dir>},
        {"--node-name", set_text<&Config::node_name>},
        {"--service-name-override", add_service_name_override},
        {"--cluster-name", set_text<&Config::cluster_name>},
        {"--imds", set_imds},
        {"--ecs-metadata-host", set_text<&Config::ecs_metadata_host>},
        {"--runtime-socket",
         [](const std::string& v, Config& c) {
             return append_nonempty(v, c.runtime_sockets, "--runtime-socket: empty path");
         }},
    };
    return flags;
}

// Flags without a value (one given as --flag=value is accepted and the value ignored).
const std::map<std::string, void (*)(Config&)>& switches() {
    static const std::map<std::string, void (*)(Config&)> flags = {
        {"-h", [](Config& c) { c.show_help = true; }},
        {"--help", [](Config& c) { c.show_help = true; }},
        {"--version", [](Config& c) { c.show_version = true; }},
        {"-v", [](Config& c) { c.verbose = true; }},
        {"--verbose", [](Config& c) { c.verbose = true; }},
        {"--no-tls", [](Config& c) { c.tls = false; }},
        {"--record-raw", [](Config& c) { c.record_raw = true; }},
        {"--no-redact", [](Config& c) { c.redact = false; }},
        {"--export-process-args", [](Config& c) { c.export_process_args = true; }},
        {"--no-aws-calls", [](Config& c) { c.aws_calls = false; }},
        {"--no-inject", [](Config& c) { c.inject = false; }},
        {"--no-sample-gate", [](Config& c) { c.sample_gate = false; }},
    };
    return flags;
}

// "--flag=value" as flag and value; any other argument as itself with no value.
std::pair<std::string, std::optional<std::string>> split_inline_value(const std::string& arg) {
    const auto eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) return {arg, std::nullopt};
    return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// The long name of a flag ("-v" -> "--verbose"), as option_rows() and the config file name it.
std::string long_name(const std::string& flag) {
    if (flag == "-v") return "--verbose";
    if (flag == "-h") return "--help";
    return flag;
}

// Applies args[i], and the value after it for a flag given as "--flag VALUE" (i moves past it).
// `seen` collects each flag given, with its value (a switch: empty).
std::string apply_arg(const std::vector<std::string>& args, size_t& i, Config& c, Settings& seen) {
    auto [flag, value] = split_inline_value(args[i]);
    if (auto s = switches().find(flag); s != switches().end()) {
        s->second(c);
        seen[long_name(flag)].emplace_back("true");
        return {};
    }
    auto f = value_flags().find(flag);
    if (f == value_flags().end()) return "unknown option '" + args[i] + "' (see --help)";
    if (!value) {
        if (i + 1 >= args.size()) return flag + " needs a value";
        value = args[++i];
    }
    seen[flag].push_back(*value);
    return f->second(*value, c);
}

// The daemon address: the flag, else AWS_XRAY_DAEMON_ADDRESS, else the local daemon unless
// documents go only to --output.
Result<bool> settle_daemon_address(Config& c, const char* env_daemon) {
    if (!c.daemon_address_explicit && env_daemon && *env_daemon) {
        c.daemon_address = env_daemon;
        c.daemon_address_explicit = true;
    }
    if (c.daemon_address.empty() && c.output.empty()) c.daemon_address = "127.0.0.1:2000";
    if (!c.daemon_address.empty()) {
        auto parsed = exporter::parse_daemon_address(c.daemon_address);
        if (!parsed) return make_error("daemon address: " + parsed.error());
    }
    return true;
}

// The command line alone (after "demo"), with the flags it gave.
Result<Config> apply_command_line(const std::vector<std::string>& args, size_t first, Config c,
                                  Settings& seen) {
    for (size_t i = first; i < args.size(); i++) {
        if (std::string error = apply_arg(args, i, c, seen); !error.empty())
            return make_error(error);
    }
    return c;
}

// Settings by config-file key: "--no-tls" -> "tls" (value "false"), "--pid" -> "pid".
Settings settings_by_key(const Settings& by_flag) {
    Settings out;
    for (const auto& [flag, values] : by_flag) {
        auto key = config_key(flag);
        if (key.empty()) continue;
        auto& slot = out[key.name];
        if (key.negated) {
            slot = {"false"};
        } else {
            slot.insert(slot.end(), values.begin(), values.end());
        }
    }
    return out;
}

}  // namespace

std::vector<OptionRow> option_rows() {
    std::vector<OptionRow> rows;
    for (const auto& [flag, fn] : value_flags()) {
        if (flag != "--config") rows.push_back({flag, true});
    }
    for (const auto& [flag, fn] : switches()) {
        if (flag.rfind("--", 0) == 0 && flag != "--help" && flag != "--version")
            rows.push_back({flag, false});
    }
    return rows;
}

std::string apply_option(const std::string& flag, const std::string& value, Config& c) {
    if (auto s = switches().find(flag); s != switches().end()) {
        s->second(c);
        return {};
    }
    if (auto f = value_flags().find(flag); f != value_flags().end()) return f->second(value, c);
    return "unknown option '" + flag + "'";
}

Result<Config> parse_args(const std::vector<std::string>& args, const char* env_daemon,
                          Settings* settings) {
    Config c;
    size_t first = 0;
    if (!args.empty() && args[0] == "demo") {
        c.demo = true;
        first = 1;
    }
    Settings given;  // by flag
    auto cli = apply_command_line(args, first, c, given);
    if (!cli) return make_error(cli.error());
    Settings from_file;
    if (!cli->config_file.empty()) {
        // The file first, without the keys the command line gives; then the command line.
        auto applied = apply_config_file(cli->config_file, c, given, from_file);
        if (!applied) return make_error(applied.error());
        Settings again;
        cli = apply_command_line(args, first, c, again);
        if (!cli) return make_error(cli.error());
    }
    if (auto settled = settle_daemon_address(*cli, env_daemon); !settled)
        return make_error(settled.error());
    if (cli->sampling.empty())
        cli->sampling = cli->daemon_address.empty() ? "local" : "centralized";
    if (cli->sampling == "centralized" && cli->daemon_address.empty())
        return make_error("--sampling centralized needs an X-Ray daemon (--daemon-address)");
    if (settings) {
        *settings = settings_by_key(given);
        for (auto& [key, values] : from_file) settings->emplace(key, values);
    }
    return cli;
}

}  // namespace passport::agent
