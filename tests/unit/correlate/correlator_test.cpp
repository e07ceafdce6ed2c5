// Correlator: server exchanges -> segments, field by field, with fixed clock and ids.
#include "userspace/correlate/correlator.hpp"
#include "userspace/xray/document.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>
#include <tuple>

#include "userspace/xray/trace_header.hpp"

namespace passport::correlate {
namespace {

using pairing::HttpExchange;
using pairing::Outcome;

constexpr int64_t kOffset = 1'700'000'000'000'000'000LL;  // epoch = monotonic + 1.7e18 ns

struct CorrelatorTest : ::testing::Test {
    std::vector<std::tuple<xray::Subsegment, std::string, std::string>> late;
    Counters counters;
    ProcessInfoCache procs{"/nonexistent-proc"};
    uint64_t next = 0x1111;
    xray::IdGenerator ids{[this] { return next++; }};
    ClockOffset clock{kOffset};
    bool sample_result = true;
    int sampler_calls = 0;
    std::vector<xray::Segment> out;
    Correlator corr{CorrelatorConfig{"svc", "host-1"},
                    procs,
                    ids,
                    clock,
                    [this](const SamplingInput& in, std::string* rule) {
                        sampler_calls++;
                        last_input = in;
                        *rule = "rule-a";
                        return sample_result;
                    },
                    counters,
                    [this](xray::Segment&& s) { out.push_back(std::move(s)); },
                    [this](xray::Subsegment&& sub, const std::string& t, const std::string& p) {
                        late.emplace_back(std::move(sub), t, p);
                    }};
    SamplingInput last_input;

    static HttpExchange exchange(const std::string& method, const std::string& target, int status,
                                 protocol::http1::Headers headers = {{"Host", "shop.local:8080"}}) {
        HttpExchange ex;
        ex.role = events::Role::kServer;
        ex.tgid = 4242;
        ex.request_tid = 4243;
        ex.local = {2, 8080, {127, 0, 0, 1}};
        ex.remote = {2, 50000, {127, 0, 0, 9}};
        ex.request.method = method;
        ex.request.target = target;
        ex.request.version = "HTTP/1.1";
        ex.request.headers = std::move(headers);
        protocol::http1::Response resp;
        resp.status = status;
        resp.content_length = 12;
        ex.response = resp;
        ex.request_start_ns = 5'000'000'000;
        ex.request_end_ns = 5'000'100'000;
        ex.response_start_ns = 5'002'000'000;
        ex.response_end_ns = 5'002'500'000;
        return ex;
    }
};

TEST_F(CorrelatorTest, NewTraceSegmentFields) {
    corr.on_exchange(exchange("GET", "/items?id=3", 200,
                              {{"Host", "shop.local:8080"}, {"User-Agent", "curl/8"}}));
    ASSERT_EQ(out.size(), 1u);
    const auto& s = out[0];
    EXPECT_EQ(s.name, "svc");
    EXPECT_TRUE(std::regex_match(s.id, std::regex("[0-9a-f]{16}")));
    // Trace id epoch = start time's epoch seconds: (5e9 + 1.7e18) ns -> 1700000005 s.
    EXPECT_TRUE(std::regex_match(s.trace_id, std::regex("1-6553f105-[0-9a-f]{24}"))) << s.trace_id;
    EXPECT_TRUE(s.parent_id.empty());
    EXPECT_DOUBLE_EQ(s.start_time, 1700000005.0);
    EXPECT_DOUBLE_EQ(s.end_time, 1700000005.0025);
    ASSERT_TRUE(s.http && s.http->request && s.http->response);
    EXPECT_EQ(s.http->request->method, "GET");
    EXPECT_EQ(s.http->request->url, "http://shop.local:8080/items?id=3");
    EXPECT_EQ(s.http->request->user_agent, "curl/8");
    EXPECT_EQ(s.http->request->client_ip, "127.0.0.9");
    EXPECT_FALSE(s.http->request->x_forwarded_for);
    EXPECT_EQ(s.http->response->status, 200);
    EXPECT_EQ(s.http->response->content_length, 12u);
    EXPECT_FALSE(s.error || s.fault || s.throttle);
    // metadata.passport comes serialised (Segment::passport_metadata).
    const auto passport_md = nlohmann::json::parse(s.passport_metadata);
    EXPECT_EQ(passport_md["process"]["pid"], 4242);
    EXPECT_EQ(passport_md["process"]["tid"], 4243);
    EXPECT_EQ(passport_md["host"], "host-1");
    EXPECT_EQ(s.aws["xray"]["rule_name"], "rule-a");
    EXPECT_EQ(sampler_calls, 1);
    EXPECT_EQ(last_input.host, "shop.local");
    EXPECT_EQ(last_input.path, "/items");
    EXPECT_EQ(last_input.method, "GET");
    EXPECT_EQ(last_input.service_name, "svc");
}

TEST_F(CorrelatorTest, ContinuesIncomingTraceAndHonoursUpstreamDecision) {
    corr.on_exchange(
        exchange("POST", "/pay", 201,
                 {{"host", "a"},
                  {"x-amzn-trace-id",
                   "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(out[0].parent_id, "53995c3f42cd8ad8");
    EXPECT_EQ(sampler_calls, 0) << "upstream Sampled=1 wins over the rules";
    corr.on_exchange(
        exchange("GET", "/", 200,
                 {{"X-Amzn-Trace-Id",
                   "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"}}));
    EXPECT_EQ(out.size(), 1u) << "Sampled=0 yields no document";
    EXPECT_EQ(counters.get("correlate.not_sampled_upstream"), 1u);
}

TEST_F(CorrelatorTest, W3CTraceparentWhenNoXRayHeader) {
    corr.on_exchange(
        exchange("GET", "/", 200,
                 {{"traceparent", "00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01"}}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].trace_id, "1-8a3c60f7-d188f8fa79d48a391a778fa6");
    EXPECT_EQ(out[0].parent_id, "53995c3f42cd8ad8");
}

TEST_F(CorrelatorTest, HostileHeaderStartsNewTrace) {
    corr.on_exchange(exchange("GET", "/", 200,
                              {{"X-Amzn-Trace-Id", "Root=1-\"},{\"x\":1-;Parent=zz\n;Sampled=1"}}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(std::regex_match(out[0].trace_id, std::regex("1-[0-9a-f]{8}-[0-9a-f]{24}")));
    EXPECT_TRUE(out[0].parent_id.empty());
    EXPECT_EQ(counters.get("correlate.trace_header_unusable"), 1u);
}

TEST_F(CorrelatorTest, StatusFlags) {
    for (int status : {404, 429, 500, 503}) corr.on_exchange(exchange("GET", "/", status));
    ASSERT_EQ(out.size(), 4u);
    EXPECT_TRUE(out[0].error && !out[0].throttle && !out[0].fault);
    EXPECT_TRUE(out[1].error && out[1].throttle && !out[1].fault);
    EXPECT_TRUE(!out[2].error && out[2].fault);
    EXPECT_TRUE(out[3].fault);
}

TEST_F(CorrelatorTest, XForwardedForGivesClientIp) {
    corr.on_exchange(exchange("GET", "/", 200, {{"X-Forwarded-For", " 203.0.113.7, 10.0.0.1"}}));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].http->request->client_ip, "203.0.113.7");
    EXPECT_TRUE(out[0].http->request->x_forwarded_for);
    EXPECT_EQ(out[0].http->request->url, "http://127.0.0.1:8080/") << "no Host: the local address";
}

TEST_F(CorrelatorTest, IncompleteExchangesAreFaultsWithCause) {
    auto ex = exchange("GET", "/slow", 200);
    ex.response.reset();
    ex.response_end_ns = 0;
    ex.outcome = Outcome::kConnectionClosed;
    corr.on_exchange(std::move(ex));
    auto ex2 = exchange("GET", "/slow", 200);
    ex2.response.reset();
    ex2.outcome = Outcome::kProcessExited;
    corr.on_exchange(std::move(ex2));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(out[0].fault);
    ASSERT_TRUE(out[0].cause);
    EXPECT_EQ(out[0].cause->exceptions.at(0).type, "ConnectionClosed");
    EXPECT_FALSE(out[0].http->response.has_value());
    EXPECT_GE(out[0].end_time, out[0].start_time);
    EXPECT_EQ(out[1].cause->exceptions.at(0).type, "ProcessExited");
    auto ex3 = exchange("GET", "/hang", 200);
    ex3.response.reset();
    ex3.outcome = Outcome::kTimedOut;
    corr.on_exchange(std::move(ex3));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_TRUE(out[2].fault);
    EXPECT_FALSE(out[2].in_progress) << "a request given up on must not stay pending forever";
    EXPECT_EQ(out[2].cause->exceptions.at(0).type, "TimedOut");
}

TEST_F(CorrelatorTest, ShutdownLeavesSegmentInProgress) {
    auto ex = exchange("GET", "/long-poll", 200);
    ex.response.reset();
    ex.outcome = Outcome::kShutdown;
    corr.on_exchange(std::move(ex));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].in_progress);
    EXPECT_FALSE(out[0].fault);
}

TEST_F(CorrelatorTest, RulesSayNo) {
    sample_result = false;
    corr.on_exchange(exchange("GET", "/", 200));
    auto c = exchange("GET", "/", 200);
    c.role = events::Role::kClient;
    corr.on_exchange(std::move(c));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(counters.get("correlate.not_sampled_rules"), 2u);
}

TEST_F(CorrelatorTest, ProcessNameFromProc) {
    ProcessInfoCache real("/proc");
    Correlator c2(CorrelatorConfig{}, real, ids, clock, nullptr, counters,
                  [this](xray::Segment&& s) { out.push_back(std::move(s)); });
    auto ex = exchange("GET", "/", 200);
    ex.tgid = static_cast<uint32_t>(::getpid());
    c2.on_exchange(std::move(ex));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].name, "passport_unit_tests");
}

// A provider that knows one process as a pod on EC2, with its ECS lookup still running.
struct PodOnEc2 : IdentityProvider {
    int calls = 0;
    std::vector<uint32_t> forgotten;
    std::shared_ptr<const identity::ProcessIdentity> cached(uint32_t) override { return nullptr; }
    std::shared_ptr<const identity::ProcessIdentity> identity(uint32_t,
                                                              const ProcessInfo*) override {
        ++calls;
        identity::Ec2Identity ec2{"i-0abc", "us-east-1a",   "m5.large",
                                  "ami-1",  "123456789012", "us-east-1"};
        identity::PodIdentity pod;
        pod.pod = "cart-1";
        pod.namespace_name = "shop";
        pod.cluster_name = "prod";
        auto id =
            identity::compose_identity({&ec2, nullptr, &pod}, {"cart", "kubernetes.workload"});
        id.missing = {"identity.missing.ecs_pending"};
        return std::make_shared<const identity::ProcessIdentity>(std::move(id));
    }
    void forget(uint32_t tgid) override { forgotten.push_back(tgid); }
};

TEST_F(CorrelatorTest, IdentityFromTheProviderInEverySegment) {
    PodOnEc2 provider;
    CorrelatorConfig cfg{"svc", "host-1"};
    cfg.identity = &provider;
    Correlator c2(cfg, procs, ids, clock, nullptr, counters,
                  [this](xray::Segment&& s) { out.push_back(std::move(s)); });
    c2.on_exchange(exchange("GET", "/", 200));
    ASSERT_EQ(out.size(), 1u);
    const auto& s = out[0];
    EXPECT_EQ(s.name, "cart");
    EXPECT_EQ(s.origin, "AWS::EKS::Container");
    const auto doc = nlohmann::json::parse(xray::to_json(s));
    EXPECT_EQ(doc["aws"]["ec2"]["instance_id"], "i-0abc");
    EXPECT_EQ(doc["aws"]["eks"]["cluster_name"], "prod");
    EXPECT_EQ(doc["aws"]["account_id"], "123456789012");
    EXPECT_EQ(doc["aws"]["xray"]["sdk"], "Passport") << "aws.xray kept beside the identity";
    EXPECT_EQ(doc["metadata"]["passport"]["name_rule"], "kubernetes.workload");
    EXPECT_EQ(doc["metadata"]["passport"]["kubernetes"]["namespace"], "shop");
    EXPECT_EQ(doc["metadata"]["passport"]["process"]["pid"], 4242) << "process facts kept";
    EXPECT_EQ(counters.get("identity.missing.ecs_pending"), 1u);
    c2.forget_process(4242);
    EXPECT_EQ(provider.forgotten, std::vector<uint32_t>{4242});
}

// --- outgoing calls and same-node stitching -------------------------------------------------

pairing::HttpRequestSeen seen_of(const HttpExchange& ex) {
    pairing::HttpRequestSeen s;
    s.conn = ex.conn;
    s.role = ex.role;
    s.local = ex.local;
    s.remote = ex.remote;
    s.tgid = ex.tgid;
    s.tid = ex.request_tid;
    s.request_start_ns = ex.request_start_ns;
    s.request = &ex.request;
    s.request_pos = ex.request_pos;
    return s;
}

// A call from (tgid, tid) to 127.0.0.1:9000 from local port `port`, inside [start, end].
HttpExchange call(uint32_t tgid, uint32_t tid, uint16_t port, uint64_t start, uint64_t end,
                  int status = 200, const std::string& host = "inventory:9000") {
    HttpExchange ex;
    ex.role = events::Role::kClient;
    ex.conn = {tgid, 30 + port % 7, 9000u + port};
    ex.tgid = tgid;
    ex.request_tid = tid;
    ex.local = {2, port, {127, 0, 0, 1}};
    ex.remote = {2, 9000, {127, 0, 0, 1}};
    ex.request.method = "GET";
    ex.request.target = "/stock/apple?x=1";
    ex.request.headers = {{"Host", host}};
    protocol::http1::Response r;
    r.status = status;
    ex.response = r;
    ex.request_start_ns = start;
    ex.request_end_ns = start + 1000;
    ex.response_start_ns = end - 1000;
    ex.response_end_ns = end;
    return ex;
}

TEST_F(CorrelatorTest, CallsOnTheServingThreadBecomeSubsegments) {
    auto server = exchange("GET", "/buy", 200);  // tgid 4242 tid 4243, 5.000 s .. 5.0025 s
    corr.on_request_seen(seen_of(server));
    auto c1 = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    auto c2 = call(4242, 4243, 50002, 5'001'100'000, 5'001'500'000, 503, "db.local");
    auto other_thread = call(4242, 9999, 50003, 5'000'600'000, 5'000'700'000);
    for (auto* c : {&c1, &c2, &other_thread}) corr.on_request_seen(seen_of(*c));
    corr.on_exchange(std::move(c1));
    corr.on_exchange(std::move(c2));
    corr.on_exchange(std::move(other_thread));
    ASSERT_EQ(out.size(), 1u) << "the other thread's call is its own segment, sent at once";
    EXPECT_EQ(out[0].subsegments.size(), 1u);
    EXPECT_EQ(out[0].subsegments[0].name, "inventory");
    corr.on_exchange(std::move(server));
    ASSERT_EQ(out.size(), 2u);
    const auto& seg = out[1];
    ASSERT_EQ(seg.subsegments.size(), 2u);
    const auto& a = seg.subsegments[0];
    EXPECT_EQ(a.name, "inventory");
    EXPECT_EQ(a.namespace_, "remote");
    EXPECT_EQ(a.http->request->method, "GET");
    EXPECT_EQ(a.http->request->url, "http://inventory:9000/stock/apple?x=1");
    EXPECT_FALSE(a.http->request->traced.has_value()) << "no traced callee: X-Ray must not wait";
    EXPECT_EQ(a.http->response->status, 200);
    EXPECT_DOUBLE_EQ(a.start_time, 1700000005.0005);
    EXPECT_DOUBLE_EQ(a.end_time, 1700000005.001);
    EXPECT_EQ(seg.subsegments[1].name, "db.local");
    EXPECT_TRUE(seg.subsegments[1].fault);
    EXPECT_NE(a.id, seg.id);
    EXPECT_EQ(out[0].subsegments[0].id.size(), 16u);
    EXPECT_NE(out[0].trace_id, seg.trace_id) << "a call outside any request starts its own trace";
}

TEST_F(CorrelatorTest, SameNodeCalleeIsStitchedUnderTheCallersSubsegment) {
    // A (tgid 4242) serves /buy and calls B (tgid 777) on 127.0.0.1:9000 from port 50001.
    auto a =
        exchange("GET", "/buy", 200,
                 {{"X-Amzn-Trace-Id",
                   "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}});
    corr.on_request_seen(seen_of(a));
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    HttpExchange b = exchange("GET", "/stock/apple", 200, {{"Host", "inventory:9000"}});
    b.tgid = 777;
    b.request_tid = 778;
    b.conn = {777, 5, 1};
    b.local = {2, 9000, {127, 0, 0, 1}};
    b.remote = {2, 50001, {127, 0, 0, 1}};
    b.request_start_ns = 5'000'600'000;
    b.response_end_ns = 5'000'900'000;
    // B's read may be reported before A's write: the link must not depend on that order.
    corr.on_request_seen(seen_of(b));
    corr.on_request_seen(seen_of(c));
    corr.on_exchange(std::move(b));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(a));
    ASSERT_EQ(out.size(), 2u);
    const auto& seg_b = out[0];
    const auto& seg_a = out[1];
    ASSERT_EQ(seg_a.subsegments.size(), 1u);
    EXPECT_EQ(seg_a.trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(seg_b.trace_id, seg_a.trace_id);
    EXPECT_EQ(seg_b.parent_id, seg_a.subsegments[0].id);
    EXPECT_EQ(seg_a.subsegments[0].http->request->traced, true);
    EXPECT_EQ(counters.get("correlate.stitched_same_node"), 1u);
}

TEST_F(CorrelatorTest, OwnTraceHeaderWinsOverStitching) {
    auto a = exchange("GET", "/buy", 200);
    corr.on_request_seen(seen_of(a));
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    corr.on_request_seen(seen_of(c));
    HttpExchange b =
        exchange("GET", "/x", 200,
                 {{"X-Amzn-Trace-Id",
                   "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=1111111111111111;Sampled=1"}});
    b.tgid = 777;
    b.conn = {777, 5, 1};
    b.local = {2, 9000, {127, 0, 0, 1}};
    b.remote = {2, 50001, {127, 0, 0, 1}};
    corr.on_request_seen(seen_of(b));
    corr.on_exchange(std::move(b));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].parent_id, "1111111111111111");
    EXPECT_EQ(counters.get("correlate.stitched_same_node"), 0u);
}

TEST_F(CorrelatorTest, EventLoopCallGoesToLatestOpenRequestAndLateCallIsIndependent) {
    // One thread serves two overlapping requests (an event loop).
    auto r1 = exchange("GET", "/one", 200);
    r1.conn = {4242, 8, 1};
    auto r2 = exchange("GET", "/two", 200);
    r2.conn = {4242, 9, 1};
    r2.request_start_ns = 5'000'200'000;
    corr.on_request_seen(seen_of(r1));
    corr.on_request_seen(seen_of(r2));
    auto c = call(4242, 4243, 50001, 5'000'300'000, 5'000'400'000);
    auto late_call = call(4242, 4243, 50002, 5'000'310'000, 5'009'000'000);
    corr.on_request_seen(seen_of(c));
    corr.on_request_seen(seen_of(late_call));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(r1));
    corr.on_exchange(std::move(r2));
    corr.on_exchange(std::move(late_call));  // finishes after /two was sent
    ASSERT_EQ(out.size(), 2u);
    EXPECT_TRUE(out[0].subsegments.empty()) << "/one";
    EXPECT_EQ(out[1].subsegments.size(), 1u) << "/two started last before the call";
    ASSERT_EQ(late.size(), 1u);
    EXPECT_EQ(std::get<1>(late[0]), out[1].trace_id);
    EXPECT_EQ(std::get<2>(late[0]), out[1].id);
}

TEST_F(CorrelatorTest, EventLoopContinuationFollowsTheAwaitedCall) {
    // /one starts, /two starts, then /one's handler makes a call and, after its response was
    // read, a second call: both belong to /one although /two started later.
    auto r1 = exchange("GET", "/one", 200);
    r1.conn = {4242, 8, 1};
    auto r2 = exchange("GET", "/two", 200);
    r2.conn = {4242, 9, 1};
    r2.request_start_ns = 5'000'200'000;
    corr.on_request_seen(seen_of(r1));
    auto first = call(4242, 4243, 50001, 5'000'100'000, 5'000'300'000);  // before /two arrives
    corr.on_request_seen(seen_of(first));
    corr.on_request_seen(seen_of(r2));
    first.response_tid = 4243;
    corr.on_exchange(std::move(first));  // its response read: the thread continues /one
    auto second = call(4242, 4243, 50002, 5'000'400'000, 5'000'500'000);
    corr.on_request_seen(seen_of(second));
    corr.on_exchange(std::move(second));
    corr.on_exchange(std::move(r1));
    corr.on_exchange(std::move(r2));
    ASSERT_EQ(out.size(), 2u);
    ASSERT_EQ(out[0].subsegments.size(), 2u) << "/one";
    EXPECT_TRUE(out[1].subsegments.empty()) << "/two";
    // The first call came while the thread served one request: known. The second while it served
    // two: inferred. Both say by which rule.
    for (size_t i = 0; i < 2; i++) {
        const auto& link = out[0].subsegments[i].metadata["passport"]["link"];
        EXPECT_EQ(link["inferred"], i == 1) << link.dump();
        EXPECT_EQ(link["rule"], "last_io_on_thread") << link.dump();
    }
    EXPECT_EQ(counters.get("correlate.links_inferred"), 1u);
    EXPECT_EQ(counters.get("correlate.links_exact"), 1u);
}

TEST_F(CorrelatorTest, CallOnAThreadServingOneRequestIsAKnownLink) {
    auto r1 = exchange("GET", "/one", 200);
    r1.conn = {4242, 8, 1};
    corr.on_request_seen(seen_of(r1));
    auto c = call(4242, 4243, 50001, 5'000'100'000, 5'000'300'000);
    corr.on_request_seen(seen_of(c));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(r1));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].subsegments.size(), 1u);
    const auto& link = out[0].subsegments[0].metadata["passport"]["link"];
    EXPECT_EQ(link["inferred"], false) << link.dump();
    EXPECT_EQ(counters.get("correlate.links_exact"), 1u);
    EXPECT_EQ(counters.get("correlate.links_inferred"), 0u);
}

// --- a header forwarded by a traced proxy ----------------------------------------------------

constexpr char kFwdRoot[] = "1-5759e988-bd862e3fe1be46a994272793";
constexpr char kClientParent[] = "53995c3f42cd8ad8";

// A (tgid 4242, a proxy) serves a request that arrived with `incoming` and calls B (tgid 777) on
// 127.0.0.1:9000 from port 50001 with `sent`; B's request carries what the call sent. The
// callee is reported before or after the caller's call. Run `n` uses its own connections and
// times, so that runs in one test do not meet.
struct ProxyRun {
    xray::Segment a;
    xray::Segment b;
    bool ok = false;
};

ProxyRun run_proxy(CorrelatorTest& t, const std::string& incoming, const std::string& sent,
                   bool callee_first, int n) {
    const uint64_t shift = uint64_t(n) * 10'000'000'000;
    const auto port = uint16_t(50001 + n);
    auto a = CorrelatorTest::exchange("GET", "/buy", 200,
                                      {{"Host", "proxy:8080"}, {"X-Amzn-Trace-Id", incoming}});
    a.conn = {4242, 100 + n, 1};
    a.request_start_ns += shift;
    a.request_end_ns += shift;
    a.response_start_ns += shift;
    a.response_end_ns += shift;
    auto c = call(4242, 4243, port, 5'000'500'000 + shift, 5'001'000'000 + shift);
    c.request.headers.emplace_back("X-Amzn-Trace-Id", sent);
    HttpExchange b = CorrelatorTest::exchange(
        "GET", "/stock/apple", 200, {{"Host", "inventory:9000"}, {"X-Amzn-Trace-Id", sent}});
    b.tgid = 777;
    b.request_tid = 778;
    b.conn = {777, 100 + n, 1};
    b.local = {2, 9000, {127, 0, 0, 1}};
    b.remote = {2, port, {127, 0, 0, 1}};
    b.request_start_ns = 5'000'600'000 + shift;
    b.response_end_ns = 5'000'900'000 + shift;
    t.corr.on_request_seen(seen_of(a));
    if (callee_first) {
        t.corr.on_request_seen(seen_of(b));
        t.corr.on_request_seen(seen_of(c));
    } else {
        t.corr.on_request_seen(seen_of(c));
        t.corr.on_request_seen(seen_of(b));
    }
    t.corr.on_exchange(std::move(b));
    t.corr.on_exchange(std::move(c));
    t.corr.on_exchange(std::move(a));
    ProxyRun r;
    if (t.out.size() != 2u) return r;
    r.b = t.out[0];
    r.a = t.out[1];
    r.ok = r.a.subsegments.size() == 1u;
    return r;
}

TEST_F(CorrelatorTest, ForwardedHeaderIsStitchedUnderTheProxysCall) {
    const std::string header =
        std::string("Root=") + kFwdRoot + ";Parent=" + kClientParent + ";Sampled=1";
    for (bool callee_first : {false, true}) {
        SCOPED_TRACE(callee_first ? "callee reported first" : "caller's call reported first");
        out.clear();
        counters = Counters{};
        ProxyRun r = run_proxy(*this, header, header, callee_first, callee_first);
        ASSERT_TRUE(r.ok) << out.size();
        EXPECT_EQ(r.a.trace_id, kFwdRoot);
        EXPECT_EQ(r.a.parent_id, kClientParent) << "the proxy continues the client's trace";
        EXPECT_EQ(r.b.trace_id, kFwdRoot) << "the same Root";
        EXPECT_EQ(r.b.parent_id, r.a.subsegments[0].id)
            << "under the proxy's call, not beside the proxy";
        EXPECT_EQ(r.a.subsegments[0].http->request->traced, true);
        EXPECT_EQ(counters.get("correlate.calls_forwarding_header"), 1u);
        EXPECT_EQ(counters.get("correlate.stitched_forwarded_header"), 1u);
        EXPECT_EQ(sampler_calls, 0) << "Sampled=1 came with the header";
    }
}

TEST_F(CorrelatorTest, ForwardedHeaderKeepsItsSamplingDecision) {
    const std::string header =
        std::string("Root=") + kFwdRoot + ";Parent=" + kClientParent + ";Sampled=0";
    for (bool callee_first : {false, true}) {
        out.clear();
        counters = Counters{};
        run_proxy(*this, header, header, callee_first, callee_first);
        EXPECT_TRUE(out.empty()) << "Sampled=0: neither proxy nor upstream is recorded";
        EXPECT_EQ(counters.get("correlate.stitched_forwarded_header"), 1u);
        EXPECT_EQ(counters.get("correlate.not_sampled_upstream"), 2u);
    }
}

TEST_F(CorrelatorTest, HeaderTheCallersSdkMadeWinsOverStitching) {
    const std::string incoming =
        std::string("Root=") + kFwdRoot + ";Parent=" + kClientParent + ";Sampled=1";
    // The caller's own SDK sends the same trace under a subsegment of its own.
    const std::string sdk = std::string("Root=") + kFwdRoot + ";Parent=2222222222222222;Sampled=1";
    // And a different trace altogether with the client's Parent: not the forwarded header either.
    const std::string other_root =
        "Root=1-5759e988-000000000000000000000001;Parent=53995c3f42cd8ad8;Sampled=1";
    int n = 0;
    for (const std::string& sent : {sdk, other_root}) {
        for (bool callee_first : {false, true}) {
            SCOPED_TRACE(sent + (callee_first ? " callee first" : " call first"));
            out.clear();
            counters = Counters{};
            ProxyRun r = run_proxy(*this, incoming, sent, callee_first, n++);
            ASSERT_TRUE(r.ok) << out.size();
            xray::TraceHeader th = xray::parse_trace_header(sent);
            EXPECT_EQ(r.b.trace_id, th.root);
            EXPECT_EQ(r.b.parent_id, th.parent) << "the app's own SDK wins";
            EXPECT_FALSE(r.a.subsegments[0].http->request->traced.has_value());
            EXPECT_EQ(counters.get("correlate.calls_forwarding_header"), 0u);
            EXPECT_EQ(counters.get("correlate.stitched_same_node"), 0u);
        }
    }
}

}  // namespace
}  // namespace passport::correlate

namespace passport::correlate {
namespace {

events::Inject inject_for(const HttpExchange& c, uint64_t sub, bool from_thread) {
    events::Inject i;
    i.tgid = c.tgid;
    i.tid = c.request_tid;
    i.local = c.local;
    i.remote = c.remote;
    i.app_pos = c.request_pos;
    i.outcome = events::InjectOutcome::kInjected;
    i.subsegment_id = sub;
    i.ctx_from_thread = from_thread;
    i.trace_id = "1-6b06269a-f5fd2e2bf34013558615b650";
    i.segment_id = 0xabcdefULL;
    i.sampled = events::Sampled::kUnknown;
    return i;
}

TEST_F(CorrelatorTest, InjectedCallOutsideARequestIsItsOwnSegmentWithTheWireIds) {
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    c.request_pos = 300;
    corr.on_inject(inject_for(c, 0x53995c3f42cd8ad8ULL, false));
    corr.on_request_seen(seen_of(c));
    corr.on_exchange(std::move(c));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].trace_id, "1-6b06269a-f5fd2e2bf34013558615b650");
    EXPECT_EQ(out[0].id, "0000000000abcdef");
    ASSERT_EQ(out[0].subsegments.size(), 1u);
    EXPECT_EQ(out[0].subsegments[0].id, "53995c3f42cd8ad8");
    EXPECT_FALSE(out[0].subsegments[0].http->request->traced.has_value())
        << "the header went out, but no segment of the callee is known";
    EXPECT_EQ(counters.get("correlate.inject_matched"), 1u);
}

// The kernel sampled the call (its decision is on the wire as Sampled=1/0): the call's own
// segment follows it and names the kernel rule, whatever the userspace sampler would say.
TEST_F(CorrelatorTest, InjectedCallOutsideARequestFollowsTheKernelSamplingDecision) {
    CorrelatorConfig cfg{"svc", "host-1"};
    cfg.kernel_rule_names = {"keep local GETs", "other"};
    Correlator kc{cfg,
                  procs,
                  ids,
                  clock,
                  [](const SamplingInput&, std::string* rule) {
                      *rule = "userspace-rule";
                      return true;  // userspace alone would sample both
                  },
                  counters,
                  [this](xray::Segment&& s) { out.push_back(std::move(s)); },
                  [](xray::Subsegment&&, const std::string&, const std::string&) {}};
    for (events::Sampled sampled : {events::Sampled::kYes, events::Sampled::kNo}) {
        const bool yes = sampled == events::Sampled::kYes;
        const uint64_t at = yes ? 5'000'500'000 : 6'000'500'000;
        auto c = call(4242, 4243, yes ? 50001 : 50002, at, at + 500'000'000);
        c.request_pos = 300;
        auto inj = inject_for(c, 0x53995c3f42cd8ad8ULL + (yes ? 1 : 0), false);
        inj.sampled = sampled;
        inj.rule = events::Rule{0};
        kc.on_inject(inj);
        kc.on_request_seen(seen_of(c));
        kc.on_exchange(std::move(c));
    }
    ASSERT_EQ(out.size(), 1u) << "the call the kernel sampled out is not reported";
    EXPECT_EQ(out[0].aws["xray"]["rule_name"], "keep local GETs");
    EXPECT_EQ(counters.get("correlate.not_sampled_rules"), 1u);
}

TEST_F(CorrelatorTest, InjectionReportForAnotherOffsetDoesNotMatch) {
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    c.request_pos = 300;
    auto other = inject_for(c, 0x1ULL, false);
    other.app_pos = 301;
    corr.on_inject(other);
    corr.on_request_seen(seen_of(c));
    corr.on_exchange(std::move(c));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].subsegments[0].id, "0000000000000001");
    EXPECT_FALSE(out[0].subsegments[0].http->request->traced.has_value());
    EXPECT_EQ(counters.get("correlate.inject_matched"), 0u);
}

TEST_F(CorrelatorTest, InjectedCallGoesUnderTheServerRequestTheKernelNamed) {
    auto server = exchange("GET", "/buy", 200);
    server.conn = {4242, 5, 77};
    server.request_pos = 1000;
    auto seen = seen_of(server);
    seen.request_pos = 1000;
    corr.on_request_seen(seen);
    // Made on another thread (no thread link): only the kernel's context names the request.
    auto c = call(4242, 9999, 50001, 5'000'500'000, 5'001'000'000);
    c.request_pos = 0;
    auto inj = inject_for(c, 0x77ULL, true);
    inj.ctx_conn = server.conn;
    inj.ctx_request_pos = 1000;
    corr.on_inject(inj);
    corr.on_request_seen(seen_of(c));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(server));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].subsegments.size(), 1u);
    EXPECT_EQ(out[0].subsegments[0].id, "0000000000000077");
    EXPECT_FALSE(out[0].subsegments[0].http->request->traced.has_value());
}

// --- what a call subsegment claims (call_truth.hpp) ------------------------------------------

// A callee on this node that is not the mirror of the call (another namespace, a proxy in
// between, an SDK process) arrives with the injected id as Parent: its segment is under the call.
TEST_F(CorrelatorTest, InjectedCallIsTracedWhenARequestServedHereNamesIt) {
    auto server = exchange("GET", "/buy", 200);
    corr.on_request_seen(seen_of(server));
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    corr.on_inject(inject_for(c, 0x77ULL, false));
    corr.on_request_seen(seen_of(c));
    HttpExchange callee =
        exchange("GET", "/stock/apple", 200,
                 {{"X-Amzn-Trace-Id",
                   "Root=1-6b06269a-f5fd2e2bf34013558615b650;Parent=0000000000000077;Sampled=1"}});
    callee.tgid = 777;
    callee.request_tid = 778;
    callee.conn = {777, 5, 1};
    callee.local = {2, 8443, {10, 0, 0, 2}};  // not the call's tuple: no stitching
    callee.remote = {2, 41000, {10, 0, 0, 1}};
    callee.request_start_ns = 5'000'600'000;
    callee.response_end_ns = 5'000'900'000;
    corr.on_request_seen(seen_of(callee));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(callee));
    ASSERT_EQ(out.size(), 2u) << "the call (outside any request) and the callee";
    const auto& call_doc = out[0];
    ASSERT_EQ(call_doc.subsegments.size(), 1u);
    EXPECT_EQ(call_doc.subsegments[0].id, "0000000000000077");
    EXPECT_EQ(call_doc.subsegments[0].http->request->traced, true);
    EXPECT_EQ(out[1].parent_id, "0000000000000077");
    EXPECT_EQ(counters.get("correlate.stitched_same_node"), 0u);
    EXPECT_EQ(counters.get("correlate.calls_traced"), 1u);
}

TEST_F(CorrelatorTest, CallToACalleeNobodyTracesIsNotTraced) {
    auto server = exchange("GET", "/buy", 200);
    corr.on_request_seen(seen_of(server));
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    corr.on_inject(inject_for(c, 0x78ULL, true));
    corr.on_request_seen(seen_of(c));
    // A request served here that names another id changes nothing.
    HttpExchange other =
        exchange("GET", "/", 200,
                 {{"X-Amzn-Trace-Id",
                   "Root=1-6b06269a-f5fd2e2bf34013558615b650;Parent=0000000000000079;Sampled=1"}});
    other.conn = {4242, 6, 2};
    other.request_tid = 4300;
    corr.on_request_seen(seen_of(other));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(server));
    ASSERT_FALSE(out.empty());
    const auto& seg = out.back();
    ASSERT_EQ(seg.subsegments.size(), 1u);
    EXPECT_EQ(seg.subsegments[0].id, "0000000000000078");
    EXPECT_FALSE(seg.subsegments[0].http->request->traced.has_value());
}

TEST_F(CorrelatorTest, HeadResponsesHaveNoContentLengthButZero) {
    auto head = exchange("HEAD", "/items", 200);  // Content-Length: 12, no body
    corr.on_exchange(std::move(head));
    auto gone = exchange("GET", "/items", 304);
    corr.on_exchange(std::move(gone));
    auto server = exchange("GET", "/buy", 200);
    corr.on_request_seen(seen_of(server));
    auto c = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    c.request.method = "HEAD";
    c.response->content_length = 4096;
    corr.on_request_seen(seen_of(c));
    corr.on_exchange(std::move(c));
    corr.on_exchange(std::move(server));
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[0].http->response->content_length, 0u) << "HEAD segment";
    EXPECT_EQ(out[1].http->response->content_length, 0u) << "304 segment";
    ASSERT_EQ(out[2].subsegments.size(), 1u);
    EXPECT_EQ(out[2].subsegments[0].http->response->content_length, 0u) << "HEAD call";
    EXPECT_EQ(out[2].http->response->content_length, 12u) << "the GET keeps its length";
}

TEST_F(CorrelatorTest, CallOnANewConnectionStartsAtConnect) {
    auto server = exchange("GET", "/buy", 200);  // 5.000 s .. 5.0025 s
    corr.on_request_seen(seen_of(server));
    // First request on a connection opened at 5.0004 s, written at 5.0005 s.
    auto first = call(4242, 4243, 50001, 5'000'500'000, 5'001'000'000);
    first.connect_ns = 5'000'400'000;
    first.request_pos = 0;
    // The next request on the same kept-alive connection: from its first write.
    auto second = call(4242, 4243, 50001, 5'001'100'000, 5'001'500'000);
    second.connect_ns = 5'000'400'000;
    second.request_pos = 120;
    // A pooled connection opened before the request arrived: from its first write.
    auto pooled = call(4242, 4243, 50002, 5'001'600'000, 5'001'900'000);
    pooled.connect_ns = 4'000'000'000;
    pooled.request_pos = 0;
    for (auto* c : {&first, &second, &pooled}) corr.on_request_seen(seen_of(*c));
    for (auto* c : {&first, &second, &pooled}) corr.on_exchange(std::move(*c));
    corr.on_exchange(std::move(server));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].subsegments.size(), 3u);
    EXPECT_DOUBLE_EQ(out[0].subsegments[0].start_time, 1700000005.0004);
    EXPECT_DOUBLE_EQ(out[0].subsegments[1].start_time, 1700000005.0011);
    EXPECT_DOUBLE_EQ(out[0].subsegments[2].start_time, 1700000005.0016);
    EXPECT_EQ(counters.get("correlate.calls_from_connect"), 2u);
    EXPECT_EQ(counters.get("correlate.call_start_clamped"), 1u);
}

}  // namespace
}  // namespace passport::correlate

namespace passport::correlate {
namespace {

struct BoundedCorrelator : CorrelatorTest {};

// A call from a distinct client tuple: 127.x.y.z:port -> 127.0.0.1:9000.
HttpExchange call_from(uint32_t n, uint64_t start) {
    HttpExchange ex =
        call(4242, 4243, static_cast<uint16_t>(1024 + n % 60000), start, start + 1000);
    ex.conn = {4242, static_cast<int32_t>(n % 50000), 1'000'000u + n};
    ex.local = {2,
                static_cast<uint16_t>(1024 + n % 60000),
                {127, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                 static_cast<uint8_t>(n)}};
    return ex;
}

TEST_F(BoundedCorrelator, CallTuplesAreForgottenWithTheirCalls) {
    sample_result = false;                // no documents: only the tables matter here
    constexpr uint32_t kCalls = 200'000;  // 24 times the bound
    size_t most_tuples = 0;
    for (uint32_t n = 0; n < kCalls; ++n) {
        HttpExchange ex = call_from(n, 10'000'000'000ULL + n * 10'000ULL);
        corr.on_request_seen(seen_of(ex));
        corr.on_exchange(std::move(ex));
        if (n % 4096 == 0) most_tuples = std::max(most_tuples, corr.table_sizes().calls_by_tuple);
    }
    const auto sizes = corr.table_sizes();
    const size_t bound = CorrelatorConfig{}.max_contexts;
    EXPECT_LE(sizes.calls, bound);
    EXPECT_LE(sizes.calls_by_tuple, bound);
    EXPECT_LE(most_tuples, bound);
    EXPECT_GT(sizes.calls_by_tuple, 0u);  // recent calls are still found by tuple
}

TEST_F(BoundedCorrelator, OpenServerRequestsEvictedUnansweredLeaveNoIndexEntries) {
    for (uint32_t n = 0; n < 50'000; ++n) {
        HttpExchange ex = exchange("GET", "/", 200);
        ex.conn = {4242, 7, 5000u + n};
        ex.request_tid = 10'000 + n;  // a thread each, so per-thread lists cannot share entries
        ex.remote = {2,
                     static_cast<uint16_t>(1024 + n % 60000),
                     {127, 0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)}};
        corr.on_request_seen(seen_of(ex));  // never answered
    }
    const auto sizes = corr.table_sizes();
    const size_t bound = CorrelatorConfig{}.max_contexts;
    EXPECT_LE(sizes.servers, bound);
    EXPECT_LE(sizes.servers_by_tuple, bound);
    EXPECT_LE(sizes.open_threads, bound);
    EXPECT_LE(sizes.thread_activity, bound);
    EXPECT_EQ(counters.get("correlate.contexts_evicted"), 50'000u - bound);
}

TEST_F(BoundedCorrelator, AnOpenRequestKeepsAtMostMaxSubsegmentsAndSendsTheRest) {
    auto server = exchange("GET", "/batch", 200);
    server.response_end_ns = 9'000'000'000;
    corr.on_request_seen(seen_of(server));
    const size_t cap = CorrelatorConfig{}.max_subsegments;
    for (size_t i = 0; i < cap + 5; ++i) {
        auto c = call(4242, 4243, static_cast<uint16_t>(20000 + i), 5'001'000'000 + i * 1000,
                      5'001'000'500 + i * 1000);
        c.conn = {4242, 40, 70'000u + i};
        corr.on_request_seen(seen_of(c));
        corr.on_exchange(std::move(c));
    }
    ASSERT_EQ(late.size(), 5u);
    EXPECT_EQ(counters.get("correlate.subsegments_flushed"), 5u);
    corr.on_exchange(std::move(server));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].subsegments.size(), cap);
    EXPECT_EQ(std::get<1>(late[0]), out[0].trace_id);
    EXPECT_EQ(std::get<2>(late[0]), out[0].id);
}

}  // namespace
}  // namespace passport::correlate
