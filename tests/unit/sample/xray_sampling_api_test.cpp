#include "userspace/sample/xray_sampling_api.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace passport::sample {
namespace {

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(PASSPORT_SOURCE_DIR) + "/tests/fixtures/xray_sampling/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(XraySamplingApi, RulesFromTheDocumentedShapeSkippingWhatTheSdksSkip) {
    auto page = parse_sampling_rules(fixture("get_sampling_rules.json"));
    ASSERT_TRUE(page) << page.error();
    ASSERT_EQ(page->rules.size(), 4u);
    EXPECT_EQ(page->skipped.size(), 3u);  // a ResourceARN, Attributes, Version 2
    sort_rules(page->rules);
    EXPECT_EQ(page->rules[0].name, "health");
    EXPECT_EQ(page->rules[1].name, "api-host");  // priority 10, before "orders-post" by name
    EXPECT_EQ(page->rules[2].name, "orders-post");
    EXPECT_EQ(page->rules[3].name, "Default");
    const CentralizedRule& orders = page->rules[2];
    EXPECT_EQ(orders.service_name, "orders");
    EXPECT_EQ(orders.service_type, "AWS::EC2::Instance");
    EXPECT_EQ(orders.http_method, "POST");
    EXPECT_EQ(orders.url_path, "/orders/*");
    EXPECT_DOUBLE_EQ(orders.fixed_rate, 1.0);
    EXPECT_EQ(page->rules[1].reservoir_size, 5u);
    EXPECT_TRUE(page->next_token.empty());
}

TEST(XraySamplingApi, RulesErrorsAreClear) {
    EXPECT_NE(parse_sampling_rules("{").error().find("not JSON"), std::string::npos);
    EXPECT_NE(parse_sampling_rules("[]").error().find("not a JSON object"), std::string::npos);
    EXPECT_NE(parse_sampling_rules("{}").error().find("SamplingRuleRecords"), std::string::npos);
    const std::string huge(kMaxSamplingResponseBytes + 1, ' ');
    EXPECT_NE(parse_sampling_rules(huge).error().find("larger than"), std::string::npos);
}

TEST(XraySamplingApi, RecordsMissingFieldsAreSkippedWithTheReason) {
    auto page = parse_sampling_rules(R"({"SamplingRuleRecords": [
        {"SamplingRule": {"RuleName": "r", "Version": 1, "ResourceARN": "*", "Priority": 1,
                          "FixedRate": 0.5, "ReservoirSize": 1, "ServiceName": "*",
                          "Host": "*", "HTTPMethod": "*", "URLPath": "*"}},
        {"SamplingRule": {"RuleName": "s", "Version": 1, "ResourceARN": "*", "Priority": 1,
                          "FixedRate": 2, "ReservoirSize": 1, "ServiceName": "*",
                          "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*"}},
        3], "NextToken": "page2"})");
    ASSERT_TRUE(page) << page.error();
    EXPECT_TRUE(page->rules.empty());
    ASSERT_EQ(page->skipped.size(), 3u);
    EXPECT_NE(page->skipped[0].find("rule r: ServiceName, ServiceType"), std::string::npos);
    EXPECT_NE(page->skipped[1].find("rule s: FixedRate"), std::string::npos);
    EXPECT_NE(page->skipped[2].find("record 2"), std::string::npos);
    EXPECT_EQ(page->next_token, "page2");
}

TEST(XraySamplingApi, RulesRequestBody) {
    EXPECT_EQ(sampling_rules_request(""), "{}");
    EXPECT_EQ(sampling_rules_request("t1"), R"({"NextToken":"t1"})");
}

TEST(XraySamplingApi, TargetsFromTheDocumentedShape) {
    auto r = parse_sampling_targets(fixture("get_sampling_targets.json"));
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(r->last_rule_modification, 1700000200);
    ASSERT_EQ(r->targets.size(), 2u);
    EXPECT_EQ(r->targets[0].rule_name, "api-host");
    EXPECT_EQ(r->targets[0].target.reservoir_quota, 2u);
    EXPECT_EQ(r->targets[0].target.reservoir_quota_ttl, 1700000600);
    EXPECT_EQ(r->targets[0].target.interval, 10);
    EXPECT_FALSE(r->targets[1].target.reservoir_quota.has_value());
    ASSERT_EQ(r->unprocessed.size(), 1u);
    EXPECT_EQ(r->unprocessed[0], "gone: 400 unknown rule");
}

TEST(XraySamplingApi, TargetsErrors) {
    EXPECT_FALSE(parse_sampling_targets("garbage"));
    EXPECT_FALSE(parse_sampling_targets(R"({"SamplingTargetDocuments": {}})"));
    EXPECT_FALSE(parse_sampling_targets(R"({"SamplingTargetDocuments": [{"FixedRate": 0.1}]})"));
    EXPECT_FALSE(parse_sampling_targets(
        R"({"SamplingTargetDocuments": [{"RuleName": "a", "FixedRate": 0.1, "ReservoirQuota": -1}]})"));
}

// https://docs.aws.amazon.com/xray/latest/api/API_SamplingStatisticsDocument.html
TEST(XraySamplingApi, StatisticsRequestBody) {
    const std::string body = sampling_targets_request(
        {StatisticsDocument{"api-host", "0123456789abcdef01234567", {10, 3, 1}, 1700000300}});
    const auto j = nlohmann::json::parse(body);
    const auto& d = j.at("SamplingStatisticsDocuments").at(0);
    EXPECT_EQ(d.at("RuleName"), "api-host");
    EXPECT_EQ(d.at("ClientID"), "0123456789abcdef01234567");
    EXPECT_EQ(d.at("RequestCount"), 10);
    EXPECT_EQ(d.at("SampledCount"), 3);
    EXPECT_EQ(d.at("BorrowCount"), 1);
    EXPECT_EQ(d.at("Timestamp"), 1700000300);
}

TEST(XraySamplingApi, ClientIdIs24HexDigits) {
    const std::string a = new_client_id();
    ASSERT_EQ(a.size(), 24u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(a, new_client_id());
}

}  // namespace
}  // namespace passport::sample
