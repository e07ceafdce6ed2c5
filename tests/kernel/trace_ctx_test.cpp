// Kernel layer: the trace context the BPF side gives each server request (ctx_parse.bpf.h),
// with the real probes attached to a real Python ThreadingHTTPServer and curl as the client.
// Checks the PP_EV_TRACE_CTX records and the thread_ctx map exactly: ids from X-Amzn-Trace-Id
// and traceparent, minted ids (epoch, kernel sampling rules incl. a reservoir), hostile headers,
// inheritance by a worker thread and deletion at thread exit; and the same context for a request
// an HTTPS server reads through SSL_read (the OpenSSL uprobes, tls.bpf.c). Needs root.
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/kernel_features.hpp"
#include "agent/tls_tracer.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/test_servers.hpp"
#include "tests/support/wait.hpp"
#include "userspace/events/decoder.hpp"
#include "userspace/sample/kernel_rules.hpp"

namespace passport::agent {
namespace {

using namespace std::chrono_literals;
using testing::Deadline;
using testing::deadline_in;
using testing::Stream;

constexpr char kRoot[] = "1-5759e988-bd862e3fe1be46a994272793";
constexpr char kParent[] = "53995c3f42cd8ad8";

std::string hex(uint64_t v, int digits) {
    std::string s;
    for (int i = digits - 1; i >= 0; i--) s.push_back("0123456789abcdef"[(v >> (4 * i)) & 15]);
    return s;
}

std::string trace_id_of(const pp_trace_ctx& c) {
    std::string s = "1-" + hex(c.trace_epoch, 8) + "-";
    for (uint8_t b : c.trace_rand) s += hex(b, 2);
    return s;
}

struct Ring {
    std::vector<events::TraceCtx> ctxs;
    std::vector<size_t> ctx_seq;  // arrival index of each of ctxs
    // TLS plaintext read by servers, with their arrival index.
    std::vector<std::pair<size_t, events::Data>> tls_reads;
    size_t seq = 0;
    Counters counters;
};

int on_rec(void* ctx, void* data, size_t size) {
    auto* r = static_cast<Ring*>(ctx);
    events::Event e;
    if (events::decode_counted({static_cast<const uint8_t*>(data), size}, r->counters, e)) {
        if (auto* t = std::get_if<events::TraceCtx>(&e)) {
            r->ctxs.push_back(*t);
            r->ctx_seq.push_back(r->seq);
        } else if (auto* d = std::get_if<events::Data>(&e);
                   d && d->source == events::DataSource::kTls &&
                   d->direction == events::Direction::kIngress) {
            r->tls_reads.emplace_back(r->seq, *d);
        }
    }
    r->seq++;
    return 0;
}

class KernelTraceCtx : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
        probe_kernel_features();
    }
    void TearDown() override {
        if (rb_) ring_buffer__free(rb_);
        tls_.reset();
        server_.reset();
        probes_.reset();
        if (!cert_dir_.empty()) std::system(("rm -rf " + cert_dir_).c_str());
    }
    // Probes with the given rules (default: sample nothing unless a rule says so), selecting a
    // fresh ctx_server.py.
    void start(const sample::LocalRules& rules, const char* fixture = "ctx_server.py") {
        start_server(rules, fixture, {});
    }
    // The same over HTTPS: ctx_server.py with a certificate made here, the OpenSSL uprobes
    // attached to it (libssl.so.3, loaded by its `import ssl`); requests go through curl --cacert.
    void start_https(const sample::LocalRules& rules) {
        cert_dir_ = "/tmp/passport-ctx-tls-" + std::to_string(::getpid());
        cert_ = cert_dir_ + "/cert.pem";
        const std::string key = cert_dir_ + "/key.pem";
        const std::string cmd = "mkdir -p " + cert_dir_ +
                                " && openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key +
                                " -out " + cert_ + " -days 1 -subj /CN=127.0.0.1 -addext " +
                                "subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl req failed";
        start_server(rules, "ctx_server.py", {cert_, key});
        if (HasFatalFailure()) return;
        tls_ = std::make_unique<TlsTracer>(*probes_, tls_counters_, /*trace_all=*/false);
        tls_->scan_selected();
        ASSERT_EQ(tls_->attached_binaries(), 1u) << "python's ssl module maps libssl.so.3";
    }
    void start_server(const sample::LocalRules& rules, const char* fixture,
                      const std::vector<std::string>& args) {
        ProbeConfig cfg;
        cfg.trace_all = false;
        cfg.ringbuf_bytes = 16 * 1024 * 1024;
        sample::KernelRules k = sample::compile_kernel_rules(rules);
        cfg.sample_rules = k.rules;
        cfg.sample_default = k.default_rule;
        cfg.sample_cfg = k.cfg;
        // These tests read the context record of every request, unsampled ones included: the
        // gate on unsampled requests (sample_gate_e2e_test.cpp) would send none for those.
        cfg.sample_gate = false;
        auto p = BpfProbes::load(cfg);
        ASSERT_TRUE(p.ok()) << (p.ok() ? "" : p.error());
        probes_ = std::move(*p);
        rb_ = ring_buffer__new(probes_->events_map_fd(), on_rec, &ring_, nullptr);
        ASSERT_NE(rb_, nullptr);
        std::vector<std::string> argv = {
            testing::python3_path(),
            std::string(PASSPORT_SOURCE_DIR) + "/tests/kernel/fixtures/" + fixture};
        argv.insert(argv.end(), args.begin(), args.end());
        server_ = testing::start_script_server(argv, PASSPORT_SOURCE_DIR);
        ASSERT_TRUE(server_);
        ASSERT_TRUE(probes_->select_pid(static_cast<uint32_t>(server_->pid())).ok());
    }
    static sample::LocalRules no_sampling() {
        sample::LocalRules r;
        r.default_rule.name = "Default";
        r.default_rule.fixed_target = 0;
        r.default_rule.rate = 0;
        return r;
    }
    uint32_t tgid() const { return static_cast<uint32_t>(server_->pid()); }
    // The server's context events for requests its thread `tid` read (all threads if 0), after
    // waiting until at least `n` of them arrived.
    std::vector<events::TraceCtx> ctx_events(size_t n, uint32_t tid = 0) {
        std::vector<events::TraceCtx> out;
        auto collect = [&] {
            ring_buffer__poll(rb_, 20);
            ring_buffer__consume(rb_);  // the kernel side rarely wakes readers
            out.clear();
            for (const auto& c : ring_.ctxs)
                if (c.conn.tgid == tgid() && (tid == 0 || c.tid == tid)) out.push_back(c);
            return out.size() >= n;
        };
        testing::wait_until(collect, deadline_in(10s));
        if (out.size() < n)
            for (const auto& [name, value] : ring_.counters.all())
                std::fprintf(stderr, "ring counter %s %llu\n", name.c_str(),
                             static_cast<unsigned long long>(value));
        return out;
    }
    testing::HttpResponse get(const std::string& path,
                              const std::vector<std::string>& headers = {}) {
        if (cert_.empty()) return testing::http_get(server_->url(path), headers);
        testing::HttpRequest r;
        r.url = "https://127.0.0.1:" + std::to_string(server_->port()) + path;
        r.headers = headers;
        r.ca_cert = cert_;
        return testing::http_request(r);
    }
    // Starts GET path on a background thread; returns the serving thread id from "hold TID".
    uint32_t hold(const std::string& path, const std::vector<std::string>& headers,
                  std::thread& client, testing::HttpResponse& resp) {
        client = std::thread([this, path, headers, &resp] { resp = get(path, headers); });
        auto m = server_->process().wait_for_line(
            Stream::kStdout, std::regex("^hold ([0-9]+) " + path + "$"), deadline_in(15s));
        if (!m) return 0;
        return static_cast<uint32_t>(std::stoul(m->groups[1]));
    }
    bool thread_ctx(uint32_t tid, pp_trace_ctx& out) {
        return probes_->thread_ctx((uint64_t{tgid()} << 32) | tid, out);
    }
    // The event matches the map entry field by field.
    static void expect_same(const events::TraceCtx& ev, const pp_trace_ctx& m) {
        EXPECT_EQ(ev.trace_id, trace_id_of(m));
        EXPECT_EQ(ev.segment_id, hex(m.segment_id, 16));
        EXPECT_EQ(ev.parent_id, m.parent_id ? hex(m.parent_id, 16) : "");
        EXPECT_EQ(ev.sampled, static_cast<events::Sampled>(m.sampled));
        EXPECT_EQ(ev.source, static_cast<events::CtxSource>(m.source));
        EXPECT_EQ(ev.conn, (events::ConnKey{m.conn.tgid, m.conn.fd, m.conn.gen}));
        EXPECT_EQ(ev.request_pos, m.request_pos);
    }

    // The context event came before the request's first TLS data event, which starts at the
    // event's request_pos on the same connection.
    void expect_before_its_tls_data(const events::TraceCtx& ev) {
        size_t ev_seq = 0;
        for (size_t i = 0; i < ring_.ctxs.size(); i++)
            if (ring_.ctxs[i].segment_id == ev.segment_id) ev_seq = ring_.ctx_seq[i];
        bool found = false;
        for (const auto& [seq, d] : ring_.tls_reads) {
            if (!(d.conn == ev.conn) || d.pos != ev.request_pos) continue;
            found = true;
            EXPECT_GT(seq, ev_seq) << "PP_EV_TRACE_CTX precedes the request's data";
            EXPECT_EQ(d.bytes.rfind("GET ", 0), 0u)
                << "request_pos is the plaintext position of the request";
        }
        EXPECT_TRUE(found) << "no TLS plaintext read at pos " << ev.request_pos;
    }

    std::unique_ptr<BpfProbes> probes_;
    std::unique_ptr<testing::TestServer> server_;
    std::unique_ptr<TlsTracer> tls_;
    Counters tls_counters_;
    std::string cert_dir_, cert_;
    ring_buffer* rb_ = nullptr;
    Ring ring_;
};

TEST_F(KernelTraceCtx, XrayHeaderGivesExactIdsInEventAndThreadMap) {
    start(no_sampling());
    std::thread client;
    testing::HttpResponse resp;
    uint32_t tid =
        hold("/hold/xray",
             {std::string("X-Amzn-Trace-Id: Root=") + kRoot + ";Parent=" + kParent + ";Sampled=1"},
             client, resp);
    ASSERT_NE(tid, 0u);
    auto evs = ctx_events(1, tid);
    ASSERT_EQ(evs.size(), 1u);
    const auto& ev = evs[0];
    EXPECT_EQ(ev.trace_id, kRoot);
    EXPECT_EQ(ev.parent_id, kParent);
    EXPECT_EQ(ev.sampled, events::Sampled::kYes);
    EXPECT_EQ(ev.source, events::CtxSource::kXrayHeader);
    EXPECT_EQ(ev.rule, events::Rule::kNone);
    EXPECT_EQ(ev.request_pos, 0u) << "first request on the connection";
    EXPECT_EQ(ev.segment_id.size(), 16u);
    EXPECT_NE(ev.segment_id, kParent);
    pp_trace_ctx m{};
    ASSERT_TRUE(thread_ctx(tid, m)) << "the serving thread holds the context while it serves";
    EXPECT_EQ(m.trace_epoch, 0x5759e988u);
    EXPECT_EQ(m.parent_id, 0x53995c3f42cd8ad8ull);
    expect_same(ev, m);
    ASSERT_EQ(get("/release").status, 200);
    client.join();
    EXPECT_EQ(resp.status, 200);
}

TEST_F(KernelTraceCtx, XrayHeaderKeysAnyCaseAnyOrderWithSpaces) {
    start(no_sampling());
    ASSERT_EQ(
        get("/a",
            {"x-amzn-trace-id:  PaReNt=53995C3F42CD8AD8 ; "
             "sampled=0;ROOT=1-5759E988-BD862E3FE1BE46A994272793 ;Self=1-abc;Lineage=a87bd80c:1"})
            .status,
        200);
    auto evs = ctx_events(1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].source, events::CtxSource::kXrayHeader);
    EXPECT_EQ(evs[0].trace_id, kRoot);
    EXPECT_EQ(evs[0].parent_id, kParent);
    EXPECT_EQ(evs[0].sampled, events::Sampled::kNo);
}

TEST_F(KernelTraceCtx, TraceparentIsConvertedWhenNoXrayHeader) {
    start(no_sampling());
    ASSERT_EQ(
        get("/tp", {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01"}).status,
        200);
    ASSERT_EQ(get("/tp0", {"Traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-00"})
                  .status,
              200);
    auto evs = ctx_events(2);
    ASSERT_EQ(evs.size(), 2u);
    for (const auto& ev : evs) {
        EXPECT_EQ(ev.source, events::CtxSource::kTraceparent);
        EXPECT_EQ(ev.trace_id, "1-8a3c60f7-d188f8fa79d48a391a778fa6");
        EXPECT_EQ(ev.parent_id, kParent);
    }
    EXPECT_EQ(evs[0].sampled, events::Sampled::kYes);
    EXPECT_EQ(evs[1].sampled, events::Sampled::kNo);
}

TEST_F(KernelTraceCtx, XrayHeaderWinsOverTraceparentAndSampledUnknownIsDecidedByRules) {
    sample::LocalRules rules = no_sampling();
    rules.default_rule.rate = 1.0;  // everything the kernel decides is sampled
    start(rules);
    ASSERT_EQ(get("/both", {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-00",
                            std::string("X-Amzn-Trace-Id: Root=") + kRoot + ";Sampled=?"})
                  .status,
              200);
    auto evs = ctx_events(1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].source, events::CtxSource::kXrayHeader);
    EXPECT_EQ(evs[0].trace_id, kRoot);
    EXPECT_EQ(evs[0].parent_id, "");
    EXPECT_EQ(evs[0].sampled, events::Sampled::kYes)
        << "Sampled=? leaves the decision to the kernel's rules";
    EXPECT_EQ(evs[0].rule, events::Rule::kDefault) << "the default rule decided";
}

// The head scan reads the request line and Host only when a rule the kernel can reach looks at
// them; otherwise it reads the trace headers alone and the rules decide exactly as before.
TEST_F(KernelTraceCtx, RequestLineAndHostAreReadOnlyWhenARuleNeedsThem) {
    auto needs = [](const sample::LocalRules& r) {
        sample::KernelRules k = sample::compile_kernel_rules(r);
        ProbeConfig cfg;
        cfg.sample_rules = k.rules;
        cfg.sample_default = k.default_rule;
        cfg.sample_cfg = k.cfg;
        return rules_read_request_text(cfg);
    };
    sample::LocalRules none = no_sampling();
    EXPECT_FALSE(needs(none)) << "the default rule matches nothing";
    sample::LocalRule stars;
    stars.name = "stars";
    stars.host = "*";
    stars.http_method = "**";
    stars.url_path = "*";
    stars.rate = 1.0;
    sample::LocalRule path = stars;
    path.name = "path";
    path.url_path = "/p/*";
    sample::LocalRules r1 = none;
    r1.rules = {stars, path};
    EXPECT_FALSE(needs(r1)) << "the first rule matches every request: the second is never reached";
    sample::LocalRules r2 = none;
    r2.rules = {path, stars};
    EXPECT_TRUE(needs(r2));
    sample::LocalRule empty_host = stars;
    empty_host.host = "";
    sample::LocalRules r3 = none;
    r3.rules = {empty_host};
    EXPECT_TRUE(needs(r3)) << "an empty pattern matches only an absent Host";

    // Scan without the request text: a rule of stars decides, the X-Amzn-Trace-Id after Host and
    // a traceparent are still read exactly.
    start(r1);
    EXPECT_FALSE(probes_->reads_request_text());
    ASSERT_EQ(get("/p/x").status, 200);
    ASSERT_EQ(get("/q", {std::string("X-Amzn-Trace-Id: Root=") + kRoot + ";Parent=" + kParent +
                         ";Sampled=?"})
                  .status,
              200);
    ASSERT_EQ(
        get("/t", {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-00"}).status,
        200);
    auto evs = ctx_events(3);
    ASSERT_EQ(evs.size(), 3u);
    EXPECT_EQ(evs[0].source, events::CtxSource::kMinted);
    EXPECT_EQ(evs[0].sampled, events::Sampled::kYes);
    EXPECT_EQ(evs[0].rule, events::Rule{0}) << "the rule of stars decided";
    EXPECT_EQ(evs[1].source, events::CtxSource::kXrayHeader);
    EXPECT_EQ(evs[1].trace_id, kRoot);
    EXPECT_EQ(evs[1].parent_id, kParent);
    EXPECT_EQ(evs[1].sampled, events::Sampled::kYes);
    EXPECT_EQ(evs[1].rule, events::Rule{0});
    EXPECT_EQ(evs[2].source, events::CtxSource::kTraceparent);
    EXPECT_EQ(evs[2].sampled, events::Sampled::kNo);
}

TEST_F(KernelTraceCtx, NoHeaderMintsTraceWithEpochAndPathRuleAndReservoir) {
    sample::LocalRules rules = no_sampling();
    sample::LocalRule yes;  // only this path is sampled (rate 1)
    yes.name = "yes-path";
    yes.host = "*";
    yes.http_method = "GE?";
    yes.url_path = "/yes/*";
    yes.rate = 1.0;
    sample::LocalRule res;  // 2 per second, nothing beyond
    res.name = "reservoir";
    res.host = "127.0.0.*";
    res.http_method = "*";
    res.url_path = "/res/*";
    res.fixed_target = 2;
    rules.rules = {yes, res};
    start(rules);
    const auto now = static_cast<uint32_t>(std::time(nullptr));
    ASSERT_EQ(get("/yes/1?q=1").status, 200);
    ASSERT_EQ(get("/no/1").status, 200);
    constexpr int kRes = 6;
    for (int i = 0; i < kRes; i++) ASSERT_EQ(get("/res/" + std::to_string(i)).status, 200);
    auto evs = ctx_events(2 + kRes);
    ASSERT_EQ(evs.size(), 2u + kRes);
    for (const auto& ev : evs) {
        EXPECT_EQ(ev.source, events::CtxSource::kMinted);
        EXPECT_EQ(ev.parent_id, "");
        const uint32_t epoch =
            static_cast<uint32_t>(std::stoul(ev.trace_id.substr(2, 8), nullptr, 16));
        EXPECT_LE(now - 5, epoch);
        EXPECT_LE(epoch, now + 60) << "minted epoch is the wall clock of the request";
        EXPECT_TRUE(std::regex_match(ev.trace_id, std::regex("1-[0-9a-f]{8}-[0-9a-f]{24}")))
            << ev.trace_id;
    }
    EXPECT_EQ(evs[0].sampled, events::Sampled::kYes);
    EXPECT_EQ(evs[0].rule, events::Rule{0});
    EXPECT_EQ(evs[1].sampled, events::Sampled::kNo);
    EXPECT_EQ(evs[1].rule, events::Rule::kDefault);
    // The reservoir: at most 2 per wall-clock second (by the minted ids' seconds), and in a
    // second that saw more than 2 requests, the rest are not sampled (rate 0).
    std::map<std::string, int> requests_per_second, sampled_per_second;
    int sampled = 0;
    for (size_t i = 2; i < evs.size(); i++) {
        EXPECT_EQ(evs[i].rule, events::Rule{1});
        const std::string second = evs[i].trace_id.substr(2, 8);
        requests_per_second[second]++;
        if (evs[i].sampled == events::Sampled::kYes) {
            sampled_per_second[second]++;
            sampled++;
        } else {
            EXPECT_EQ(evs[i].sampled, events::Sampled::kNo);
        }
    }
    for (const auto& [second, n] : sampled_per_second) EXPECT_LE(n, 2) << second;
    EXPECT_GE(sampled, 2);
    for (const auto& [second, n] : requests_per_second)
        if (n > 2) {
            EXPECT_EQ(sampled_per_second[second], 2) << second << ": " << n << " requests";
        }
    auto counts = probes_->ctx_counts();
    EXPECT_GE(counts[PP_CTXC_MINTED], 2u + kRes);
    EXPECT_GE(counts[PP_CTXC_SAMPLE_KERNEL], 2u + kRes);
}

TEST_F(KernelTraceCtx, RulesTheKernelCannotHoldLeaveSamplingToUserspace) {
    sample::LocalRules rules = no_sampling();
    sample::LocalRule long_rule;
    long_rule.name = "too-long";
    long_rule.host = "*";
    long_rule.http_method = "*";
    long_rule.url_path = "/" + std::string(100, 'x') + "*";
    rules.rules = {long_rule};
    start(rules);
    ASSERT_EQ(get("/anything").status, 200);
    auto evs = ctx_events(1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].source, events::CtxSource::kMinted);
    EXPECT_EQ(evs[0].sampled, events::Sampled::kUnknown);
    EXPECT_EQ(evs[0].rule, events::Rule::kNone);
    EXPECT_GE(probes_->ctx_counts()[PP_CTXC_SAMPLE_DEFERRED], 1u);
}

TEST_F(KernelTraceCtx, HostileHeadersAreTreatedAsAbsent) {
    start(no_sampling());
    const std::string root = std::string("Root=") + kRoot;
    const std::vector<std::pair<std::string, uint8_t>> cases = {
        {"X-Amzn-Trace-Id: " + root + ";Parent=" + kParent + ";Foo=" + std::string(8200, 'a'),
         PP_REJECT_XRAY},
        {"X-Amzn-Trace-Id: Root=1-5759e98g-bd862e3fe1be46a994272793;Sampled=1", PP_REJECT_XRAY},
        {"X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a99427279;Sampled=1", PP_REJECT_XRAY},
        {"X-Amzn-Trace-Id: Root=1-5759e988-000000000000000000000000;Sampled=1", PP_REJECT_XRAY},
        {"X-Amzn-Trace-Id: " + root + ";Root=1-5759e988-bd862e3fe1be46a99427279x", PP_REJECT_XRAY},
        {"X-Amzn-Trace-Id: Parent=53995c3f42cd8ad8;Sampled=1", PP_REJECT_XRAY},
        {"X-Amzn-Trace-Id: ;;;===;;Root;Root=;=", PP_REJECT_XRAY},
        {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-0000000000000000-01",
         PP_REJECT_TRACEPARENT},
        {"traceparent: 00-8A3C60F7D188F8FA79D48A391A778FA6-53995c3f42cd8ad8-01",
         PP_REJECT_TRACEPARENT},
        {"traceparent: ff-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01",
         PP_REJECT_TRACEPARENT},
        {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01-extra",
         PP_REJECT_TRACEPARENT},
    };
    for (const auto& [header, reject] : cases)
        ASSERT_EQ(get("/hostile", {header}).status, 200) << header;
    auto evs = ctx_events(cases.size());
    ASSERT_EQ(evs.size(), cases.size());
    for (size_t i = 0; i < cases.size(); i++) {
        EXPECT_EQ(evs[i].source, events::CtxSource::kMinted) << cases[i].first.substr(0, 120);
        EXPECT_EQ(evs[i].rejected, cases[i].second) << cases[i].first.substr(0, 120);
        EXPECT_NE(evs[i].trace_id, kRoot);
    }
    auto counts = probes_->ctx_counts();
    EXPECT_GE(counts[PP_CTXC_XRAY_REJECTED], 7u);
    EXPECT_GE(counts[PP_CTXC_TP_REJECTED], 4u);
}

// What the X-Ray SDK for Node and OpenTelemetry keep whole, the kernel keeps too: a header after
// a large Cookie (in the read's second piece, or in the server's second read: Python's buffered
// reader reads 8 KiB at a time), a value longer than 1 KiB, a repeated key (the last wins).
TEST_F(KernelTraceCtx, LateLongAndRepeatedHeadersAreRead) {
    start(no_sampling());
    const std::string root = std::string("Root=") + kRoot;
    const std::string parent = std::string(";Parent=") + kParent;
    struct Case {
        std::vector<std::string> headers;
        events::Sampled sampled;
    };
    const std::vector<Case> cases = {
        {{"Cookie: a=" + std::string(5000, 'c'),
          "X-Amzn-Trace-Id: " + root + parent + ";Sampled=1"},
         events::Sampled::kYes},
        {{"Cookie: a=" + std::string(9000, 'c'),
          "X-Amzn-Trace-Id: " + root + parent + ";Sampled=0"},
         events::Sampled::kNo},
        {{"X-Amzn-Trace-Id: " + root + parent + ";Sampled=1;Lineage=" + std::string(1500, 'l')},
         events::Sampled::kYes},
        {{"X-Amzn-Trace-Id: Root=1-00000001-000000000000000000000001;" + root + parent +
          ";Sampled=1;Sampled=0"},
         events::Sampled::kNo},
    };
    for (const auto& c : cases) ASSERT_EQ(get("/late", c.headers).status, 200);
    auto evs = ctx_events(cases.size());
    ASSERT_EQ(evs.size(), cases.size());
    for (size_t i = 0; i < cases.size(); i++) {
        EXPECT_EQ(evs[i].source, events::CtxSource::kXrayHeader) << i;
        EXPECT_EQ(evs[i].trace_id, kRoot) << i;
        EXPECT_EQ(evs[i].parent_id, kParent) << i;
        EXPECT_EQ(evs[i].sampled, cases[i].sampled) << i;
        EXPECT_EQ(evs[i].rejected, 0) << i;
    }
    EXPECT_EQ(probes_->ctx_counts()[PP_CTXC_HEAD_UNENDED], 0u);
}

TEST_F(KernelTraceCtx, WorkerThreadInheritsAndContextEndsWithThreads) {
    start(no_sampling());
    std::thread client;
    testing::HttpResponse resp;
    client = std::thread(
        [&] { resp = get("/worker/1", {std::string("X-Amzn-Trace-Id: Root=") + kRoot}); });
    auto m = server_->process().wait_for_line(
        Stream::kStdout, std::regex("^worker ([0-9]+) ([0-9]+)$"), deadline_in(15s));
    ASSERT_TRUE(m);
    auto handler = static_cast<uint32_t>(std::stoul(m->groups[1]));
    auto worker = static_cast<uint32_t>(std::stoul(m->groups[2]));
    pp_trace_ctx parent_ctx{}, worker_ctx{};
    ASSERT_TRUE(thread_ctx(handler, parent_ctx));
    ASSERT_TRUE(thread_ctx(worker, worker_ctx))
        << "a thread started while serving inherits the context";
    EXPECT_EQ(std::memcmp(&parent_ctx, &worker_ctx, sizeof parent_ctx), 0);
    EXPECT_EQ(trace_id_of(worker_ctx), kRoot);
    ASSERT_EQ(get("/release").status, 200);
    client.join();
    ASSERT_EQ(resp.status, 200);
    ASSERT_TRUE(server_->process().wait_for_line(
        Stream::kStdout, std::regex("^joined " + std::to_string(worker) + "$"), deadline_in(15s)));
    pp_trace_ctx gone{};
    EXPECT_FALSE(thread_ctx(worker, gone)) << "the worker exited: its context is deleted";
    // curl closed its connection: the handler thread ends (ThreadingHTTPServer), and so does its
    // context.
    EXPECT_TRUE(testing::wait_until([&] { return !thread_ctx(handler, gone); }, deadline_in(15s)));
    EXPECT_GE(probes_->ctx_counts()[PP_CTXC_INHERITED], 1u);
}

TEST_F(KernelTraceCtx, ContextEndsWhenTheThreadClosesItsConnection) {
    start(no_sampling(), "close_server.py");
    testing::HttpResponse resp;
    std::thread client(
        [&] { resp = get("/closing", {std::string("X-Amzn-Trace-Id: Root=") + kRoot}); });
    auto served = server_->process().wait_for_line(Stream::kStdout, std::regex("^served ([0-9]+)$"),
                                                   deadline_in(15s));
    ASSERT_TRUE(served);
    const auto tid = static_cast<uint32_t>(std::stoul(served->groups[1]));
    pp_trace_ctx m{};
    ASSERT_TRUE(thread_ctx(tid, m)) << "answered but not closed yet: the context is still there";
    EXPECT_EQ(trace_id_of(m), kRoot);
    server_->process().send_signal(SIGUSR1);
    ASSERT_TRUE(server_->process().wait_for_line(Stream::kStdout, std::regex("^closed "),
                                                 deadline_in(15s)));
    EXPECT_FALSE(thread_ctx(tid, m)) << "the thread closed the request's connection and lives on";
    client.join();
    EXPECT_EQ(resp.status, 200);
}

// HTTPS: the request is read through SSL_read; the kernel parses its plaintext like a plain
// request's bytes, and the socket reads (handshake, ciphertext) give no context.
TEST_F(KernelTraceCtx, HttpsXrayHeaderGivesExactIdsInEventAndThreadMap) {
    start_https(no_sampling());
    std::thread client;
    testing::HttpResponse resp;
    uint32_t tid =
        hold("/hold/tls",
             {std::string("X-Amzn-Trace-Id: Root=") + kRoot + ";Parent=" + kParent + ";Sampled=1"},
             client, resp);
    ASSERT_NE(tid, 0u) << server_->process().describe();
    auto evs = ctx_events(1, tid);
    ASSERT_EQ(evs.size(), 1u) << "one context for the HTTPS request (none from the ciphertext)";
    const auto& ev = evs[0];
    EXPECT_EQ(ev.trace_id, kRoot);
    EXPECT_EQ(ev.parent_id, kParent);
    EXPECT_EQ(ev.sampled, events::Sampled::kYes);
    EXPECT_EQ(ev.source, events::CtxSource::kXrayHeader);
    EXPECT_EQ(ev.rule, events::Rule::kNone);
    EXPECT_EQ(ev.request_pos, 0u)
        << "the plaintext position (the handshake came before on the socket)";
    pp_trace_ctx m{};
    ASSERT_TRUE(thread_ctx(tid, m)) << "the serving thread holds the context while it serves";
    EXPECT_EQ(m.trace_epoch, 0x5759e988u);
    EXPECT_EQ(m.parent_id, 0x53995c3f42cd8ad8ull);
    expect_same(ev, m);
    ASSERT_EQ(get("/release").status, 200);
    client.join();
    EXPECT_EQ(resp.status, 200);
    ctx_events(2);
    expect_before_its_tls_data(ev);
    EXPECT_GE(probes_->ctx_counts()[PP_CTXC_XRAY], 1u);
}

// The same whole-head reading through SSL_read: a header after a 9 KB Cookie (several plaintext
// pieces, and more than one SSL_read: a TLS record holds at most 16 KiB and Python's buffered
// reader asks for 8 KiB).
TEST_F(KernelTraceCtx, HttpsHeaderAfterLargeCookieIsRead) {
    start_https(no_sampling());
    ASSERT_EQ(get("/late", {"Cookie: a=" + std::string(9000, 'c'),
                            std::string("X-Amzn-Trace-Id: Root=") + kRoot + ";Parent=" + kParent +
                                ";Sampled=0"})
                  .status,
              200);
    auto evs = ctx_events(1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].source, events::CtxSource::kXrayHeader);
    EXPECT_EQ(evs[0].trace_id, kRoot);
    EXPECT_EQ(evs[0].parent_id, kParent);
    EXPECT_EQ(evs[0].sampled, events::Sampled::kNo);
    EXPECT_EQ(probes_->ctx_counts()[PP_CTXC_HEAD_UNENDED], 0u);
}

TEST_F(KernelTraceCtx, HttpsRequestWithoutHeaderGetsMintedTrace) {
    start_https(no_sampling());
    const auto now = static_cast<uint32_t>(std::time(nullptr));
    std::thread client;
    testing::HttpResponse resp;
    uint32_t tid = hold("/hold/minted", {}, client, resp);
    ASSERT_NE(tid, 0u) << server_->process().describe();
    auto evs = ctx_events(1, tid);
    ASSERT_EQ(evs.size(), 1u);
    const auto& ev = evs[0];
    EXPECT_EQ(ev.source, events::CtxSource::kMinted);
    EXPECT_EQ(ev.parent_id, "");
    EXPECT_EQ(ev.sampled, events::Sampled::kNo) << "the default rule samples nothing here";
    EXPECT_EQ(ev.rule, events::Rule::kDefault) << "the default rule decided";
    EXPECT_TRUE(std::regex_match(ev.trace_id, std::regex("1-[0-9a-f]{8}-[0-9a-f]{24}")))
        << ev.trace_id;
    const uint32_t epoch = static_cast<uint32_t>(std::stoul(ev.trace_id.substr(2, 8), nullptr, 16));
    EXPECT_LE(now - 5, epoch);
    EXPECT_LE(epoch, now + 60);
    EXPECT_EQ(ev.request_pos, 0u);
    pp_trace_ctx m{};
    ASSERT_TRUE(thread_ctx(tid, m));
    expect_same(ev, m);
    ASSERT_EQ(get("/release").status, 200);
    client.join();
    EXPECT_EQ(resp.status, 200);
    ctx_events(2);
    expect_before_its_tls_data(ev);
}

}  // namespace
}  // namespace passport::agent
