// Kernel layer: centralized sampling decided in the kernel (bpf/lib/sample.bpf.h) with the real
// probes on a real Python ThreadingHTTPServer and curl as the client. Rules as X-Ray's
// GetSamplingTargets leaves them: per-process rule masks (sample_proc_rules), reservoir quotas
// with an expiry, borrowing one request a second; and the per-rule statistics (sample_stats) the
// agent reports back, which must add up to the requests sent. Expected counts come from the
// epoch second each request fell in (the minted trace id carries it, and the kernel's reservoir
// counts in that same second), never from timing. Needs root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/kernel_features.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/test_servers.hpp"
#include "tests/support/wait.hpp"
#include "userspace/events/decoder.hpp"
#include "userspace/sample/kernel_rules.hpp"

namespace passport::agent {
namespace {

using namespace std::chrono_literals;
using testing::deadline_in;

constexpr uint32_t kDefaultIndex = PP_MAX_SAMPLE_RULES;

struct Ring {
    std::vector<events::TraceCtx> ctxs;
    Counters counters;
};

int on_rec(void* ctx, void* data, size_t size) {
    auto* r = static_cast<Ring*>(ctx);
    events::Event e;
    if (events::decode_counted({static_cast<const uint8_t*>(data), size}, r->counters, e))
        if (auto* t = std::get_if<events::TraceCtx>(&e)) r->ctxs.push_back(*t);
    return 0;
}

// The epoch second of a minted trace id ("1-<8 hex digits>-...").
uint32_t epoch_of(const events::TraceCtx& c) {
    return static_cast<uint32_t>(std::stoul(c.trace_id.substr(2, 8), nullptr, 16));
}

uint32_t now_epoch() { return static_cast<uint32_t>(std::time(nullptr)); }

class KernelCentralizedSampling : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
        probe_kernel_features();
    }
    void TearDown() override {
        if (rb_) ring_buffer__free(rb_);
        server_.reset();
        probes_.reset();
    }

    // One rule for every request (host, method and path '*'), rate 0, then the default rule
    // (nothing sampled); `tweak` sets the centralized fields of rule 0 and the configuration.
    template <typename Tweak>
    void start(Tweak tweak) {
        sample::LocalRules local;
        local.default_rule.name = "Default";
        local.default_rule.fixed_target = 0;
        local.default_rule.rate = 0;
        sample::LocalRule any;
        any.name = "any";
        any.host = "*";
        any.http_method = "*";
        any.url_path = "*";
        any.rate = 0;
        local.rules = {any};
        sample::KernelRules k = sample::compile_kernel_rules(local);
        ProbeConfig cfg;
        cfg.trace_all = false;
        cfg.ringbuf_bytes = 4 * 1024 * 1024;
        cfg.sample_rules = k.rules;
        cfg.sample_default = k.default_rule;
        cfg.sample_cfg = k.cfg;
        // Every request's trace-context record is read here; the gate on unsampled requests
        // (sample_gate_e2e_test.cpp) sends none for those.
        cfg.sample_gate = false;
        tweak(cfg.sample_rules[0], cfg.sample_cfg);
        auto p = BpfProbes::load(cfg);
        ASSERT_TRUE(p.ok()) << (p.ok() ? "" : p.error());
        probes_ = std::move(*p);
        rb_ = ring_buffer__new(probes_->events_map_fd(), on_rec, &ring_, nullptr);
        ASSERT_NE(rb_, nullptr);
        server_ = testing::start_script_server(
            {testing::python3_path(),
             std::string(PASSPORT_SOURCE_DIR) + "/tests/kernel/fixtures/ctx_server.py"},
            PASSPORT_SOURCE_DIR);
        ASSERT_TRUE(server_);
        ASSERT_TRUE(probes_->select_pid(tgid()).ok());
    }
    uint32_t tgid() const { return static_cast<uint32_t>(server_->pid()); }

    // Sends n requests one after another; returns the context events of all the server's
    // requests so far, in arrival order (requests are sequential: the order they were read).
    std::vector<events::TraceCtx> send(int n, size_t before) {
        for (int i = 0; i < n; i++) {
            auto r = testing::http_get(server_->url("/r/" + std::to_string(i)));
            EXPECT_EQ(r.status, 200);
        }
        std::vector<events::TraceCtx> out;
        auto collect = [&] {
            ring_buffer__poll(rb_, 20);
            ring_buffer__consume(rb_);
            out.clear();
            for (const auto& c : ring_.ctxs)
                if (c.conn.tgid == tgid()) out.push_back(c);
            return out.size() >= before + static_cast<size_t>(n);
        };
        testing::wait_until(collect, deadline_in(10s));
        EXPECT_EQ(out.size(), before + static_cast<size_t>(n));
        return out;
    }

    // Requests per epoch second, and how many of them were sampled, after checking each event
    // is a minted trace decided by rule `rule` and, within each second, that the sampled ones
    // come first (a reservoir gives its quota to the first requests of the second).
    struct PerSecond {
        int requests = 0;
        int sampled = 0;
    };
    static std::map<uint32_t, PerSecond> per_second(const std::vector<events::TraceCtx>& evs,
                                                    events::Rule rule) {
        std::map<uint32_t, PerSecond> out;
        for (const auto& ev : evs) {
            EXPECT_EQ(ev.source, events::CtxSource::kMinted);
            EXPECT_EQ(ev.rule, rule);
            PerSecond& s = out[epoch_of(ev)];
            const bool yes = ev.sampled == events::Sampled::kYes;
            EXPECT_TRUE(yes || ev.sampled == events::Sampled::kNo);
            EXPECT_FALSE(yes && s.sampled < s.requests)
                << ev.trace_id << " sampled after an unsampled request of its second";
            s.requests++;
            if (yes) s.sampled++;
        }
        return out;
    }

    Ring ring_;
    ring_buffer* rb_ = nullptr;
    std::unique_ptr<BpfProbes> probes_;
    std::unique_ptr<testing::TestServer> server_;
};

// A rule that names another process's service: the server meets only the default rule until
// it gets the rule in its own mask, and again once its entry is cleared.
TEST_F(KernelCentralizedSampling, RulesApplyOnlyToTheProcessesOfTheirMask) {
    start([](pp_sample_rule& r, pp_sample_cfg& cfg) {
        r.rate_all = 1;        // the rule samples everything it decides
        cfg.default_mask = 0;  // no rule for a process without an entry of its own
    });
    if (HasFatalFailure()) return;
    const auto other = static_cast<uint32_t>(::getpid());  // a process the probes do not trace
    ASSERT_TRUE(probes_->set_process_rules(other, 1).ok());
    auto evs = send(3, 0);
    ASSERT_EQ(evs.size(), 3u);
    for (const auto& ev : evs) {
        EXPECT_EQ(ev.rule, events::Rule::kDefault) << "the rule is another process's";
        EXPECT_EQ(ev.sampled, events::Sampled::kNo);
    }
    ASSERT_TRUE(probes_->set_process_rules(tgid(), 1).ok());
    evs = send(2, 3);
    ASSERT_EQ(evs.size(), 5u);
    for (size_t i = 3; i < 5; i++) {
        EXPECT_EQ(evs[i].rule, events::Rule{0}) << "the server's own mask holds the rule";
        EXPECT_EQ(evs[i].sampled, events::Sampled::kYes);
    }
    probes_->clear_process_rules(tgid());
    evs = send(2, 5);
    ASSERT_EQ(evs.size(), 7u);
    for (size_t i = 5; i < 7; i++) EXPECT_EQ(evs[i].rule, events::Rule::kDefault);
    const auto stats = probes_->read_sampling_stats();
    EXPECT_EQ(stats[0].requests, 2u);
    EXPECT_EQ(stats[0].sampled, 2u);
    EXPECT_EQ(stats[kDefaultIndex].requests, 5u);
    EXPECT_EQ(stats[kDefaultIndex].sampled, 0u);
    for (const auto& s : stats) EXPECT_EQ(s.borrowed, 0u);
}

// A process's mask goes with it: the exit program deletes its entry, so the table cannot fill
// with processes that are gone.
TEST_F(KernelCentralizedSampling, MaskEntryGoesWhenTheProcessExits) {
    start([](pp_sample_rule&, pp_sample_cfg&) {});
    if (HasFatalFailure()) return;
    const uint32_t pid = tgid();
    ASSERT_TRUE(probes_->set_process_rules(pid, 1).ok());
    const int fd = probes_->map_fd("sample_proc_rules");
    ASSERT_GE(fd, 0);
    uint32_t mask = 0;
    ASSERT_EQ(bpf_map_lookup_elem(fd, &pid, &mask), 0);
    EXPECT_EQ(mask, 1u);
    server_->stop();
    EXPECT_TRUE(testing::wait_until([&] { return bpf_map_lookup_elem(fd, &pid, &mask) != 0; },
                                    deadline_in(10s)))
        << "the entry of an exited process is still there";
}

// A valid quota of N a second: the first N requests of each second are sampled, the rest go to
// the rate (0 here); the statistics count them as sampled, none borrowed.
TEST_F(KernelCentralizedSampling, QuotaSamplesItsCountEachSecondThenTheRate) {
    constexpr uint32_t kQuota = 2;
    start([](pp_sample_rule& r, pp_sample_cfg&) {
        r.fixed_target = kQuota;
        r.expires = now_epoch() + 3600;
    });
    if (HasFatalFailure()) return;
    constexpr int kRequests = 9;
    const auto evs = send(kRequests, 0);
    ASSERT_EQ(evs.size(), static_cast<size_t>(kRequests));
    uint64_t expected_sampled = 0;
    for (const auto& [second, s] : per_second(evs, events::Rule{0})) {
        EXPECT_EQ(s.sampled, std::min<int>(s.requests, kQuota)) << "second " << second;
        expected_sampled += static_cast<uint64_t>(s.sampled);
    }
    const auto stats = probes_->read_sampling_stats();
    EXPECT_EQ(stats[0].requests, static_cast<uint64_t>(kRequests));
    EXPECT_EQ(stats[0].sampled, expected_sampled);
    EXPECT_EQ(stats[0].borrowed, 0u);
    EXPECT_EQ(stats[kDefaultIndex].requests, 0u);
}

// Without a quota (borrow set, as before X-Ray's first targets): one request a second is
// sampled, counted as borrowed, not as sampled.
TEST_F(KernelCentralizedSampling, WithoutQuotaOneRequestASecondIsBorrowed) {
    start([](pp_sample_rule& r, pp_sample_cfg&) {
        r.fixed_target = 5;  // not a valid quota while `borrow` is set
        r.borrow = 1;
    });
    if (HasFatalFailure()) return;
    constexpr int kRequests = 6;
    const auto evs = send(kRequests, 0);
    ASSERT_EQ(evs.size(), static_cast<size_t>(kRequests));
    const auto seconds = per_second(evs, events::Rule{0});
    for (const auto& [second, s] : seconds) EXPECT_EQ(s.sampled, 1) << "second " << second;
    const auto stats = probes_->read_sampling_stats();
    EXPECT_EQ(stats[0].requests, static_cast<uint64_t>(kRequests));
    EXPECT_EQ(stats[0].borrowed, seconds.size());
    EXPECT_EQ(stats[0].sampled, 0u);
}

// A quota past its expiry is no quota: the rule borrows, as without one.
TEST_F(KernelCentralizedSampling, ExpiredQuotaBorrows) {
    start([](pp_sample_rule& r, pp_sample_cfg&) {
        r.fixed_target = 5;
        r.expires = now_epoch() - 10;
    });
    if (HasFatalFailure()) return;
    constexpr int kRequests = 6;
    const auto evs = send(kRequests, 0);
    ASSERT_EQ(evs.size(), static_cast<size_t>(kRequests));
    const auto seconds = per_second(evs, events::Rule{0});
    for (const auto& [second, s] : seconds) EXPECT_EQ(s.sampled, 1) << "second " << second;
    const auto stats = probes_->read_sampling_stats();
    EXPECT_EQ(stats[0].requests, static_cast<uint64_t>(kRequests));
    EXPECT_EQ(stats[0].borrowed, seconds.size());
    EXPECT_EQ(stats[0].sampled, 0u);
}

}  // namespace
}  // namespace passport::agent
