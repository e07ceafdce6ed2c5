// Call -> request linking, one rule at a time (call_linking.hpp), from short event streams as the
// pipeline hands them to the correlator: request heads, kernel injection reports, exchanges.
// Each test asserts the parent chosen (the segment holding the call's subsegment) and what the
// subsegment says of it: metadata.passport.link.rule and .inferred.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "userspace/correlate/call_linking.hpp"
#include "userspace/correlate/correlator.hpp"
#include "userspace/correlate/keys.hpp"

namespace passport::correlate {
namespace {

using pairing::HttpExchange;

constexpr uint32_t kTgid = 100;
constexpr uint32_t kLoop = 101;  // the event loop / serving thread

struct LinkStrategyTest : ::testing::Test {
    Counters counters;
    ProcessInfoCache procs{"/nonexistent-proc"};
    uint64_t next = 0x1000;
    xray::IdGenerator ids{[this] { return next++; }};
    ClockOffset clock{1'700'000'000'000'000'000LL};
    std::vector<xray::Segment> out;
    Correlator corr{CorrelatorConfig{"svc", "host-1"},
                    procs,
                    ids,
                    clock,
                    [](const SamplingInput&, std::string*) { return true; },
                    counters,
                    [this](xray::Segment&& s) { out.push_back(std::move(s)); },
                    [](xray::Subsegment&&, const std::string&, const std::string&) {}};

    // A request for `path` served by thread `tid` on connection fd `fd`, read at `start_ns`.
    static HttpExchange served(const std::string& path, uint32_t tid, int fd, uint64_t start_ns,
                               protocol::http1::Headers headers = {}) {
        HttpExchange ex;
        ex.role = events::Role::kServer;
        ex.conn = {kTgid, fd, 1};
        ex.tgid = kTgid;
        ex.request_tid = tid;
        ex.local = {2, 8080, {10, 0, 0, 1}};
        ex.remote = {2, static_cast<uint16_t>(40000 + fd), {10, 0, 0, 2}};
        ex.request.method = "GET";
        ex.request.target = path;
        ex.request.headers = std::move(headers);
        ex.request.headers.emplace_back("Host", "front");
        ex.response = protocol::http1::Response{};
        ex.response->status = 200;
        ex.request_start_ns = start_ns;
        ex.response_end_ns = start_ns + 900'000;
        ex.request_pos = 7 * start_ns;  // any offset, distinct per request
        return ex;
    }
    // A call for `path` made by thread `tid` from local port `port` to 127.0.0.1:9000.
    static HttpExchange call(const std::string& path, uint32_t tid, uint16_t port,
                             uint64_t start_ns, protocol::http1::Headers headers = {}) {
        HttpExchange ex;
        ex.role = events::Role::kClient;
        ex.conn = {kTgid, 1000 + port, 1};
        ex.tgid = kTgid;
        ex.request_tid = tid;
        ex.local = {2, port, {127, 0, 0, 1}};
        ex.remote = {2, 9000, {127, 0, 0, 1}};
        ex.request.method = "GET";
        ex.request.target = path;
        ex.request.headers = std::move(headers);
        ex.request.headers.emplace_back("Host", "backend:9000");
        ex.response = protocol::http1::Response{};
        ex.response->status = 200;
        ex.request_start_ns = start_ns;
        ex.response_end_ns = start_ns + 100'000;
        ex.request_pos = 0;
        return ex;
    }
    // The kernel's report for `c`: it wrote subsegment id `id`; `parent` is the request the
    // writing thread was serving (nullptr: none, the kernel minted a context).
    static events::Inject report(const HttpExchange& c, uint64_t id, const HttpExchange* parent,
                                 events::InjectOutcome outcome = events::InjectOutcome::kInjected) {
        events::Inject i;
        i.tgid = c.tgid;
        i.tid = c.request_tid;
        i.local = c.local;
        i.remote = c.remote;
        i.app_pos = c.request_pos;
        i.outcome = outcome;
        i.subsegment_id = id;
        i.ctx_from_thread = parent != nullptr;
        if (parent) {
            i.ctx_conn = parent->conn;
            i.ctx_request_pos = parent->request_pos;
        }
        i.trace_id = "1-6b06269a-f5fd2e2bf34013558615b650";
        i.segment_id = 0xabcdefULL;
        i.sampled = events::Sampled::kYes;
        return i;
    }
    void head(const HttpExchange& ex) {
        pairing::HttpRequestSeen s;
        static_cast<pairing::ConnFacts&>(s) = ex;
        s.tgid = ex.tgid;
        s.tid = ex.request_tid;
        s.request_start_ns = ex.request_start_ns;
        s.request_pos = ex.request_pos;
        s.request = &ex.request;
        corr.on_request_seen(s);
    }
    // The exchange completes; a call's response is read by `response_tid` (0: not reported).
    void done(HttpExchange ex, uint32_t response_tid = 0) {
        ex.response_tid = response_tid;
        corr.on_exchange(std::move(ex));
    }

    const xray::Segment* segment(const std::string& path) const {
        for (const auto& s : out)
            if (s.http && s.http->request && s.http->request->url.ends_with(path)) return &s;
        return nullptr;
    }
    // "<segment path> <rule> <inferred>" for the call subsegment whose URL ends with `path`.
    std::string placed(const std::string& path) const {
        for (const auto& s : out) {
            for (const auto& sub : s.subsegments) {
                if (!sub.http || !sub.http->request->url.ends_with(path)) continue;
                const std::string url = s.http && s.http->request ? s.http->request->url : "";
                const std::string seg = url.empty() ? "own segment" : url.substr(url.rfind('/'));
                if (!sub.metadata.contains("passport")) return seg + " (no link)";
                const auto& link = sub.metadata["passport"]["link"];
                return seg + " " + link["rule"].get<std::string>() +
                       (link["inferred"].get<bool>() ? " inferred" : " exact");
            }
        }
        return "not found";
    }
};

// A thread per request: each call belongs to the one request its thread serves, known.
TEST_F(LinkStrategyTest, ThreadPerRequestLinksEachCallToItsThreadsRequestExactly) {
    auto a = served("/a", 201, 10, 1'000'000);
    auto b = served("/b", 202, 11, 1'100'000);
    head(a);
    head(b);
    auto call_b = call("/call-b", 202, 50002, 1'200'000);
    auto call_a = call("/call-a", 201, 50001, 1'300'000);
    head(call_b);
    head(call_a);
    done(std::move(call_a), 201);
    auto call_a2 = call("/call-a2", 201, 50003, 1'500'000);  // after the first call's response
    head(call_a2);
    done(std::move(call_a2), 201);
    done(std::move(call_b), 202);
    done(std::move(a));
    done(std::move(b));
    EXPECT_EQ(placed("/call-a"), "/a last_io_on_thread exact");
    EXPECT_EQ(placed("/call-a2"), "/a last_io_on_thread exact");
    EXPECT_EQ(placed("/call-b"), "/b last_io_on_thread exact");
    EXPECT_EQ(counters.get("correlate.links_exact"), 3u);
    EXPECT_EQ(counters.get("correlate.links_inferred"), 0u);
}

// One thread, two interleaved requests: the thread rules follow its I/O, and say they guess.
TEST_F(LinkStrategyTest, EventLoopWithTwoInterleavedRequestsFollowsTheThreadsIo) {
    auto one = served("/one", kLoop, 10, 1'000'000);
    auto two = served("/two", kLoop, 11, 1'200'000);
    head(one);
    auto c1 = call("/c1", kLoop, 50001, 1'100'000);  // only /one is open
    head(c1);
    head(two);                                       // now two are open: an event loop
    auto c2 = call("/c2", kLoop, 50002, 1'300'000);  // /two's head was the last I/O
    head(c2);
    done(std::move(c1), kLoop);  // /one's continuation runs next
    auto c1b = call("/c1b", kLoop, 50003, 1'400'000);
    head(c1b);
    done(std::move(c1b), kLoop);
    done(std::move(c2), kLoop);  // last I/O: /two
    done(std::move(two));        // /two is sent; the thread's last I/O goes with it
    auto c3 = call("/c3", kLoop, 50004, 1'600'000);
    head(c3);
    done(std::move(c3), kLoop);
    done(std::move(one));
    ASSERT_NE(segment("/one"), nullptr);
    ASSERT_NE(segment("/two"), nullptr);
    EXPECT_EQ(placed("/c1"), "/one last_io_on_thread exact");
    EXPECT_EQ(placed("/c2"), "/two last_io_on_thread inferred");
    EXPECT_EQ(placed("/c1b"), "/one last_io_on_thread inferred");
    EXPECT_EQ(placed("/c3"), "/one latest_on_thread inferred");
    EXPECT_EQ(counters.get("correlate.links_inferred"), 3u);
}

// A proxy on an event loop forwards /p1's header unchanged while /p2's head was its last I/O;
// the kernel rewrote the header's Parent and named /p1: that link is known, whatever the thread
// rules would say, in either order of the report and the call's head.
TEST_F(LinkStrategyTest, ForwardedHeaderRewrittenByTheKernelNamesTheRequestExactly) {
    const std::string h1 =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const std::string h2 =
        "Root=1-5759e988-000000000000000000000002;Parent=1111111111111111;Sampled=1";
    auto p1 = served("/p1", kLoop, 10, 1'000'000, {{"X-Amzn-Trace-Id", h1}});
    auto p2 = served("/p2", kLoop, 11, 1'100'000, {{"X-Amzn-Trace-Id", h2}});
    head(p1);
    head(p2);
    auto before = call("/fwd-before", kLoop, 50001, 1'200'000, {{"X-Amzn-Trace-Id", h1}});
    auto after = call("/fwd-after", kLoop, 50002, 1'300'000, {{"X-Amzn-Trace-Id", h1}});
    corr.on_inject(report(before, 0x77, &p1, events::InjectOutcome::kRewritten));
    head(before);
    head(after);
    corr.on_inject(report(after, 0x78, &p1, events::InjectOutcome::kRewritten));
    done(std::move(before));
    done(std::move(after));
    done(std::move(p1));
    done(std::move(p2));
    EXPECT_EQ(placed("/fwd-before"), "/p1 forwarded_header exact");
    EXPECT_EQ(placed("/fwd-after"), "/p1 forwarded_header exact");
    ASSERT_NE(segment("/p1"), nullptr);
    EXPECT_EQ(segment("/p1")->subsegments[0].id, "0000000000000077") << "the id on the wire";
    EXPECT_EQ(counters.get("correlate.forwarded_header_rewritten"), 2u);
}

// The kernel named the writing thread's request when it injected the header: that request is
// the parent. On an event loop the kernel's choice is still the thread's, so it stays inferred;
// a worker thread serving nothing itself makes it known.
TEST_F(LinkStrategyTest, KernelThreadContextNamesTheRequest) {
    auto k1 = served("/k1", kLoop, 10, 1'000'000);
    auto k2 = served("/k2", kLoop, 11, 1'100'000);
    head(k1);
    head(k2);
    auto on_loop = call("/on-loop", kLoop, 50001, 1'200'000);
    corr.on_inject(report(on_loop, 0x91, &k1));
    head(on_loop);
    auto on_worker = call("/on-worker", 999, 50002, 1'300'000);
    head(on_worker);
    corr.on_inject(report(on_worker, 0x92, &k2));  // reported after the head
    done(std::move(on_loop));
    done(std::move(on_worker));
    done(std::move(k1));
    done(std::move(k2));
    EXPECT_EQ(placed("/on-loop"), "/k1 kernel_thread_context inferred");
    EXPECT_EQ(placed("/on-worker"), "/k2 kernel_thread_context exact");
}

// The kernel saw no request on the writing thread and minted a context: the call is a segment
// of its own in the kernel's trace, although the thread rules would have found a request.
TEST_F(LinkStrategyTest, KernelMintedContextOverridesTheThreadRules) {
    auto r = served("/r", kLoop, 10, 1'000'000);
    head(r);
    auto c = call("/minted", kLoop, 50001, 1'100'000);
    corr.on_inject(report(c, 0x93, nullptr));
    head(c);
    done(std::move(c));
    done(std::move(r));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0].trace_id, "1-6b06269a-f5fd2e2bf34013558615b650");
    ASSERT_EQ(out[0].subsegments.size(), 1u);
    EXPECT_EQ(placed("/minted"), "own segment (no link)");
    EXPECT_TRUE(out[1].subsegments.empty());
}

// Same-node stitching: the request a traced server reads from a traced call's connection (the
// mirrored tuple) goes under the call's subsegment, in the caller's trace, in either order.
TEST_F(LinkStrategyTest, StitchingPutsTheCalleeUnderTheCallOnThisNode) {
    for (bool callee_first : {false, true}) {
        out.clear();
        const uint64_t t = callee_first ? 9'000'000 : 1'000'000;
        const uint16_t port = callee_first ? 50002 : 50001;
        auto front = served("/front", kLoop, callee_first ? 20 : 10, t);
        head(front);
        auto c = call("/stock", kLoop, port, t + 100'000);
        HttpExchange callee = served("/stock", 301, 30, t + 150'000);
        callee.tgid = 300;
        callee.conn = {300, callee_first ? 31 : 30, 1};
        callee.local = c.remote;
        callee.remote = c.local;
        if (callee_first) head(callee);
        head(c);
        if (!callee_first) head(callee);
        done(std::move(callee));
        done(std::move(c));
        done(std::move(front));
        ASSERT_EQ(out.size(), 2u);
        const auto& callee_seg = out[0];
        const auto& caller_seg = out[1];
        ASSERT_EQ(caller_seg.subsegments.size(), 1u);
        const auto& sub = caller_seg.subsegments[0];
        EXPECT_EQ(callee_seg.parent_id, sub.id) << callee_first;
        EXPECT_EQ(callee_seg.trace_id, caller_seg.trace_id) << callee_first;
        EXPECT_EQ(sub.http->request->traced, true) << callee_first;
        EXPECT_EQ(placed("/stock"), "/front last_io_on_thread exact") << callee_first;
    }
    EXPECT_EQ(counters.get("correlate.stitched_same_node"), 2u);
}

// --- the rule functions and keys on their own ------------------------------------------------

TEST(LinkRules, ThreadRulesReadTheContextTable) {
    Counters counters;
    ContextTable table(16, counters);
    const uint64_t thread = thread_key(kTgid, kLoop);
    const RequestKey r1{{kTgid, 10, 1}, 100};
    const RequestKey r2{{kTgid, 11, 1}, 200};
    EXPECT_FALSE(link_last_io_on_thread(table, thread));
    EXPECT_FALSE(link_latest_on_thread(table, thread, 300));
    for (const RequestKey& k : {r1, r2}) {
        ServerContext& ctx = table.add_server(k);
        ctx.tgid = kTgid;
        ctx.tid = kLoop;
        EXPECT_EQ(table.open_on_thread(thread, k), k == r1 ? 1u : 2u);
    }
    EXPECT_EQ(link_last_io_on_thread(table, thread), r2);
    table.set_last_activity(thread, r1);
    EXPECT_EQ(link_last_io_on_thread(table, thread), r1);
    EXPECT_EQ(link_latest_on_thread(table, thread, 300), r2);
    EXPECT_EQ(link_latest_on_thread(table, thread, 150), r1) << "started before the call";
    EXPECT_FALSE(link_latest_on_thread(table, thread, 50));
    table.close_on_thread(r1, *table.server(r1));
    EXPECT_FALSE(link_last_io_on_thread(table, thread)) << "its last I/O is closed";
    EXPECT_EQ(link_latest_on_thread(table, thread, 300), r2);
}

TEST(CorrelateKeys, HexIdsRoundTripAndOnlyLowercaseSixteenDigitsParse) {
    EXPECT_EQ(hex16(0x53995c3f42cd8ad8ULL), "53995c3f42cd8ad8");
    EXPECT_EQ(hex16(0x77), "0000000000000077");
    EXPECT_EQ(parse_hex16("53995c3f42cd8ad8"), 0x53995c3f42cd8ad8ULL);
    EXPECT_FALSE(parse_hex16("53995C3F42CD8AD8")) << "ids are written in lowercase";
    EXPECT_FALSE(parse_hex16("53995c3f42cd8ad"));
    EXPECT_FALSE(parse_hex16("53995c3f42cd8ad8 "));
    EXPECT_FALSE(parse_hex16("g3995c3f42cd8ad8"));
}

TEST(CorrelateKeys, TupleKeysOfTheTwoEndsMirrorEachOther) {
    const events::Endpoint a{2, 50001, {127, 0, 0, 1}};
    const events::Endpoint b{2, 9000, {127, 0, 0, 1}};
    EXPECT_EQ(tuple_of(a, b), tuple_of(a, b));
    EXPECT_FALSE(tuple_of(a, b) == tuple_of(b, a));
    EXPECT_EQ(TupleKeyHash{}(tuple_of(a, b)), TupleKeyHash{}(tuple_of(a, b)));
    const InjectKey k1{tuple_of(a, b), 100, 0};
    const InjectKey k2{tuple_of(a, b), 100, 1};
    EXPECT_FALSE(k1 == k2);
}

TEST(CorrelateKeys, BoundedMapForgetsTheOldestFirst) {
    BoundedMap<uint64_t, int, std::hash<uint64_t>> m(2);
    EXPECT_EQ(m.put(1, 10), 0u);
    EXPECT_EQ(m.put(2, 20), 0u);
    EXPECT_EQ(m.put(2, 21), 0u) << "replacing is not inserting";
    EXPECT_EQ(m.put(3, 30), 1u);
    EXPECT_EQ(m.find(1), nullptr);
    ASSERT_NE(m.find(2), nullptr);
    EXPECT_EQ(*m.find(2), 21);
    EXPECT_EQ(m.size(), 2u);
}

}  // namespace
}  // namespace passport::correlate
