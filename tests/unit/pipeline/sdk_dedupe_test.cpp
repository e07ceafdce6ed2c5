// No double reporting next to an X-Ray SDK: event streams as the kernel reports them (server
// exchanges, calls, PP_EV_SDK_DATAGRAM, exec/exit) through the whole pipeline, and the gate
// (userspace/pipeline/sdk_gate) on its own for its bounds and late subsegments. The watch that
// turns an unknown process plain is driven by the pipeline's tick and the exchanges' own kernel
// times, so no test here waits.
#include <gtest/gtest.h>

#include "tests/support/event_builder.hpp"
#include "tests/support/temp_dir.hpp"
#include "userspace/pipeline/pipeline.hpp"
#include "userspace/pipeline/sdk_gate.hpp"
#include "userspace/report/summary.hpp"
#include "userspace/sample/rules.hpp"

namespace passport {
namespace {

using testing::EventBuilder;

constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint32_t kSdkTgid = 5100;
constexpr uint32_t kPlainTgid = 5200;

std::string request(const std::string& path, const std::string& trace_header = "") {
    std::string r = "GET " + path + " HTTP/1.1\r\nHost: svc.local\r\n";
    if (!trace_header.empty()) r += "X-Amzn-Trace-Id: " + trace_header + "\r\n";
    return r + "\r\n";
}
constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

class SdkDedupeTest : public ::testing::Test {
  protected:
    void SetUp() override { start({}); }

    void start(pipeline::PipelineConfig cfg) {
        cfg.proc_root = proc_.path().string();
        auto rules = sample::parse_local_rules(
            R"({"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]})");
        ASSERT_TRUE(rules.ok());
        pipeline_ = std::make_unique<pipeline::Pipeline>(
            cfg, std::make_unique<sample::LocalSampler>(std::move(*rules)), sink_, counters_,
            clock_);
    }

    // A server connection of `tgid` (one per process, keep-alive).
    EventBuilder& server(uint32_t tgid) {
        auto it = servers_.find(tgid);
        if (it != servers_.end()) return it->second;
        EventBuilder& b =
            servers_.emplace(tgid, EventBuilder(events::Role::kServer, {tgid, 7, 100}))
                .first->second;
        b.set_tid(tgid);
        b.set_endpoints(testing::ipv4_endpoint(10, 0, 0, 2, 8080),
                        testing::ipv4_endpoint(10, 0, 0, 9, 40000 + tgid % 1000));
        pipeline_->on_event(b.open(t_));
        return b;
    }

    // One request served by `tgid` at the current time; with `call_header` set, the handler
    // makes a call that carries that X-Amzn-Trace-Id (written by the process itself).
    void serve(uint32_t tgid, const std::string& path, const std::string& incoming = "",
               const std::optional<std::string>& call_header = std::nullopt) {
        EventBuilder& s = server(tgid);
        pipeline_->on_event(s.read(request(path, incoming), t_ + 10, t_ + 20));
        if (call_header) {
            EventBuilder c(events::Role::kClient, {tgid, 9, t_});
            c.set_tid(tgid);
            c.set_endpoints(testing::ipv4_endpoint(10, 0, 0, 2, 50000),
                            testing::ipv4_endpoint(10, 0, 0, 3, 80));
            pipeline_->on_event(c.open(t_ + 30));
            pipeline_->on_event(c.write(request("/down", *call_header), t_ + 40, t_ + 50));
            pipeline_->on_event(c.read(kResponse, t_ + 60, t_ + 70));
            pipeline_->on_event(c.close(t_ + 80));
        }
        pipeline_->on_event(s.write(kResponse, t_ + 90, t_ + 100));
        t_ += 1'000'000;  // 1 ms per request
    }

    void datagram(uint32_t tgid) {
        pipeline_->on_event(events::SdkDatagram{tgid, tgid, t_, 7, false});
    }

    // Documents sent so far whose URL path is `path`.
    size_t docs_for(const std::string& path) {
        size_t n = 0;
        for (const auto& d : report::parse_datagrams(sink_.datagrams())) {
            if (d.contains("http") && d["http"]["request"]["url"] == "http://svc.local" + path) n++;
        }
        return n;
    }

    testing::TempDir proc_;
    Counters counters_;
    ClockOffset clock_{1'795'000'000'000'000'000LL};
    report::MemoryEmitter sink_;
    std::unique_ptr<pipeline::Pipeline> pipeline_;
    std::map<uint32_t, EventBuilder> servers_;
    uint64_t t_ = 10 * kSecond;
};

TEST_F(SdkDedupeTest, DatagramAfterTheResponseDropsTheHeldSegment) {
    serve(kSdkTgid, "/first");
    EXPECT_EQ(docs_for("/first"), 0u) << "held while the process is unknown";
    datagram(kSdkTgid);  // the SDK sends its segment just after the response
    serve(kSdkTgid, "/second");
    pipeline_->tick(t_ + 5 * kSecond);
    pipeline_->shutdown();
    EXPECT_EQ(docs_for("/first"), 0u);
    EXPECT_EQ(docs_for("/second"), 0u);
    EXPECT_TRUE(sink_.datagrams().empty());
    EXPECT_EQ(counters_.get("correlate.sdk_processes"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_by_datagram"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_segments_suppressed"), 2u);
}

TEST_F(SdkDedupeTest, PlainProcessIsHeldOnlyForTheWatch) {
    const uint64_t first = t_;
    serve(kPlainTgid, "/a");
    pipeline_->tick(first + kSecond / 4);
    EXPECT_EQ(docs_for("/a"), 0u) << "still watched";
    pipeline_->tick(first + kSecond / 2 + 1'000'000);
    EXPECT_EQ(docs_for("/a"), 1u) << "watched half a second without a signal: plain, sent";
    t_ = first + 2 * kSecond;
    serve(kPlainTgid, "/b");
    EXPECT_EQ(docs_for("/b"), 1u) << "a plain process is no longer held";
    EXPECT_EQ(counters_.get("correlate.sdk_processes"), 0u);
    EXPECT_EQ(counters_.get("correlate.sdk_segments_held"), 1u);
}

TEST_F(SdkDedupeTest, ExchangeTimesEndTheWatchWithoutATick) {
    serve(kPlainTgid, "/a");
    t_ += kSecond;
    serve(kPlainTgid, "/b");
    EXPECT_EQ(docs_for("/a"), 1u) << "released before the later segment, in order";
    EXPECT_EQ(docs_for("/b"), 1u);
}

TEST_F(SdkDedupeTest, OnlyTheSdkProcessLosesItsSegments) {
    serve(kPlainTgid, "/plain");
    serve(kSdkTgid, "/sdk");
    datagram(kSdkTgid);
    pipeline_->tick(t_ + 2 * kSecond);
    EXPECT_EQ(docs_for("/plain"), 1u);
    EXPECT_EQ(docs_for("/sdk"), 0u);
}

TEST_F(SdkDedupeTest, OwnTraceHeaderOnACallMeansAnSdk) {
    const std::string in =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const std::string own =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0123456789abcdef;Sampled=1";
    serve(kSdkTgid, "/with-call", in, own);
    pipeline_->tick(t_ + 2 * kSecond);
    pipeline_->shutdown();
    EXPECT_EQ(docs_for("/with-call"), 0u);
    EXPECT_EQ(counters_.get("correlate.sdk_by_header"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_segments_suppressed"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_subsegments_suppressed"), 1u) << "its call went too";
}

TEST_F(SdkDedupeTest, AProxyForwardingTheHeaderItReceivedIsNoSdk) {
    const std::string in =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    serve(kPlainTgid, "/proxied", in, in);
    pipeline_->tick(t_ + 2 * kSecond);
    EXPECT_EQ(docs_for("/proxied"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_headers_forwarded"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_processes"), 0u);
}

TEST_F(SdkDedupeTest, AHeaderReceivedOnlyByAnotherProcessIsTheCallersOwn) {
    const std::string h =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    serve(kPlainTgid, "/other", h);
    serve(kSdkTgid, "/caller", "", h);
    pipeline_->tick(t_ + 2 * kSecond);
    EXPECT_EQ(docs_for("/other"), 1u);
    EXPECT_EQ(docs_for("/caller"), 0u);
}

TEST_F(SdkDedupeTest, KeepSendsBothAndCounts) {
    pipeline::PipelineConfig cfg;
    cfg.keep_sdk_segments = true;
    start(cfg);
    serve(kSdkTgid, "/first");
    EXPECT_EQ(docs_for("/first"), 1u) << "nothing held with keep";
    datagram(kSdkTgid);
    serve(kSdkTgid, "/second");
    EXPECT_EQ(docs_for("/second"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_processes"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_segments_kept"), 1u);
    EXPECT_EQ(counters_.get("correlate.sdk_segments_suppressed"), 0u);
}

TEST_F(SdkDedupeTest, ExitAndShutdownSendWhatIsHeld) {
    serve(kPlainTgid, "/before-exit");
    serve(kSdkTgid, "/before-stop");
    pipeline_->on_event(server(kPlainTgid).exit(t_));
    EXPECT_EQ(docs_for("/before-exit"), 1u);
    EXPECT_EQ(docs_for("/before-stop"), 0u);
    pipeline_->shutdown();
    EXPECT_EQ(docs_for("/before-stop"), 1u);
}

TEST_F(SdkDedupeTest, ExecForgetsTheSdk) {
    serve(kSdkTgid, "/old");
    datagram(kSdkTgid);
    pipeline_->on_event(events::ProcExec{kSdkTgid, 1, t_, "node", "/usr/bin/node"});
    serve(kSdkTgid, "/new");  // another program now: unknown again, held, then plain
    pipeline_->tick(t_ + 2 * kSecond);
    EXPECT_EQ(docs_for("/old"), 0u);
    EXPECT_EQ(docs_for("/new"), 1u);
}

// The gate alone: bounds and independent subsegments.
struct GateHarness {
    Counters counters;
    correlate::SdkDetector detector{counters};
    std::vector<std::string> sent;  // segment ids, then "sub:<id>" for subsegments
    pipeline::SdkGate gate{
        detector,
        true,
        counters,
        [this](xray::Segment&& s) { sent.push_back(s.id); },
        [this](xray::Subsegment&& sub, const std::string&, const std::string& parent) {
            sent.push_back("sub:" + sub.id + "@" + parent);
        },
        /*max_held=*/2};

    static xray::Segment segment(const std::string& id) {
        xray::Segment s;
        s.id = id;
        return s;
    }
    static xray::Subsegment sub(const std::string& id) {
        xray::Subsegment s;
        s.id = id;
        return s;
    }
};

TEST(SdkGate, PastItsBoundTheOldestHeldSegmentIsSent) {
    GateHarness h;
    h.gate.server_segment(1, 10, GateHarness::segment("a"));
    h.gate.server_segment(1, 11, GateHarness::segment("b"));
    EXPECT_TRUE(h.sent.empty());
    h.gate.server_segment(1, 12, GateHarness::segment("c"));
    EXPECT_EQ(h.sent, std::vector<std::string>{"a"});
    EXPECT_EQ(h.gate.held(), 2u);
    EXPECT_EQ(h.counters.get("correlate.sdk_hold_overflow"), 1u);
}

TEST(SdkGate, LateSubsegmentsFollowTheirSegment) {
    GateHarness h;
    h.gate.server_segment(1, 10, GateHarness::segment("held"));
    h.gate.server_segment(2, 10, GateHarness::segment("dropped"));
    h.gate.subsegment(GateHarness::sub("s1"), "trace", "held");
    h.gate.subsegment(GateHarness::sub("s2"), "trace", "dropped");
    h.gate.subsegment(GateHarness::sub("s3"), "trace", "elsewhere");
    EXPECT_EQ(h.sent, std::vector<std::string>{"sub:s3@elsewhere"});
    ASSERT_TRUE(h.detector.on_datagram(events::SdkDatagram{2, 2, 20, 7, false}));
    h.gate.on_sdk(2);
    h.gate.subsegment(GateHarness::sub("s4"), "trace", "dropped");  // after the drop
    h.gate.tick(10 + 2 * kSecond);
    EXPECT_EQ(h.sent, (std::vector<std::string>{"sub:s3@elsewhere", "held", "sub:s1@held"}));
    EXPECT_EQ(h.counters.get("correlate.sdk_subsegments_suppressed"), 2u);
}

TEST(SdkDetector, BoundedTable) {
    Counters counters;
    correlate::SdkDetector d(counters, {.watch_ns = kSecond, .max_processes = 2});
    EXPECT_EQ(d.on_server_exchange(1, 10), correlate::SdkDetector::State::kUnknown);
    EXPECT_EQ(d.on_server_exchange(2, 10), correlate::SdkDetector::State::kUnknown);
    EXPECT_EQ(d.on_server_exchange(3, 10), correlate::SdkDetector::State::kPlain)
        << "not watched: never held";
    EXPECT_EQ(counters.get("correlate.sdk_detector_full"), 1u);
    d.forget(1);
    EXPECT_EQ(d.on_server_exchange(3, 10), correlate::SdkDetector::State::kUnknown);
}

}  // namespace
}  // namespace passport
