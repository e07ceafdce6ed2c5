// The correlator's hook: an outgoing AWS call becomes an `aws` subsegment under the request being
// served; other calls stay `remote`.
#include <gtest/gtest.h>

#include "userspace/aws/aws_call.hpp"
#include "userspace/correlate/correlator.hpp"

namespace passport::aws {
namespace {

using pairing::HttpExchange;

constexpr int64_t kOffset = 1'700'000'000'000'000'000LL;

struct AwsSubsegmentTest : ::testing::Test {
    Counters counters;
    correlate::ProcessInfoCache procs{"/nonexistent-proc"};
    uint64_t next = 0x2222;
    xray::IdGenerator ids{[this] { return next++; }};
    ClockOffset clock{kOffset};
    std::vector<xray::Segment> out;
    correlate::Correlator corr{correlate::CorrelatorConfig{"svc", "host-1"},
                               procs,
                               ids,
                               clock,
                               [](const correlate::SamplingInput&, std::string*) { return true; },
                               counters,
                               [this](xray::Segment&& s) { out.push_back(std::move(s)); }};

    static HttpExchange server() {
        HttpExchange ex;
        ex.role = events::Role::kServer;
        ex.conn = {100, 5, 1};
        ex.tgid = 100;
        ex.request_tid = 101;
        ex.local = {2, 8080, {127, 0, 0, 1}};
        ex.remote = {2, 50000, {127, 0, 0, 1}};
        ex.request.method = "GET";
        ex.request.target = "/orders";
        ex.request.headers = {{"Host", "shop:8080"}};
        protocol::http1::Response r;
        r.status = 200;
        ex.response = r;
        ex.request_start_ns = 1'000'000'000;
        ex.request_end_ns = 1'000'001'000;
        ex.response_start_ns = 1'900'000'000;
        ex.response_end_ns = 2'000'000'000;
        return ex;
    }

    static HttpExchange call(uint16_t port, uint64_t start, protocol::http1::Headers headers,
                             std::string body, int status, protocol::http1::Headers resp_headers,
                             std::string resp_body = {}) {
        HttpExchange ex;
        ex.role = events::Role::kClient;
        ex.conn = {100, port, 2};
        ex.tgid = 100;
        ex.request_tid = 101;
        ex.local = {2, port, {127, 0, 0, 1}};
        ex.remote = {2, 4566, {127, 0, 0, 1}};
        ex.request.method = "POST";
        ex.request.target = "/";
        ex.request.headers = std::move(headers);
        ex.request.body_prefix = std::move(body);
        ex.request.body_prefix_kept = true;
        protocol::http1::Response r;
        r.status = status;
        r.headers = std::move(resp_headers);
        r.body_prefix = std::move(resp_body);
        r.content_length = r.body_prefix.size();
        ex.response = r;
        ex.request_start_ns = start;
        ex.request_end_ns = start + 1000;
        ex.response_start_ns = start + 50'000'000;
        ex.response_end_ns = start + 60'000'000;
        return ex;
    }

    static pairing::HttpRequestSeen seen(const HttpExchange& ex) {
        pairing::HttpRequestSeen s;
        s.conn = ex.conn;
        s.role = ex.role;
        s.local = ex.local;
        s.remote = ex.remote;
        s.tgid = ex.tgid;
        s.tid = ex.request_tid;
        s.request_start_ns = ex.request_start_ns;
        s.request = &ex.request;
        return s;
    }
};

TEST_F(AwsSubsegmentTest, AwsCallsBecomeAwsSubsegmentsOthersStayRemote) {
    auto s = server();
    corr.on_request_seen(seen(s));
    const std::string sig =
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=00";
    auto ddb = call(40001, 1'100'000'000,
                    {{"host", "127.0.0.1:4566"},
                     {"x-amz-target", "DynamoDB_20120810.Query"},
                     {"authorization", sig}},
                    R"({"TableName":"orders","KeyConditionExpression":"pk = :p"})", 200,
                    {{"x-amzn-RequestId", "REQ1"}}, R"({"Count":0,"Items":[]})");
    auto throttled = call(
        40002, 1'300'000'000,
        {{"host", "127.0.0.1:4566"},
         {"x-amz-target", "DynamoDB_20120810.PutItem"},
         {"authorization", sig}},
        R"({"TableName":"orders"})", 400, {{"x-amzn-RequestId", "REQ2"}},
        R"({"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"})");
    auto plain = call(40003, 1'500'000'000, {{"host", "inventory:9000"}}, "", 200, {});
    for (auto* c : {&ddb, &throttled, &plain}) corr.on_request_seen(seen(*c));
    corr.on_exchange(std::move(ddb));
    corr.on_exchange(std::move(throttled));
    corr.on_exchange(std::move(plain));
    corr.on_exchange(std::move(s));
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].subsegments.size(), 3u);

    const xray::Subsegment& a = out[0].subsegments[0];
    EXPECT_EQ(a.name, "DynamoDB");
    EXPECT_EQ(a.namespace_, "aws");
    EXPECT_EQ(
        a.aws,
        nlohmann::json::parse(
            R"({"operation":"Query","region":"us-east-1","request_id":"REQ1","retries":0,"table_name":"orders"})"));
    ASSERT_TRUE(a.http);
    EXPECT_FALSE(a.http->request) << "the SDKs write only the response of an AWS call";
    EXPECT_EQ(a.http->response->status, 200);
    EXPECT_FALSE(a.error || a.fault || a.throttle);
    EXPECT_DOUBLE_EQ(a.start_time, 1700000001.1);

    const xray::Subsegment& t = out[0].subsegments[1];
    EXPECT_EQ(t.name, "DynamoDB");
    EXPECT_TRUE(t.throttle);
    EXPECT_TRUE(t.error);
    EXPECT_FALSE(t.fault);
    ASSERT_TRUE(t.cause);
    ASSERT_EQ(t.cause->exceptions.size(), 1u);
    EXPECT_EQ(t.cause->exceptions[0].type, "ProvisionedThroughputExceededException");
    EXPECT_TRUE(t.cause->exceptions[0].remote);

    const xray::Subsegment& p = out[0].subsegments[2];
    EXPECT_EQ(p.name, "inventory");
    EXPECT_EQ(p.namespace_, "remote");
    EXPECT_TRUE(p.aws.is_null());
    EXPECT_EQ(counters.get("aws.calls"), 2u);
}

}  // namespace
}  // namespace passport::aws
