#pragma once
// BpfProbes: owns the loaded skeleton (open -> configure rodata -> load -> attach) and the maps
// userspace writes (selected pids, server ports) or reads (drop counters). Destruction detaches
// every program and frees every map, so nothing is left in the kernel after the agent exits.
// Used from the agent's single pipeline thread.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "passport/abi.h"
#include "userspace/common/result.hpp"

struct passport_bpf;
struct ring_buffer;
struct bpf_program;

namespace passport::agent {

struct ProbeConfig {
    bool trace_all = true;
    std::vector<uint16_t> server_ports;  // empty: all
    uint32_t ringbuf_bytes = 8 * 1024 * 1024;
    uint32_t max_connections = 65536;  // entries of the conns and ignored_fds tables
    // Local sampling rules compiled for the kernel (userspace/sample/kernel_rules.hpp), written
    // before attach. Left disabled (sample_cfg.enabled 0), the kernel decides nothing and every
    // minted trace is left to userspace.
    std::vector<pp_sample_rule> sample_rules;  // at most PP_MAX_SAMPLE_RULES
    pp_sample_rule sample_default{};
    pp_sample_cfg sample_cfg{};
    // Read every request's method, path and Host for the sampling rules whatever the rules at
    // load say (rules that arrive later, from X-Ray, may match on them).
    bool request_text = false;
    // Load the header injection programs (sock_ops + sk_msg); attached by agent/injection.
    bool inject = false;
    // The gate on unsampled requests (their bytes are not shipped); --no-sample-gate clears it.
    bool sample_gate = true;
};

// Totals over all CPUs of a per-CPU array of u64 counters indexed 0..N-1 (drop reasons, kernel
// context counters, injection counters). Zeros when the map cannot be read.
std::vector<uint64_t> sum_percpu_counters(int map_fd, uint32_t count);

template <size_t N>
std::array<uint64_t, N> sum_percpu_counters(int map_fd) {
    std::array<uint64_t, N> out{};
    std::vector<uint64_t> sums = sum_percpu_counters(map_fd, static_cast<uint32_t>(N));
    for (size_t i = 0; i < N && i < sums.size(); i++) out[i] = sums[i];
    return out;
}

// The keys of a BPF hash map with u32 keys (empty when fd < 0).
std::vector<uint32_t> u32_map_keys(int fd);

class BpfProbes {
  public:
    static Result<std::unique_ptr<BpfProbes>> load(const ProbeConfig& cfg);
    ~BpfProbes();
    BpfProbes(const BpfProbes&) = delete;
    BpfProbes& operator=(const BpfProbes&) = delete;

    Result<bool> select_pid(uint32_t tgid);
    void unselect_pid(uint32_t tgid);
    bool is_selected(uint32_t tgid) const;
    // Every selected process (the traced_pids list), for a reload to compare with.
    std::vector<uint32_t> selected_pids() const;
    // Writes the kernel's sampling rules (at load, and again when the configuration is
    // reloaded: a request reads them at its first read, so in-flight requests keep their
    // decision).
    Result<bool> set_sampling(const std::vector<pp_sample_rule>& rules,
                              const pp_sample_rule& default_rule, const pp_sample_cfg& cfg);
    // A process's own sampling rule mask (bit i: kernel rule i), replacing sample_cfg's
    // default_mask for it. The table holds 8192 processes: when full, this fails and the process
    // keeps default_mask. Entries go when their process exits or is unselected.
    Result<bool> set_process_rules(uint32_t tgid, uint32_t mask);
    void clear_process_rules(uint32_t tgid);
    // Per kernel rule (index as sample_rules; PP_MAX_SAMPLE_RULES: the default), the totals over
    // CPUs of the kernel's sampling statistics since load. Cumulative: a reader reports the
    // difference from its previous read, and reads before changing the rules (a new rule at an
    // index inherits the counts there).
    using SamplingStats = std::array<pp_sample_stat, PP_MAX_SAMPLE_RULES + 1>;
    SamplingStats read_sampling_stats() const;
    // Server ports (--port): removes those of `before` not in `after`, adds `after`. Only
    // meaningful when the programs were loaded with ports (filter_ports is fixed at load).
    Result<bool> set_server_ports(const std::vector<uint16_t>& before,
                                  const std::vector<uint16_t>& after);
    // The probes' own view of the selection (the pid_bits bitmap), which they test on
    // every syscall; is_selected() reads the traced_pids list. Both change together.
    bool pid_bit_selected(uint32_t tgid) const;
    // Marks a process as having TLS uprobes (pid_bits slot PP_BITS_TLS): only such processes'
    // socket syscalls look at the TLS maps. Set before attaching its uprobes, cleared after
    // detaching them.
    void set_tls_proc(uint32_t tgid, bool on);
    // Marks a selected process whose outgoing requests are never injected (pid_bits slot
    // PP_BITS_NO_INJECT; inherited by its forks, cleared when it is unselected or exits). Set
    // before the process is selected, so it is never injected in between.
    void set_no_inject(uint32_t tgid, bool on);
    bool no_inject(uint32_t tgid) const;

    // fd of the events ring buffer map, for ring_buffer__new.
    int events_map_fd() const;

    // Sum over CPUs of each drop reason.
    std::array<uint64_t, PP_DROP_REASON_COUNT> drop_counts() const;
    // Entries the kernel evicted from the LRU maps to make room (never deleted by Passport):
    // connections (conns) and thread trace contexts (thread_ctx).
    struct LruEvictions {
        uint64_t conns = 0;
        uint64_t thread_ctx = 0;
    };
    LruEvictions lru_evictions() const;

    // Writes CLOCK_REALTIME - CLOCK_MONOTONIC into clock_sync, so trace ids the kernel mints
    // carry the right epoch seconds. Done before attach; the agent repeats it every second.
    void refresh_clock();
    // The trace context the kernel keeps for a thread (key pid_tgid), if any.
    bool thread_ctx(uint64_t pid_tgid, pp_trace_ctx& out) const;
    // Whether the kernel's head scan reads a request's method, path and Host (some local sampling
    // rule looks at them); else it reads only the trace headers (rules_read_request_text).
    bool reads_request_text() const;
    // Whether these rules can be decided by the loaded programs: false when a rule matches on
    // method, path or Host and the programs were loaded without reading them.
    bool can_decide(const std::vector<pp_sample_rule>& rules, const pp_sample_cfg& cfg) const;
    // Sum over CPUs of each enum pp_ctx_counter.
    std::array<uint64_t, PP_CTXC_COUNT> ctx_counts() const;

    // Names of attached programs, for the start report.
    const std::vector<std::string>& attached() const { return attached_; }
    // False when the kernel refused tp_btf: children forked by selected processes are then
    // not selected automatically (only --exe matches at exec and the start-up scan apply).
    bool fork_inheritance() const { return fork_inheritance_; }
    // True when the injection programs were loaded; else why not (empty when not asked for).
    bool injection_loaded() const { return inject_loaded_; }
    const std::string& injection_error() const { return inject_error_; }
    // The loaded skeleton, for agent/injection (attaches the injection programs, fills its maps).
    passport_bpf* skeleton() const { return skel_; }

    // A program or map of the object by name (nullptr / -1 when absent): the TLS tracer attaches
    // the uprobe programs per process itself (agent/tls_tracer.cpp); load() leaves them alone.
    bpf_program* program(const char* name) const;
    int map_fd(const char* name) const;

  private:
    BpfProbes() = default;
    static Result<passport_bpf*> open_and_load(const ProbeConfig& cfg, bool with_fork,
                                               bool with_inject);
    static Result<passport_bpf*> open_and_load_any(const ProbeConfig& cfg, bool with_inject,
                                                   bool& fork_ok);

    void set_pid_bit(uint32_t slot, uint32_t tgid, bool on);

    passport_bpf* skel_ = nullptr;
    uint64_t* pid_bits_ = nullptr;  // the pid_bits map, memory-mapped: PP_BITS_SLOTS slots
    size_t pid_bits_len_ = 0;
    size_t pid_bits_words_ = 0;
    std::vector<std::string> attached_;
    bool fork_inheritance_ = true;
    bool inject_loaded_ = false;
    std::string inject_error_;
};

// Whether any local sampling rule the kernel can reach matches on a request's method, path or
// Host. When none does, the kernel head scan skips the request line and Host (ctx_parse.bpf.h).
bool rules_read_request_text(const ProbeConfig& cfg);

const char* drop_reason_name(int reason);
const char* ctx_counter_name(int counter);

}  // namespace passport::agent
