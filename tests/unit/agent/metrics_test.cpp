// The metrics endpoint's parts without a kernel: the exit-counter to series mapping, the
// snapshot families, per-service statistics, the exporter health window, --metrics-address
// parsing, and the HTTP server itself on loopback (answered to curl).
#include <sstream>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "agent/config.hpp"
#include "agent/metrics/agent_metrics.hpp"
#include "agent/metrics/exporter_health.hpp"
#include "agent/metrics/metrics_server.hpp"
#include "agent/metrics/service_stats.hpp"
#include "tests/support/http_client.hpp"

namespace passport::agent::metrics {
namespace {

using prometheus::MetricType;

const CounterNames kNames({"ringbuf_full", "iov_limit"});

TEST(CounterNames, DropReasonsInjectionAndDecodeRejectsBecomeLabels) {
    const auto drop = kNames.series("kernel.ringbuf_full");
    EXPECT_EQ(drop.family, "passport_kernel_drops_total");
    EXPECT_EQ(drop.label, "reason");
    EXPECT_EQ(drop.label_value, "ringbuf_full");
    const auto inj = kNames.series("inject.left_blocking");
    EXPECT_EQ(inj.family, "passport_injection_events_total");
    EXPECT_EQ(inj.label, "event");
    EXPECT_EQ(inj.label_value, "left_blocking");
    const auto rej = kNames.series("decode.rejected.short_record");
    EXPECT_EQ(rej.family, "passport_decode_rejected_total");
    EXPECT_EQ(rej.label_value, "short_record");
}

TEST(CounterNames, OtherCountersKeepTheirNameWithTotal) {
    EXPECT_EQ(kNames.series("kernel.ctx_minted").family, "passport_kernel_ctx_minted_total");
    EXPECT_EQ(kNames.series("export.documents_sent").family,
              "passport_export_documents_sent_total");
    EXPECT_EQ(kNames.series("http.Bad-Thing").family, "passport_http_bad_thing_total");
    EXPECT_TRUE(kNames.series("correlate.inject_matched").label.empty());
}

TEST(CounterNames, LevelsAreGaugesWithoutTotal) {
    const auto peak = kNames.series("stream.budget_peak_bytes");
    EXPECT_EQ(peak.family, "passport_stream_budget_peak_bytes");
    EXPECT_EQ(peak.type, MetricType::Gauge);
    EXPECT_EQ(kNames.series("select.processes").family, "passport_select_processes_total");
}

xray::Segment segment(std::string name, double seconds, int status) {
    xray::Segment s;
    s.name = std::move(name);
    s.start_time = 1000;
    s.end_time = 1000 + seconds;
    s.error = status >= 400 && status < 500;
    s.throttle = status == 429;
    s.fault = status >= 500;
    return s;
}

std::string serialise(const std::vector<prometheus::MetricFamily>& families) {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, families);
    return out.str();
}

TEST(ServiceStats, CountsErrorsFaultsAndLatencyBuckets) {
    ServiceStats stats;
    stats.on_segment(segment("shop", 0.002, 200));
    stats.on_segment(segment("shop", 0.3, 404));
    stats.on_segment(segment("shop", 20, 503));
    xray::Segment open = segment("shop", 0, 0);
    open.in_progress = true;
    stats.on_segment(open);
    const ServiceCounts& c = stats.services().at("shop");
    EXPECT_EQ(c.requests, 4u);
    EXPECT_EQ(c.errors, 1u);
    EXPECT_EQ(c.faults, 1u);
    EXPECT_EQ(c.latency_count, 3u);   // the open one has no latency
    EXPECT_EQ(c.buckets[1], 1u);      // 2 ms <= 2.5 ms
    EXPECT_EQ(c.buckets[8], 1u);      // 300 ms <= 500 ms
    EXPECT_EQ(c.buckets.back(), 1u);  // 20 s: +Inf only
}

TEST(ServiceStats, NamesBeyondTheLimitAreCountedAsOther) {
    ServiceStats stats;
    for (size_t i = 0; i < kMaxServices + 10; i++)
        stats.on_segment(segment("svc" + std::to_string(i), 0.01, 200));
    EXPECT_EQ(stats.services().size(), kMaxServices + 1);
    EXPECT_EQ(stats.services().at(kOtherService).requests, 10u);
}

TEST(BuildFamilies, TextHasEverySeriesWithCumulativeBuckets) {
    Counters counters;
    counters.add("export.documents_sent", 5);
    counters.set("kernel.ringbuf_full", 2);
    counters.set("kernel.iov_limit", 0);
    ServiceStats stats;
    stats.on_segment(segment("a\"b", 0.004, 200));
    stats.on_segment(segment("a\"b", 0.02, 500));
    SnapshotInput in;
    in.counters = &counters;
    in.names = &kNames;
    in.services = &stats;
    in.ring = {true, 4096, 1 << 20};
    in.process = {true, 1 << 24, 1.5};
    in.version = "1.2.3";
    in.abi_version = 3;
    in.features = {{"btf", true}, {"kprobes", false}};
    const std::string text = serialise(build_families(in));
    for (const char* line : {
             "passport_export_documents_sent_total 5",
             R"(passport_kernel_drops_total{reason="iov_limit"} 0)",
             R"(passport_kernel_drops_total{reason="ringbuf_full"} 2)",
             R"(passport_service_requests_total{service="a\"b"} 2)",
             R"(passport_service_faults_total{service="a\"b"} 1)",
             R"(passport_service_request_duration_seconds_bucket{service="a\"b",le="0.005"} 1)",
             R"(passport_service_request_duration_seconds_bucket{service="a\"b",le="0.025"} 2)",
             R"(passport_service_request_duration_seconds_bucket{service="a\"b",le="+Inf"} 2)",
             "passport_ringbuf_used_bytes 4096",
             "passport_ringbuf_size_bytes 1048576",
             "process_resident_memory_bytes 16777216",
             "process_cpu_seconds_total 1.5",
             R"(passport_build_info{abi="3",version="1.2.3"} 1)",
             R"(passport_kernel_feature{feature="btf"} 1)",
             R"(passport_kernel_feature{feature="kprobes"} 0)",
             "# TYPE passport_kernel_drops_total counter",
             "# TYPE passport_service_request_duration_seconds histogram",
         })
        EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

TEST(ProcessUsage, ReadsThisProcess) {
    const ProcessUsage u = read_process_usage();
    ASSERT_TRUE(u.known);
    EXPECT_GT(u.resident_bytes, 0u);
}

TEST(ExporterHealth, FailuresInTheLastTenSecondsMakeItUnhealthy) {
    using namespace std::chrono_literals;
    ExporterHealth h("udp 127.0.0.1:2000");
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    Counters c;
    h.sample(t0, c);
    c.add("export.documents_sent", 3);
    h.sample(t0 + 1s, c);
    EXPECT_EQ(h.problem(), "");
    c.add("export.udp_send_failed", 37);
    c.add("export.udp_refused", 37);
    h.sample(t0 + 2s, c);
    EXPECT_EQ(h.problem(),
              "exporter: 37 sends failed in the last 10 s: connection refused (nothing listens "
              "there) to udp 127.0.0.1:2000");
    for (int s = 3; s <= 11; s++) h.sample(t0 + std::chrono::seconds(s), c);
    EXPECT_NE(h.problem(), "");  // the failures are still within 10 s of the baseline
    h.sample(t0 + 12s, c);
    EXPECT_EQ(h.problem(), "");  // 10 s without a failure
    c.add("export.file_write_failed");
    h.sample(t0 + 13s, c);
    EXPECT_EQ(h.problem(), "exporter: 1 --output writes failed in the last 10 s");
}

TEST(MetricsAddress, DefaultOffAndBadValues) {
    auto d = parse_args({}, nullptr);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->metrics_address, "127.0.0.1:9472");
    EXPECT_FALSE(d->metrics_address_explicit);
    auto off = parse_args({"--metrics-address", "off"}, nullptr);
    ASSERT_TRUE(off);
    EXPECT_EQ(off->metrics_address, "");
    auto any = parse_args({"--metrics-address=0.0.0.0:9472"}, nullptr);
    ASSERT_TRUE(any);
    EXPECT_EQ(any->metrics_address, "0.0.0.0:9472");
    EXPECT_TRUE(any->metrics_address_explicit);
    EXPECT_TRUE(parse_args({"--metrics-address", "[::1]:9472"}, nullptr));
    for (const char* bad :
         {"9472", "localhost:9472", "127.0.0.1:", "127.0.0.1:65536", "::1:9472", "127.0.0.1:x"}) {
        auto r = parse_args({"--metrics-address", bad}, nullptr);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().find("--metrics-address"), std::string::npos) << r.error();
    }
}

class ServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto s = MetricsServer::start("127.0.0.1:0", state_);
        ASSERT_TRUE(s) << s.error();
        server_ = std::move(*s);
    }
    testing::HttpResponse get(const std::string& path, const std::string& method = "GET") {
        testing::HttpRequest r;
        r.method = method;
        r.url = server_->base_url() + path;
        return testing::http_request(r);
    }
    MetricsState state_;
    std::unique_ptr<MetricsServer> server_;
};

TEST_F(ServerTest, HealthAndReadinessFollowTheState) {
    auto h = get("/healthz");
    EXPECT_EQ(h.status, 503);
    EXPECT_EQ(h.body, "probes not attached yet\n");
    EXPECT_EQ(get("/readyz").status, 503);
    state_.set_probes_attached();
    EXPECT_EQ(get("/healthz").status, 200);
    state_.publish({}, "exporter: 2 sends failed in the last 10 s: x to y");
    h = get("/healthz");
    EXPECT_EQ(h.status, 503);
    EXPECT_EQ(h.body, "exporter: 2 sends failed in the last 10 s: x to y\n");
    state_.set_ready(true, {});
    EXPECT_EQ(get("/readyz").status, 200);
    state_.set_ready(false, "stopping");
    auto r = get("/readyz");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, "stopping\n");
}

TEST_F(ServerTest, MetricsServeThePublishedSnapshotAndRefuseOtherMethods) {
    prometheus::MetricFamily f{"passport_x_total", "x", MetricType::Counter, {}};
    f.metric.emplace_back();
    f.metric.back().counter.value = 42;
    state_.publish({f}, "");
    auto m = get("/metrics");
    EXPECT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("passport_x_total 42"), std::string::npos) << m.body;
    EXPECT_EQ(get("/metrics", "POST").status, 405);
    EXPECT_EQ(get("/nothing").status, 404);
}

TEST(MetricsServer, AnAddressInUseIsAnError) {
    MetricsState state;
    auto first = MetricsServer::start("127.0.0.1:0", state);
    ASSERT_TRUE(first) << first.error();
    const std::string taken = (*first)->base_url().substr(7);  // after "http://"
    auto second = MetricsServer::start(taken, state);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().find("cannot listen on " + taken + ": Address already in use"),
              std::string::npos)
        << second.error();
}

}  // namespace
}  // namespace passport::agent::metrics
