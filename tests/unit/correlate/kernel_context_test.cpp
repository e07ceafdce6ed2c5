// Correlator with the kernel's trace contexts (events::TraceCtx): a server request whose
// (conn, request_pos) matches one uses the kernel's ids and sampling decision; without one
// (replays, heads the kernel could not parse) the userspace logic applies as before.
#include <gtest/gtest.h>

#include <cstring>

#include "passport/abi.h"
#include "userspace/correlate/correlator.hpp"
#include "userspace/events/decoder.hpp"
#include "userspace/events/recording.hpp"
#include "userspace/sample/kernel_rules.hpp"

namespace passport::correlate {
namespace {

constexpr char kRoot[] = "1-5759e988-bd862e3fe1be46a994272793";

struct KernelContextTest : ::testing::Test {
    Counters counters;
    ProcessInfoCache procs{"/nonexistent-proc"};
    uint64_t next = 0x1111;
    xray::IdGenerator ids{[this] { return next++; }};
    ClockOffset clock{1'700'000'000'000'000'000LL};
    bool sample_result = true;
    int sampler_calls = 0;
    std::vector<xray::Segment> out;
    Correlator corr{make_config(),
                    procs,
                    ids,
                    clock,
                    [this](const SamplingInput&, std::string* rule) {
                        sampler_calls++;
                        *rule = "userspace-rule";
                        return sample_result;
                    },
                    counters,
                    [this](xray::Segment&& s) { out.push_back(std::move(s)); }};

    static CorrelatorConfig make_config() {
        CorrelatorConfig c;
        c.configured_service_name = "svc";
        c.kernel_rule_names = {"only-path", "second"};
        c.kernel_rule_names.resize(PP_MAX_SAMPLE_RULES + 1);
        c.kernel_rule_names[PP_MAX_SAMPLE_RULES] = "Default";
        return c;
    }
    static events::ConnKey conn() { return events::ConnKey{4242, 7, 99}; }
    static pairing::HttpExchange exchange(uint64_t pos,
                                          protocol::http1::Headers headers = {{"Host", "a"}}) {
        pairing::HttpExchange ex;
        ex.conn = conn();
        ex.role = events::Role::kServer;
        ex.tgid = 4242;
        ex.request_tid = 4243;
        ex.local = {2, 8080, {127, 0, 0, 1}};
        ex.remote = {2, 50000, {127, 0, 0, 9}};
        ex.request.method = "GET";
        ex.request.target = "/x";
        ex.request.version = "HTTP/1.1";
        ex.request.headers = std::move(headers);
        protocol::http1::Response resp;
        resp.status = 200;
        ex.response = resp;
        ex.request_start_ns = 5'000'000'000 + pos;
        ex.response_end_ns = 5'002'500'000 + pos;
        ex.request_pos = pos;
        return ex;
    }
    static events::TraceCtx kernel(uint64_t pos, events::CtxSource source, events::Sampled sampled,
                                   events::Rule rule) {
        events::TraceCtx k;
        k.conn = conn();
        k.request_pos = pos;
        k.trace_id = kRoot;
        k.segment_id = "00000000000abcde";
        k.parent_id = source == events::CtxSource::kMinted ? "" : "53995c3f42cd8ad8";
        k.source = source;
        k.sampled = sampled;
        k.rule = rule;
        return k;
    }
};

TEST_F(KernelContextTest, MintedContextAndKernelDecisionAreUsed) {
    corr.on_kernel_context(
        kernel(0, events::CtxSource::kMinted, events::Sampled::kYes, events::Rule{0}));
    corr.on_exchange(exchange(0));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].trace_id, kRoot);
    EXPECT_EQ(out[0].id, "00000000000abcde");
    EXPECT_EQ(out[0].parent_id, "");
    EXPECT_EQ(out[0].aws["xray"]["rule_name"], "only-path") << "the kernel's rule, by index";
    EXPECT_EQ(sampler_calls, 0) << "the kernel decided: userspace honours it";
    EXPECT_EQ(counters.get("correlate.kernel_context_used"), 1u);
}

TEST_F(KernelContextTest, KernelNotSampledMeansNoDocumentEvenIfUserspaceWouldSample) {
    corr.on_kernel_context(
        kernel(0, events::CtxSource::kMinted, events::Sampled::kNo, events::Rule::kDefault));
    corr.on_exchange(exchange(0));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(sampler_calls, 0);
    EXPECT_EQ(counters.get("correlate.not_sampled_rules"), 1u);
}

TEST_F(KernelContextTest, HeaderContextFromKernelWinsOverUserspaceParse) {
    // The kernel read the header; userspace's own parse of the same head is not consulted.
    corr.on_kernel_context(
        kernel(0, events::CtxSource::kXrayHeader, events::Sampled::kYes, events::Rule::kNone));
    corr.on_exchange(
        exchange(0, {{"X-Amzn-Trace-Id", "Root=1-11111111-222222222222222222222222;Sampled=0"}}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].trace_id, kRoot);
    EXPECT_EQ(out[0].parent_id, "53995c3f42cd8ad8");
    EXPECT_EQ(out[0].id, "00000000000abcde");
    EXPECT_TRUE(out[0].aws.is_null() || !out[0].aws.contains("xray"));
}

TEST_F(KernelContextTest, UnknownDecisionIsLeftToUserspaceRulesWithKernelIds) {
    corr.on_kernel_context(
        kernel(0, events::CtxSource::kMinted, events::Sampled::kUnknown, events::Rule::kNone));
    corr.on_exchange(exchange(0));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(sampler_calls, 1);
    EXPECT_EQ(out[0].trace_id, kRoot);
    EXPECT_EQ(out[0].aws["xray"]["rule_name"], "userspace-rule");
}

TEST_F(KernelContextTest, OnlyTheRequestAtThatPositionMatches) {
    corr.on_kernel_context(
        kernel(512, events::CtxSource::kMinted, events::Sampled::kYes, events::Rule{0}));
    corr.on_exchange(exchange(0));  // another request on the connection: today's logic
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].trace_id, kRoot);
    EXPECT_EQ(sampler_calls, 1);
    corr.on_exchange(exchange(512));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].trace_id, kRoot);
    EXPECT_EQ(sampler_calls, 1);
}

TEST_F(KernelContextTest, WithoutKernelContextUserspaceHeaderLogicApplies) {
    corr.on_exchange(exchange(0, {{"X-Amzn-Trace-Id", std::string("Root=") + kRoot +
                                                          ";Parent=53995c3f42cd8ad8;Sampled=1"}}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].trace_id, kRoot);
    EXPECT_NE(out[0].id, "00000000000abcde");
    EXPECT_EQ(counters.get("correlate.kernel_context_used"), 0u);
}

TEST_F(KernelContextTest, UnclaimedContextsAreBounded) {
    for (uint64_t i = 0; i < 9000; i++)
        corr.on_kernel_context(kernel(i * 100 + 1, events::CtxSource::kMinted,
                                      events::Sampled::kYes, events::Rule{0}));
    EXPECT_GE(counters.get("correlate.kernel_context_unclaimed"), 9000u - 8192u);
}

// B (this connection) is called by A's thread on the same node, without a header: A's call is
// B's parent even though the kernel minted a trace for B's request; B keeps the kernel's segment
// id. With a header the kernel read, that header wins over stitching.
TEST_F(KernelContextTest, StitchingWinsOverAMintedKernelTraceButNotOverAHeader) {
    for (events::CtxSource source : {events::CtxSource::kMinted, events::CtxSource::kXrayHeader}) {
        out.clear();
        const uint64_t pos = static_cast<uint64_t>(source) * 1000;
        // A: tgid 100 serves a request (userspace context, sampled) and calls B from port 50001.
        pairing::HttpExchange a = exchange(pos);
        a.conn = {100, 3, 1};
        a.tgid = 100;
        a.request_tid = 101;
        a.local = {2, 7000, {127, 0, 0, 1}};
        a.remote = {2, 40000, {127, 0, 0, 1}};
        pairing::HttpExchange call = exchange(pos);
        call.role = events::Role::kClient;
        call.conn = {100, 4, 2 + pos};
        call.tgid = 100;
        call.request_tid = 101;
        call.local = {2, 50001, {127, 0, 0, 1}};
        call.remote = {2, 8080, {127, 0, 0, 1}};
        call.request_start_ns = a.request_start_ns + 100;
        pairing::HttpExchange b = exchange(pos);  // conn() of tgid 4242 on 8080
        b.remote = {2, 50001, {127, 0, 0, 1}};
        b.request_start_ns = a.request_start_ns + 200;
        auto seen = [](const pairing::HttpExchange& ex) {
            pairing::HttpRequestSeen s;
            s.conn = ex.conn;
            s.role = ex.role;
            s.local = ex.local;
            s.remote = ex.remote;
            s.tgid = ex.tgid;
            s.tid = ex.request_tid;
            s.request_start_ns = ex.request_start_ns;
            s.request_pos = ex.request_pos;
            s.request = &ex.request;
            return s;
        };
        corr.on_request_seen(seen(a));
        corr.on_request_seen(seen(call));
        corr.on_kernel_context(
            kernel(pos, source, events::Sampled::kYes,
                   source == events::CtxSource::kMinted ? events::Rule{0} : events::Rule::kNone));
        corr.on_request_seen(seen(b));
        corr.on_exchange(std::move(b));
        corr.on_exchange(std::move(call));
        corr.on_exchange(std::move(a));
        ASSERT_EQ(out.size(), 2u);
        const xray::Segment& seg_b = out[0];
        const xray::Segment& seg_a = out[1];
        ASSERT_EQ(seg_a.subsegments.size(), 1u);
        EXPECT_EQ(seg_b.id, "00000000000abcde") << "the kernel's segment id either way";
        if (source == events::CtxSource::kMinted) {
            EXPECT_EQ(seg_b.trace_id, seg_a.trace_id) << "stitched into the caller's trace";
            EXPECT_EQ(seg_b.parent_id, seg_a.subsegments[0].id);
        } else {
            EXPECT_EQ(seg_b.trace_id, kRoot) << "the header the kernel read wins";
            EXPECT_EQ(seg_b.parent_id, "53995c3f42cd8ad8");
        }
    }
}

// A traced proxy (tgid 100) forwards the header its request arrived with to B on this node; the
// kernel read that header on both. B's header is the proxy's, not the proxy's own: B is stitched
// under the proxy's call (the same Root, the kernel's sampling decision and segment id). When the
// proxy's own SDK sent a header with a new Parent instead, that header wins as before. Both
// orders of arrival.
TEST_F(KernelContextTest, ForwardedHeaderIsStitchedUnderTheProxysCallButAnSdkHeaderWins) {
    const std::string incoming =
        std::string("Root=") + kRoot + ";Parent=53995c3f42cd8ad8;Sampled=1";
    const std::string sdk = std::string("Root=") + kRoot + ";Parent=2222222222222222;Sampled=1";
    int n = 0;
    for (bool forwarded : {true, false}) {
        for (bool callee_first : {false, true}) {
            SCOPED_TRACE(std::string(forwarded ? "forwarded" : "SDK header") +
                         (callee_first ? ", callee first" : ", call first"));
            out.clear();
            counters = Counters{};
            const uint64_t pos = uint64_t(n) * 1000;
            const auto port = static_cast<uint16_t>(50001 + n);
            n++;
            const std::string sent = forwarded ? incoming : sdk;
            pairing::HttpExchange a =
                exchange(pos, {{"Host", "proxy"}, {"X-Amzn-Trace-Id", incoming}});
            a.conn = {100, 3, 1};
            a.tgid = 100;
            a.request_tid = 101;
            a.local = {2, 7000, {127, 0, 0, 1}};
            a.remote = {2, 40000, {127, 0, 0, 1}};
            pairing::HttpExchange call = exchange(pos, {{"Host", "b"}, {"X-Amzn-Trace-Id", sent}});
            call.role = events::Role::kClient;
            call.conn = {100, 4, 2 + pos};
            call.tgid = 100;
            call.request_tid = 101;
            call.local = {2, port, {127, 0, 0, 1}};
            call.remote = {2, 8080, {127, 0, 0, 1}};
            call.request_start_ns = a.request_start_ns + 100;
            pairing::HttpExchange b = exchange(pos, {{"Host", "b"}, {"X-Amzn-Trace-Id", sent}});
            b.remote = {2, port, {127, 0, 0, 1}};
            b.request_start_ns = a.request_start_ns + 200;
            events::TraceCtx ka = kernel(pos, events::CtxSource::kXrayHeader, events::Sampled::kYes,
                                         events::Rule::kNone);
            ka.conn = a.conn;
            ka.segment_id = "000000000000a000";
            events::TraceCtx kb = kernel(pos, events::CtxSource::kXrayHeader, events::Sampled::kYes,
                                         events::Rule::kNone);
            kb.parent_id = xray::parse_trace_header(sent).parent;
            auto seen = [](const pairing::HttpExchange& ex) {
                pairing::HttpRequestSeen s;
                s.conn = ex.conn;
                s.role = ex.role;
                s.local = ex.local;
                s.remote = ex.remote;
                s.tgid = ex.tgid;
                s.tid = ex.request_tid;
                s.request_start_ns = ex.request_start_ns;
                s.request_pos = ex.request_pos;
                s.request = &ex.request;
                return s;
            };
            corr.on_kernel_context(ka);
            corr.on_request_seen(seen(a));
            if (callee_first) {
                corr.on_kernel_context(kb);
                corr.on_request_seen(seen(b));
                corr.on_request_seen(seen(call));
            } else {
                corr.on_request_seen(seen(call));
                corr.on_kernel_context(kb);
                corr.on_request_seen(seen(b));
            }
            corr.on_exchange(std::move(b));
            corr.on_exchange(std::move(call));
            corr.on_exchange(std::move(a));
            ASSERT_EQ(out.size(), 2u);
            const xray::Segment& seg_b = out[0];
            const xray::Segment& seg_a = out[1];
            ASSERT_EQ(seg_a.subsegments.size(), 1u);
            EXPECT_EQ(seg_a.id, "000000000000a000");
            EXPECT_EQ(seg_a.parent_id, "53995c3f42cd8ad8");
            EXPECT_EQ(seg_b.id, "00000000000abcde") << "the kernel's segment id either way";
            EXPECT_EQ(seg_b.trace_id, kRoot);
            EXPECT_EQ(counters.get("correlate.kernel_context_used"), 2u);
            if (forwarded) {
                EXPECT_EQ(seg_b.parent_id, seg_a.subsegments[0].id) << "under the proxy's call";
                EXPECT_EQ(seg_a.subsegments[0].http->request->traced, true);
                EXPECT_EQ(counters.get("correlate.stitched_forwarded_header"), 1u);
            } else {
                EXPECT_EQ(seg_b.parent_id, "2222222222222222") << "the app's own SDK wins";
                EXPECT_FALSE(seg_a.subsegments[0].http->request->traced.has_value());
                EXPECT_EQ(counters.get("correlate.stitched_same_node"), 0u);
            }
            EXPECT_EQ(sampler_calls, 0);
        }
    }
}

// B -> C -> D, all traced here. B's call to C carries no header (not injected), so the kernel
// minted kRoot for C, and C's call to D was injected with Root=kRoot;Parent=<C's call id>. C is
// stitched under B's call (B's trace); D's header names C's injected call, so D follows that
// call's current trace (B's), its sampling decision, and the call as parent.
struct ChainHop {
    pairing::HttpExchange b, b_call, c, c_call, d;
    events::TraceCtx kc, kd;
    events::Inject inj;
};

pairing::HttpRequestSeen seen_of(const pairing::HttpExchange& ex) {
    pairing::HttpRequestSeen s;
    s.conn = ex.conn;
    s.role = ex.role;
    s.local = ex.local;
    s.remote = ex.remote;
    s.tgid = ex.tgid;
    s.tid = ex.request_tid;
    s.request_start_ns = ex.request_start_ns;
    s.request_pos = ex.request_pos;
    s.request = &ex.request;
    return s;
}

constexpr char kInjectedId[] = "0000000000c0ffee";

struct InjectedParentTest : KernelContextTest {
    uint64_t shift = 0;
    ChainHop hop(const std::string& d_parent = kInjectedId) {
        ChainHop h;
        h.b = exchange(0);
        h.b.conn = {100, 3, 1};
        h.b.tgid = 100;
        h.b.request_tid = 101;
        h.b.local = {2, 7000, {127, 0, 0, 1}};
        h.b.remote = {2, 40000, {127, 0, 0, 1}};
        h.b_call = exchange(0, {{"Host", "c"}});
        h.b_call.role = events::Role::kClient;
        h.b_call.conn = {100, 4, 2};
        h.b_call.tgid = 100;
        h.b_call.request_tid = 101;
        h.b_call.local = {2, 50001, {127, 0, 0, 1}};
        h.b_call.remote = {2, 8080, {127, 0, 0, 1}};
        h.b_call.request_start_ns = h.b.request_start_ns + 100;
        h.c = exchange(0);  // conn() of tgid 4242 on 8080
        h.c.remote = {2, 50001, {127, 0, 0, 1}};
        h.c.request_start_ns = h.b.request_start_ns + 200;
        h.c_call = exchange(0, {{"Host", "d"}});
        h.c_call.role = events::Role::kClient;
        h.c_call.conn = {4242, 8, 5};
        h.c_call.local = {2, 50002, {127, 0, 0, 1}};
        h.c_call.remote = {2, 9090, {127, 0, 0, 1}};
        h.c_call.request_start_ns = h.b.request_start_ns + 300;
        const std::string header =
            std::string("Root=") + kRoot + ";Parent=" + d_parent + ";Sampled=1";
        h.d = exchange(0, {{"Host", "d"}, {"X-Amzn-Trace-Id", header}});
        h.d.conn = {300, 5, 1};
        h.d.tgid = 300;
        h.d.request_tid = 301;
        h.d.local = {2, 9090, {127, 0, 0, 1}};
        h.d.remote = {2, 50002, {127, 0, 0, 1}};
        h.d.request_start_ns = h.b.request_start_ns + 400;
        // Each hop at later times: a correlator keeps finished contexts by (conn, start time).
        for (pairing::HttpExchange* ex : {&h.b, &h.b_call, &h.c, &h.c_call, &h.d}) {
            ex->request_start_ns += shift;
            ex->response_end_ns += shift;
        }
        shift += 1'000'000'000;
        h.kc = kernel(0, events::CtxSource::kMinted, events::Sampled::kYes, events::Rule{0});
        h.kd =
            kernel(0, events::CtxSource::kXrayHeader, events::Sampled::kYes, events::Rule::kNone);
        h.kd.conn = h.d.conn;
        h.kd.segment_id = "000000000000d000";
        h.kd.parent_id = d_parent;
        h.inj.tgid = 4242;
        h.inj.tid = 4243;
        h.inj.local = h.c_call.local;
        h.inj.remote = h.c_call.remote;
        h.inj.app_pos = 0;
        h.inj.subsegment_id = 0xc0ffee;
        h.inj.ctx_from_thread = true;
        h.inj.trace_id = kRoot;
        h.inj.segment_id = 0xabcde;
        h.inj.sampled = events::Sampled::kYes;
        h.inj.ctx_conn = conn();
        h.inj.ctx_request_pos = 0;
        return h;
    }
    // B and C heads, then the call C->D, its injection report and D in the order given
    // ('c' call head, 'i' injection report, 'd' D's kernel context and head, 'x' D completes),
    // then the other completions.
    void run(ChainHop& h, const std::string& order, bool d_kernel = true, bool b_exists = true) {
        if (b_exists) {
            corr.on_request_seen(seen_of(h.b));
            corr.on_request_seen(seen_of(h.b_call));
        }
        corr.on_kernel_context(h.kc);
        corr.on_request_seen(seen_of(h.c));
        for (char step : order) {
            if (step == 'c') corr.on_request_seen(seen_of(h.c_call));
            if (step == 'i') corr.on_inject(h.inj);
            if (step == 'd') {
                if (d_kernel) corr.on_kernel_context(h.kd);
                corr.on_request_seen(seen_of(h.d));
            }
            if (step == 'x') corr.on_exchange(std::move(h.d));
        }
        if (order.find('x') == std::string::npos) corr.on_exchange(std::move(h.d));
        corr.on_exchange(std::move(h.c_call));
        corr.on_exchange(std::move(h.c));
        if (b_exists) {
            corr.on_exchange(std::move(h.b_call));
            corr.on_exchange(std::move(h.b));
        }
    }
};

TEST_F(InjectedParentTest, DownstreamFollowsTheInjectedCallsStitchedTraceInEveryOrder) {
    // "icd": report before the call's head; "cid": after it; "dic"/"dci": D first; "idxc": D
    // resolved (and sent) while the report still waits for the call's head.
    for (const std::string order : {"icd", "cid", "dic", "dci", "idxc"}) {
        for (bool d_kernel : {true, false}) {
            SCOPED_TRACE(order + (d_kernel ? " with D's kernel context" : " header parsed only"));
            out.clear();
            counters = Counters{};
            ChainHop h = hop();
            run(h, order, d_kernel);
            ASSERT_EQ(out.size(), 3u);
            const xray::Segment& d = out[0];
            const xray::Segment& c = out[1];
            const xray::Segment& b = out[2];
            ASSERT_EQ(b.subsegments.size(), 1u);
            ASSERT_EQ(c.subsegments.size(), 1u);
            EXPECT_NE(b.trace_id, kRoot);
            EXPECT_EQ(c.trace_id, b.trace_id) << "C stitched under B's call";
            EXPECT_EQ(c.parent_id, b.subsegments[0].id);
            EXPECT_EQ(c.subsegments[0].id, kInjectedId) << "the id the kernel wrote on the wire";
            EXPECT_EQ(d.trace_id, b.trace_id) << "one trace, not the Root the kernel minted for C";
            EXPECT_EQ(d.parent_id, kInjectedId);
            if (d_kernel) {
                EXPECT_EQ(d.id, "000000000000d000") << "D keeps the kernel's segment id";
            }
            EXPECT_EQ(counters.get("correlate.linked_by_injected_id"), 1u);
            EXPECT_EQ(counters.get("correlate.trace_realigned"), 1u);
        }
    }
}

TEST_F(InjectedParentTest, DownstreamTakesTheCallsSamplingDecisionNotTheHeaders) {
    sample_result = false;  // B is not sampled by the rules; the header at D says Sampled=1
    ChainHop h = hop();
    run(h, "cid");
    EXPECT_TRUE(out.empty()) << "B's decision covers the whole trace";
    EXPECT_EQ(counters.get("correlate.linked_by_injected_id"), 1u);
}

TEST_F(InjectedParentTest, SameTraceWhenTheCallerWasNotStitched) {
    ChainHop h = hop();
    run(h, "icd", true, /*b_exists=*/false);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].trace_id, kRoot);
    EXPECT_EQ(out[1].trace_id, kRoot);
    EXPECT_EQ(out[0].parent_id, kInjectedId);
    EXPECT_EQ(counters.get("correlate.linked_by_injected_id"), 1u);
    EXPECT_EQ(counters.get("correlate.trace_realigned"), 0u);
}

TEST_F(InjectedParentTest, UnknownParentKeepsTheHeader) {
    for (bool d_kernel : {true, false}) {
        SCOPED_TRACE(d_kernel ? "with D's kernel context" : "header parsed only");
        out.clear();
        counters = Counters{};
        ChainHop h = hop("53995c3f42cd8ad8");  // not an id injected here
        run(h, "icd", d_kernel);
        ASSERT_EQ(out.size(), 3u);
        EXPECT_EQ(out[0].trace_id, kRoot) << "as today: the header's Root";
        EXPECT_EQ(out[0].parent_id, "53995c3f42cd8ad8");
        EXPECT_NE(out[2].trace_id, kRoot);
        EXPECT_EQ(counters.get("correlate.linked_by_injected_id"), 0u);
        EXPECT_EQ(counters.get("correlate.trace_realigned"), 0u);
    }
}

TEST(KernelTraceCtxEvent, DecodesAndRoundTripsThroughRecordings) {
    pp_trace_ctx_event ev{};
    ev.hdr.kind = PP_EV_TRACE_CTX;
    ev.hdr.tgid = 10;
    ev.hdr.tid = 11;
    ev.hdr.ts_ns = 12345;
    ev.ctx.trace_epoch = 0x5759e988;
    const uint8_t rand[12] = {0xbd, 0x86, 0x2e, 0x3f, 0xe1, 0xbe,
                              0x46, 0xa9, 0x94, 0x27, 0x27, 0x93};
    std::memcpy(ev.ctx.trace_rand, rand, sizeof rand);
    ev.ctx.segment_id = 0xabc;
    ev.ctx.parent_id = 0x53995c3f42cd8ad8ull;
    ev.ctx.sampled = PP_SAMPLED_YES;
    ev.ctx.source = PP_CTX_XRAY_HEADER;
    ev.ctx.conn = {10, 5, 77};
    ev.ctx.request_pos = 4096;
    ev.rule = PP_RULE_NONE;
    std::vector<uint8_t> rec(sizeof ev);
    std::memcpy(rec.data(), &ev, sizeof ev);
    auto d = events::decode(rec);
    ASSERT_TRUE(d.ok());
    const auto* t = std::get_if<events::TraceCtx>(&*d);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->trace_id, kRoot);
    EXPECT_EQ(t->segment_id, "0000000000000abc");
    EXPECT_EQ(t->parent_id, "53995c3f42cd8ad8");
    EXPECT_EQ(t->request_pos, 4096u);
    EXPECT_EQ(t->conn, (events::ConnKey{10, 5, 77}));
    EXPECT_EQ(t->tid, 11u);
    auto back = events::from_json_line(events::to_json_line(*d));
    ASSERT_TRUE(back.ok()) << back.error();
    const auto* t2 = std::get_if<events::TraceCtx>(&*back);
    ASSERT_NE(t2, nullptr);
    EXPECT_EQ(t2->trace_id, t->trace_id);
    EXPECT_EQ(t2->segment_id, t->segment_id);
    EXPECT_EQ(t2->request_pos, t->request_pos);

    ev.ctx.segment_id = 0;  // never valid
    std::memcpy(rec.data(), &ev, sizeof ev);
    EXPECT_FALSE(events::decode(rec).ok());
    rec.resize(sizeof ev - 1);
    EXPECT_FALSE(events::decode(rec).ok());
}

TEST(KernelRules, CompilesPatternsRatesAndDefersWhatDoesNotFit) {
    sample::LocalRules rules = sample::default_local_rules();
    sample::LocalRule r;
    r.name = "checkout";
    r.host = "*";
    r.http_method = "POST";
    r.url_path = "/checkout*";
    r.fixed_target = 3;
    r.rate = 0.5;
    sample::LocalRule too_long = r;
    too_long.name = "long";
    too_long.url_path = std::string(PP_GLOB_MAX + 1, 'x');
    rules.rules = {r, too_long};
    auto k = sample::compile_kernel_rules(rules);
    ASSERT_EQ(k.rules.size(), 2u);
    EXPECT_EQ(k.cfg.rule_count, 2u);
    EXPECT_EQ(k.cfg.enabled, 1);
    EXPECT_EQ(k.cfg.overflow, 0);
    EXPECT_EQ(k.rules[0].fixed_target, 3u);
    EXPECT_EQ(k.rules[0].rate_u32, 0x80000000u);
    EXPECT_EQ(std::string(k.rules[0].path, k.rules[0].path_len), "/checkout*");
    EXPECT_EQ(std::string(k.rules[0].method, k.rules[0].method_len), "POST");
    EXPECT_EQ(k.rules[1].deferred, 1);
    EXPECT_EQ(k.deferred, 1u);
    EXPECT_EQ(k.names[0], "checkout");
    EXPECT_EQ(k.names[PP_MAX_SAMPLE_RULES], "Default");
    EXPECT_EQ(k.default_rule.fixed_target, 1u);

    rules.rules.assign(PP_MAX_SAMPLE_RULES + 2, r);
    k = sample::compile_kernel_rules(rules);
    EXPECT_EQ(k.rules.size(), static_cast<size_t>(PP_MAX_SAMPLE_RULES));
    EXPECT_EQ(k.cfg.overflow, 1);
    EXPECT_EQ(k.deferred, 2u);
}

}  // namespace
}  // namespace passport::correlate
