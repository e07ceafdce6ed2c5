#pragma once
// Agent configuration from the command line and environment, validated with messages that say
// what is wrong and what is expected.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "userspace/aws/aws_call.hpp"
#include "userspace/common/result.hpp"
#include "userspace/k8s/selection.hpp"

namespace passport::aws {
// Config equality (a file key and its flag give the same Config) compares endpoint lists.
inline bool operator==(const EndpointSpec& a, const EndpointSpec& b) {
    return a.host == b.host && a.port == b.port;
}
}  // namespace passport::aws

namespace passport::agent {

struct Config {
    // Where documents go. daemon_address is "host:port" (UDP); empty with output set = no UDP.
    std::string daemon_address;
    bool daemon_address_explicit = false;   // given by flag or AWS_XRAY_DAEMON_ADDRESS
    std::string output;                     // --output FILE or "-"
    std::vector<uint32_t> pids;             // --pid
    std::vector<std::string> exe_globs;     // --exe
    std::vector<uint16_t> ports;            // --port
    std::string service_name;               // --service-name
    std::string sampling_rules;             // --sampling-rules FILE
    std::string sampling;                   // --sampling centralized|local (set after parsing)
    std::string record;                     // --record FILE: raw events as JSON lines
    bool record_raw = false;                // --record-raw: keep credentials in recorded bytes
    bool redact = true;                     // --no-redact: keep credential query values
    std::vector<std::string> redact_names;  // --redact-query-param NAME (repeatable)
    bool export_process_args = false;       // --export-process-args: argv in metadata
    double duration_s = 0;                  // --duration: stop after this long (0 = until signal)
    uint32_t max_connections = 65536;       // --max-connections: kernel conns table entries
    uint32_t ringbuf_mb = 8;                // --ringbuf-mb: ~400 ms of events at 20k req/s
    uint32_t memory_budget_mb = 256;        // --memory-budget-mb: stream buffers (0 = unlimited)
    std::vector<aws::EndpointSpec> aws_endpoints;  // --aws-endpoint HOST[:PORT]
    bool aws_calls = true;                         // --no-aws-calls turns AWS call recognition off
    bool show_help = false;
    bool show_version = false;
    bool demo = false;  // `passport demo`
    bool verbose = false;
    bool tls = true;                       // --no-tls: no OpenSSL uprobes (docs/tls.md)
    bool inject = true;                    // --no-inject turns X-Amzn-Trace-Id injection off
    bool sample_gate = true;               // --no-sample-gate ships unsampled bytes
    std::vector<std::string> inject_deny;  // --inject-deny PORT|CIDR (validated)
    std::string config_file;               // --config FILE (YAML; agent/config_file.hpp)
    std::string log_format = "text";       // --log-format text|json
    double summary_interval_s = 60;        // --summary-interval SECONDS (0: no summary line)
    // --metrics-address HOST:PORT|off: /healthz, /readyz, /metrics ("" = off). Loopback by
    // default; a bind failure stops the agent only when the address was given.
    std::string metrics_address = "127.0.0.1:9472";
    bool metrics_address_explicit = false;
    std::string cgroup_root;       // --cgroup-root PATH: the host's cgroup v2 mount ("" = find it)
    k8s::Rules k8s;                // --k8s-namespace, --k8s-label, ... (docs/selection.md)
    std::string k8s_api = "auto";  // --k8s-api auto|off|https://HOST[:PORT]
    std::string k8s_service_account_dir =  // --k8s-service-account-dir: token, ca.crt
        "/var/run/secrets/kubernetes.io/serviceaccount";
    std::string node_name;                            // --node-name (else $NODE_NAME at start)
    std::vector<std::string> service_name_overrides;  // --service-name-override (validated)
    std::string cluster_name;                         // --cluster-name
    std::string imds = "v2";                          // --imds v2|v2-then-v1|off
    std::string ecs_metadata_host = "169.254.170.2";  // --ecs-metadata-host
    // --runtime-socket PATH, repeatable: container runtimes asked for pod labels
    // (docs/identity.md)
    std::vector<std::string> runtime_sockets;
    // --sdk-segments suppress|keep: server segments of processes with their own X-Ray SDK
    bool keep_sdk_segments = false;

    bool trace_all() const { return pids.empty() && exe_globs.empty() && !k8s.any(); }
    bool operator==(const Config&) const = default;
};

// What each setting was given as, by config-file key ("pid" -> {"12", "13"}; a switch -> {""}),
// flags and file together: a reload compares two of these to name the keys that changed.
using Settings = std::map<std::string, std::vector<std::string>>;

// argv[0] excluded. `env_daemon` is AWS_XRAY_DAEMON_ADDRESS (nullptr when unset). With
// --config FILE the file is read first and the flags given override its keys.
Result<Config> parse_args(const std::vector<std::string>& args, const char* env_daemon,
                          Settings* settings = nullptr);

// The option table as the config file sees it: every long option but --help, --version and
// --config. `takes_value` false marks a switch.
struct OptionRow {
    std::string flag;
    bool takes_value = false;
};
std::vector<OptionRow> option_rows();

// Applies one option of the table (value ignored for a switch); the error text, empty when good.
std::string apply_option(const std::string& flag, const std::string& value, Config& c);

std::string usage();

// A --inject-deny entry: a destination port, or an IPv4/IPv6 CIDR (addr in network order,
// IPv4 as the 4 first bytes).
struct DenyEntry {
    bool is_port = false;
    uint16_t port = 0;
    int family = 0;  // AF_INET / AF_INET6
    uint8_t addr[16] = {};
    uint32_t prefix = 0;
};
Result<DenyEntry> parse_deny(const std::string& v);

// Destination ports never injected, whatever --inject-deny says: well-known protocols that are
// not HTTP/1, several of them with the server speaking first, so a client's socket would sit in
// the sockhash while it waits in recv() before its first send (docs/injection.md).
inline constexpr uint16_t kDefaultInjectDenyPorts[] = {
    21,  22,  23,   25,   53,   110,  143,  389,  445,  465,   587,  636,
    993, 995, 2049, 3306, 5432, 5672, 6379, 9042, 9092, 11211, 27017};

// fnmatch-style glob test of --exe against an executable path, its basename, or the comm name.
bool exe_matches(const std::string& glob, const std::string& exe_path, const std::string& comm);

}  // namespace passport::agent
