#include "agent/bpf_loader.hpp"

#include <algorithm>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

#include "agent/link_release.hpp"
#include "passport_bpf.skel.h"

namespace passport::agent {

const char* drop_reason_name(int reason) {
    switch (reason) {
        case PP_DROP_RINGBUF_FULL:
            return "ringbuf_full";
        case PP_DROP_ARGS_MAP_FULL:
            return "args_map_full";
        case PP_DROP_CONN_MAP_FULL:
            return "conn_map_full";
        case PP_DROP_READ_USER:
            return "read_user_failed";
        case PP_DROP_TRUNCATED:
            return "payload_truncated";
        case PP_DROP_IOV_LIMIT:
            return "iov_limit";
        case PP_DROP_TAIL_CALL:
            return "tail_call_failed";
        default:
            return "unknown";
    }
}

const char* ctx_counter_name(int counter) {
    switch (counter) {
        case PP_CTXC_XRAY:
            return "ctx_from_xray_header";
        case PP_CTXC_TRACEPARENT:
            return "ctx_from_traceparent";
        case PP_CTXC_MINTED:
            return "ctx_minted";
        case PP_CTXC_XRAY_REJECTED:
            return "ctx_xray_header_rejected";
        case PP_CTXC_TP_REJECTED:
            return "ctx_traceparent_rejected";
        case PP_CTXC_SAMPLE_KERNEL:
            return "ctx_sampled_in_kernel";
        case PP_CTXC_SAMPLE_DEFERRED:
            return "ctx_sampling_deferred";
        case PP_CTXC_NO_CLOCK:
            return "ctx_no_clock";
        case PP_CTXC_INHERITED:
            return "ctx_inherited";
        case PP_CTXC_STORE_FAILED:
            return "ctx_store_failed";
        case PP_CTXC_HEAD_UNENDED:
            return "ctx_head_end_not_seen";
        case PP_CTXC_RESTORED:
            return "ctx_restored";
        case PP_CTXC_GATED:
            return "gate_requests";
        case PP_CTXC_GATED_RX_BYTES:
            return "gate_request_bytes";
        case PP_CTXC_GATED_TX_BYTES:
            return "gate_response_bytes";
        case PP_CTXC_GATE_FB_DEFERRED:
            return "gate_captured_deferred";
        case PP_CTXC_GATE_FB_PIPELINED:
            return "gate_captured_pipelined";
        case PP_CTXC_GATE_FB_FRAMING:
            return "gate_captured_framing";
        case PP_CTXC_GATE_FB_LOCAL_CALLER:
            return "gate_captured_local_caller";
        case PP_CTXC_GATE_FB_TLS:
            return "gate_captured_tls";
        case PP_CTXC_GATE_FB_HEAD_SPLIT:
            return "gate_captured_head_split";
        case PP_CTXC_GATE_FB_OFF:
            return "gate_captured_off";
        case PP_CTXC_GATE_RESUMED_OTHER:
            return "gate_resumed_not_request";
        default:
            return "unknown";
    }
}

bool rules_read_request_text(const ProbeConfig& cfg) {
    if (!cfg.sample_cfg.enabled || cfg.sample_cfg.rule_count == 0)
        return false;                           // no rule to match
    if (cfg.sample_rules.empty()) return true;  // rules counted but not given: be safe
    // The kernel walks the rules in order and stops at the first that matches or is deferred. A
    // rule whose three patterns are only '*' matches any text, absent text included, so when
    // the first rule is such a rule (or deferred) no rule ever looks at the text.
    const pp_sample_rule& r = cfg.sample_rules[0];
    if (r.deferred) return false;
    auto any_text = [](const char* p, unsigned len) {
        if (len == 0 || len > PP_GLOB_MAX)
            return false;  // an empty pattern matches only absent text
        for (unsigned i = 0; i < len; i++)
            if (p[i] != '*') return false;
        return true;
    };
    return !(any_text(r.host, r.host_len) && any_text(r.method, r.method_len) &&
             any_text(r.path, r.path_len));
}

Result<passport_bpf*> BpfProbes::open_and_load(const ProbeConfig& cfg, bool with_fork,
                                               bool with_inject) {
    passport_bpf* skel = passport_bpf__open();
    if (!skel) return make_error(std::string("open BPF object: ") + std::strerror(errno));
    if (uint32_t built = skel->rodata->pp_bpf_abi_version; built != PP_ABI_VERSION) {
        passport_bpf__destroy(skel);
        return make_error("BPF object built for ABI " + std::to_string(built) + ", agent expects " +
                          std::to_string(PP_ABI_VERSION));
    }
    auto* rod = skel->rodata;
    rod->pp_cfg.self_tgid = static_cast<uint32_t>(::getpid());
    rod->pp_cfg.trace_all = cfg.trace_all ? 1 : 0;
    rod->pp_cfg.filter_ports = cfg.server_ports.empty() ? 0 : 1;
    rod->pp_head_text = (cfg.request_text || rules_read_request_text(cfg)) ? 1 : 0;
    rod->pp_gate = cfg.sample_gate ? 1 : 0;
    bpf_map__set_max_entries(skel->maps.events, cfg.ringbuf_bytes);
    bpf_map__set_max_entries(skel->maps.conns, cfg.max_connections);
    bpf_map__set_max_entries(skel->maps.ignored_fds, cfg.max_connections);
    if (!with_fork) bpf_program__set_autoload(skel->progs.process_fork, false);
    // Injection programs only when asked for and possible: the rest must load without them.
    if (!with_inject) {
        bpf_program__set_autoload(skel->progs.inject_sockops, false);
        bpf_program__set_autoload(skel->progs.inject_msg, false);
        // Nor their maps, so kernels without sockhash or socket storage load the rest.
        bpf_map__set_autocreate(skel->maps.inject_socks, false);
        bpf_map__set_autocreate(skel->maps.inject_sk, false);
        bpf_map__set_autocreate(skel->maps.inject_deny_cidrs, false);
    }
    if (int err = passport_bpf__load(skel); err != 0) {
        passport_bpf__destroy(skel);
        return make_error(std::string("load BPF programs (verifier or permissions): ") +
                          std::strerror(-err));
    }
    // Every data syscall's exit jumps to the one shared exit program (data_syscalls.bpf.c).
    const uint32_t slot = 0;
    const int shared = bpf_program__fd(skel->progs.io_exit_shared);
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.io_exit_jump), &slot, &shared, BPF_ANY) != 0) {
        const int err = errno;
        passport_bpf__destroy(skel);
        return make_error(std::string("fill the data exit jump table: ") + std::strerror(err));
    }
    return skel;
}

Result<passport_bpf*> BpfProbes::open_and_load_any(const ProbeConfig& cfg, bool with_inject,
                                                   bool& fork_ok) {
    // tp_btf (fork inheritance) is a program type a kernel may refuse while the rest works;
    // retry without it rather than fail.
    fork_ok = true;
    auto skel = open_and_load(cfg, /*with_fork=*/true, with_inject);
    if (!skel) {
        auto retry = open_and_load(cfg, /*with_fork=*/false, with_inject);
        if (!retry) return make_error(skel.error());
        skel = retry;
        fork_ok = false;
    }
    return skel;
}

Result<std::unique_ptr<BpfProbes>> BpfProbes::load(const ProbeConfig& cfg) {
    std::unique_ptr<BpfProbes> p(new BpfProbes());
    bool fork_ok = true;
    auto skel = open_and_load_any(cfg, cfg.inject, fork_ok);
    if (!skel && cfg.inject) {
        // The injection programs are optional too: capture works without them.
        p->inject_error_ = skel.error();
        skel = open_and_load_any(cfg, /*with_inject=*/false, fork_ok);
    } else if (skel && cfg.inject) {
        p->inject_loaded_ = true;
    }
    if (!skel) return make_error(skel.error());
    p->fork_inheritance_ = fork_ok;
    p->skel_ = *skel;
    // The selection bitmaps, mapped once: select_pid() and the TLS tracer write bits there.
    {
        bpf_map* m = p->skel_->maps.pid_bits;
        const size_t value = bpf_map__value_size(m);
        if (value != sizeof(pp_pid_bitmap) || bpf_map__max_entries(m) != PP_BITS_SLOTS)
            return make_error("map pid_bits: layout differs from abi.h");
        const size_t len = value * bpf_map__max_entries(m);
        void* mem = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(m), 0);
        if (mem == MAP_FAILED)
            return make_error(std::string("map pid_bits: ") + std::strerror(errno));
        p->pid_bits_ = static_cast<uint64_t*>(mem);
        p->pid_bits_len_ = len;
        p->pid_bits_words_ = value / sizeof(uint64_t);
    }
    // Sampling rules and the clock offset first: the programs read them from their first run.
    if (auto written = p->set_sampling(cfg.sample_rules, cfg.sample_default, cfg.sample_cfg);
        !written)
        return make_error(written.error());
    p->refresh_clock();
    if (auto ports = p->set_server_ports({}, cfg.server_ports); !ports)
        return make_error(ports.error());
    // Attach one by one so a failure names the program.
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, p->skel_->obj) {
        if (!bpf_program__autoload(prog)) continue;
        // Uprobes (TLS) need a binary and a pid: agent/tls_tracer.cpp attaches them.
        if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE) continue;
        // sock_ops and sk_msg need a cgroup / a map: agent/injection attaches them.
        const auto type = bpf_program__type(prog);
        if (type == BPF_PROG_TYPE_SOCK_OPS || type == BPF_PROG_TYPE_SK_MSG) continue;
        // A section without an attach point (io_exit_shared) is a tail-call target, reached
        // through its jump table, which libbpf fills at load.
        if (std::strchr(bpf_program__section_name(prog), '/') == nullptr) continue;
        bpf_link* link = bpf_program__attach(prog);
        if (!link) {
            return make_error(std::string("attach ") + bpf_program__name(prog) + ": " +
                              std::strerror(errno));
        }
        // The skeleton's destroy() only frees links it knows; keep ownership in the object's
        // link list by storing in the skeleton's link slot for this program.
        bool stored = false;
        for (int i = 0; i < p->skel_->skeleton->prog_cnt; i++) {
            if (*p->skel_->skeleton->progs[i].prog == prog) {
                *p->skel_->skeleton->progs[i].link = link;
                stored = true;
            }
        }
        if (!stored) bpf_link__destroy(link);
        p->attached_.emplace_back(bpf_program__name(prog));
    }
    return p;
}

Result<bool> BpfProbes::set_sampling(const std::vector<pp_sample_rule>& rules,
                                     const pp_sample_rule& default_rule, const pp_sample_cfg& cfg) {
    if (rules.size() > PP_MAX_SAMPLE_RULES) return make_error("too many kernel sampling rules");
    const int fd = bpf_map__fd(skel_->maps.sample_rules);
    // Off while the rules change, so no request meets half old, half new rules: one arriving
    // meanwhile is left to userspace.
    uint32_t zero = 0;
    pp_sample_cfg off = cfg;
    off.enabled = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sample_cfg), &zero, &off, BPF_ANY) != 0)
        return make_error("sample_cfg map update failed");
    for (uint32_t i = 0; i < rules.size(); i++) {
        if (bpf_map_update_elem(fd, &i, &rules[i], BPF_ANY) != 0)
            return make_error("sample_rules map update failed");
    }
    uint32_t default_index = PP_MAX_SAMPLE_RULES;
    if (bpf_map_update_elem(fd, &default_index, &default_rule, BPF_ANY) != 0 ||
        bpf_map_update_elem(bpf_map__fd(skel_->maps.sample_cfg), &zero, &cfg, BPF_ANY) != 0)
        return make_error("sample_cfg map update failed");
    return true;
}

Result<bool> BpfProbes::set_process_rules(uint32_t tgid, uint32_t mask) {
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.sample_proc_rules), &tgid, &mask, BPF_ANY) != 0)
        return make_error(std::string("sample_proc_rules map update failed: ") +
                          std::strerror(errno));
    return true;
}

void BpfProbes::clear_process_rules(uint32_t tgid) {
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.sample_proc_rules), &tgid);
}

BpfProbes::SamplingStats BpfProbes::read_sampling_stats() const {
    SamplingStats out{};
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return out;
    std::vector<pp_sample_stat> per_cpu(static_cast<size_t>(ncpu));
    const int fd = bpf_map__fd(skel_->maps.sample_stats);
    for (uint32_t i = 0; i < out.size(); i++) {
        if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0) continue;
        for (const pp_sample_stat& s : per_cpu) {
            out[i].requests += s.requests;
            out[i].sampled += s.sampled;
            out[i].borrowed += s.borrowed;
        }
    }
    return out;
}

Result<bool> BpfProbes::set_server_ports(const std::vector<uint16_t>& before,
                                         const std::vector<uint16_t>& after) {
    const int fd = bpf_map__fd(skel_->maps.server_ports);
    for (uint16_t port : before) {
        if (std::find(after.begin(), after.end(), port) == after.end())
            bpf_map_delete_elem(fd, &port);
    }
    for (uint16_t port : after) {
        uint8_t one = 1;
        if (bpf_map_update_elem(fd, &port, &one, BPF_ANY) != 0)
            return make_error("server_ports map update failed");
    }
    return true;
}

std::vector<uint32_t> u32_map_keys(int fd) {
    std::vector<uint32_t> out;
    if (fd < 0) return out;
    uint32_t key = 0;
    uint32_t next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        out.push_back(next);
        key = next;
        prev = &key;
    }
    return out;
}

std::vector<uint32_t> BpfProbes::selected_pids() const {
    return u32_map_keys(bpf_map__fd(skel_->maps.traced_pids));
}

BpfProbes::~BpfProbes() {
    if (pid_bits_) ::munmap(pid_bits_, pid_bits_len_);
    if (!skel_) return;
    // The skeleton's destroy() would release its links one after another.
    std::vector<bpf_link*> links;
    for (int i = 0; i < skel_->skeleton->prog_cnt; i++) {
        bpf_link** slot = skel_->skeleton->progs[i].link;
        if (slot && *slot) links.push_back(std::exchange(*slot, nullptr));
    }
    release_links_together(std::move(links));
    // The jump table holds the shared exit program, which the exit programs reach through it:
    // emptied first, nothing keeps the other alive (the kernel does the same when the last
    // descriptor of the table closes, as on SIGKILL).
    const uint32_t slot = 0;
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.io_exit_jump), &slot);
    passport_bpf__destroy(skel_);
}

// The pid_bits map (slots PP_BITS_TRACED, PP_BITS_TLS and PP_BITS_NO_INJECT of abi.h), one bit per
// tgid, changed through the memory-mapped view with atomics (the fork and exit programs change
// other bits of the same words concurrently).

void BpfProbes::set_pid_bit(uint32_t slot, uint32_t tgid, bool on) {
    const size_t w = tgid >> 6;
    if (!pid_bits_ || w >= pid_bits_words_) return;  // beyond PID_MAX_LIMIT: cannot happen
    uint64_t* word = pid_bits_ + slot * pid_bits_words_ + w;
    const uint64_t bit = uint64_t{1} << (tgid & 63);
    if (on)
        __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST);
}

Result<bool> BpfProbes::select_pid(uint32_t tgid) {
    uint8_t one = 1;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.traced_pids), &tgid, &one, BPF_ANY) != 0)
        return make_error(std::string("select pid: ") + std::strerror(errno));
    // The probes test the bit; the hash is the list userspace reads. Bit after the entry, so a
    // fork the probes see as selected always finds the parent's entry to copy.
    set_pid_bit(PP_BITS_TRACED, tgid, true);
    return true;
}

void BpfProbes::unselect_pid(uint32_t tgid) {
    set_pid_bit(PP_BITS_TRACED, tgid, false);
    set_pid_bit(PP_BITS_NO_INJECT, tgid, false);
    bpf_map_delete_elem(bpf_map__fd(skel_->maps.traced_pids), &tgid);
    clear_process_rules(tgid);
}

bool BpfProbes::is_selected(uint32_t tgid) const {
    uint8_t v = 0;
    return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.traced_pids), &tgid, &v) == 0;
}

bool BpfProbes::pid_bit_selected(uint32_t tgid) const {
    const size_t w = tgid >> 6;
    if (!pid_bits_ || w >= pid_bits_words_) return false;
    return (__atomic_load_n(pid_bits_ + PP_BITS_TRACED * pid_bits_words_ + w, __ATOMIC_SEQ_CST) >>
            (tgid & 63)) &
           1;
}

void BpfProbes::set_tls_proc(uint32_t tgid, bool on) { set_pid_bit(PP_BITS_TLS, tgid, on); }

void BpfProbes::set_no_inject(uint32_t tgid, bool on) { set_pid_bit(PP_BITS_NO_INJECT, tgid, on); }

bool BpfProbes::no_inject(uint32_t tgid) const {
    const size_t w = tgid >> 6;
    if (!pid_bits_ || w >= pid_bits_words_) return false;
    return (__atomic_load_n(pid_bits_ + PP_BITS_NO_INJECT * pid_bits_words_ + w,
                            __ATOMIC_SEQ_CST) >>
            (tgid & 63)) &
           1;
}

void BpfProbes::refresh_clock() {
    timespec real{}, mono{};
    ::clock_gettime(CLOCK_MONOTONIC, &mono);
    ::clock_gettime(CLOCK_REALTIME, &real);
    pp_clock c{};
    c.mono_to_epoch_ns = (static_cast<int64_t>(real.tv_sec) - mono.tv_sec) * 1000000000LL +
                         (static_cast<int64_t>(real.tv_nsec) - mono.tv_nsec);
    c.updated_mono_ns =
        static_cast<uint64_t>(mono.tv_sec) * 1000000000ULL + static_cast<uint64_t>(mono.tv_nsec);
    uint32_t zero = 0;
    bpf_map_update_elem(bpf_map__fd(skel_->maps.clock_sync), &zero, &c, BPF_ANY);
}

bool BpfProbes::thread_ctx(uint64_t pid_tgid, pp_trace_ctx& out) const {
    return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.thread_ctx), &pid_tgid, &out) == 0;
}

bool BpfProbes::reads_request_text() const { return skel_->rodata->pp_head_text != 0; }

bool BpfProbes::can_decide(const std::vector<pp_sample_rule>& rules,
                           const pp_sample_cfg& cfg) const {
    ProbeConfig wanted;
    wanted.sample_rules = rules;
    wanted.sample_cfg = cfg;
    return reads_request_text() || !rules_read_request_text(wanted);
}

std::array<uint64_t, PP_CTXC_COUNT> BpfProbes::ctx_counts() const {
    return sum_percpu_counters<PP_CTXC_COUNT>(bpf_map__fd(skel_->maps.ctx_counters));
}

bpf_program* BpfProbes::program(const char* name) const {
    return bpf_object__find_program_by_name(skel_->obj, name);
}

int BpfProbes::map_fd(const char* name) const {
    bpf_map* map = bpf_object__find_map_by_name(skel_->obj, name);
    return map ? bpf_map__fd(map) : -1;
}

int BpfProbes::events_map_fd() const { return bpf_map__fd(skel_->maps.events); }

std::array<uint64_t, PP_DROP_REASON_COUNT> BpfProbes::drop_counts() const {
    return sum_percpu_counters<PP_DROP_REASON_COUNT>(bpf_map__fd(skel_->maps.drop_counters));
}

namespace {

// Entries present in a hash map (one syscall per key: for the exit report, not a hot path).
uint64_t count_keys(int map_fd) {
    uint64_t n = 0, key = 0, next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
        n++;
        key = next;
        prev = &key;
    }
    return n;
}

uint64_t evicted(uint64_t added, uint64_t deleted, uint64_t present) {
    return added > deleted + present ? added - deleted - present : 0;
}

}  // namespace

BpfProbes::LruEvictions BpfProbes::lru_evictions() const {
    auto c = sum_percpu_counters<PP_LRU_COUNT>(bpf_map__fd(skel_->maps.lru_counts));
    LruEvictions out;
    out.conns = evicted(c[PP_LRU_CONNS_ADDED], c[PP_LRU_CONNS_DELETED],
                        count_keys(bpf_map__fd(skel_->maps.conns)));
    out.thread_ctx = evicted(c[PP_LRU_CTX_ADDED], c[PP_LRU_CTX_DELETED],
                             count_keys(bpf_map__fd(skel_->maps.thread_ctx)));
    return out;
}

std::vector<uint64_t> sum_percpu_counters(int map_fd, uint32_t count) {
    std::vector<uint64_t> out(count, 0);
    const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0 || map_fd < 0) return out;
    std::vector<uint64_t> vals(static_cast<size_t>(ncpu));
    for (uint32_t i = 0; i < count; i++) {
        if (bpf_map_lookup_elem(map_fd, &i, vals.data()) != 0) continue;
        for (uint64_t v : vals) out[i] += v;
    }
    return out;
}

}  // namespace passport::agent
