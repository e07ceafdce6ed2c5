#include "userspace/report/summary.hpp"

#include <gtest/gtest.h>

namespace passport::report {
namespace {

std::string dg(const std::string& body) {
    return std::string("{\"format\":\"json\",\"version\":1}\n") + body;
}

TEST(ReportSummary, ServiceTableRatesAndLatency) {
    std::vector<std::string> d = {
        dg(R"({"id":"a1","name":"shop","trace_id":"1-00000001-000000000000000000000001","start_time":10.0,"end_time":10.010})"),
        dg(R"({"id":"a2","name":"shop","trace_id":"1-00000001-000000000000000000000002","start_time":11.0,"end_time":11.030,"error":true,"throttle":true})"),
        dg(R"({"id":"b1","name":"inv","trace_id":"1-00000001-000000000000000000000003","start_time":12.0,"end_time":12.002,"fault":true})"),
        "garbage without newline",
        dg("{not json"),
    };
    size_t rejected = 0;
    auto docs = parse_datagrams(d, &rejected);
    EXPECT_EQ(rejected, 2u);
    auto rows = service_table(docs);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].name, "inv");
    EXPECT_EQ(rows[0].requests, 1u);
    EXPECT_DOUBLE_EQ(rows[0].fault_pct, 100.0);
    EXPECT_EQ(rows[1].name, "shop");
    EXPECT_EQ(rows[1].requests, 2u);
    EXPECT_NEAR(rows[1].avg_latency_ms, 20.0, 1e-6);
    EXPECT_DOUBLE_EQ(rows[1].error_pct, 50.0);
    EXPECT_DOUBLE_EQ(rows[1].throttle_pct, 50.0);
    std::string table = format_service_table(rows);
    EXPECT_NE(table.find("shop"), std::string::npos);
    EXPECT_NE(table.find("50.0%"), std::string::npos);
}

TEST(ReportSummary, WaterfallPicksLargestTraceAndNestsChildren) {
    std::vector<std::string> d = {
        dg(R"({"id":"s1","name":"front","trace_id":"1-00000001-00000000000000000000000a","start_time":1.0,"end_time":1.1,
              "http":{"request":{"method":"GET","url":"http://x/a"},"response":{"status":200}},
              "subsegments":[{"id":"c1","name":"inventory","start_time":1.01,"end_time":1.05,"namespace":"remote"}]})"),
        dg(R"({"id":"s2","name":"inv","trace_id":"1-00000001-00000000000000000000000a","parent_id":"c1","start_time":1.02,"end_time":1.04,"fault":true})"),
        dg(R"({"id":"s3","name":"lonely","trace_id":"1-00000001-00000000000000000000000b","start_time":0.5,"end_time":0.6})"),
    };
    std::string w = format_waterfall(parse_datagrams(d), 20);
    EXPECT_NE(w.find("trace 1-00000001-00000000000000000000000a"), std::string::npos) << w;
    EXPECT_EQ(w.find("lonely"), std::string::npos) << w;
    EXPECT_NE(w.find("\n    inv"), std::string::npos) << "inv sits two levels down: " << w;
    EXPECT_NE(w.find("\n    inventory"), std::string::npos)
        << "the subsegment one level down: " << w;
    EXPECT_NE(w.find("GET http://x/a"), std::string::npos);
    EXPECT_NE(w.find("fault"), std::string::npos);
    EXPECT_EQ(format_waterfall({}), "(no traces)\n");
}

}  // namespace
}  // namespace passport::report
