#include "userspace/sample/rules.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace passport::sample {
namespace {

// The local sampling rules file format (AWS X-Ray Developer Guide, "Configuring sampling rules").
constexpr const char* kExampleV2 = R"({"version":2,"default":{"fixed_target":1,"rate":0.05},
 "rules":[{"description":"checkout","host":"*","http_method":"*","url_path":"/checkout","fixed_target":10,"rate":0.05}]})";

void expect_error(const std::string& text, const std::string& fragment) {
    const auto rules = parse_local_rules(text);
    ASSERT_FALSE(rules.ok()) << text;
    EXPECT_NE(rules.error().find(fragment), std::string::npos) << rules.error();
}

TEST(SamplingRules, ParsesVersion2Example) {
    const auto rules = parse_local_rules(kExampleV2);
    ASSERT_TRUE(rules.ok()) << rules.error();
    EXPECT_EQ(rules->version, 2);
    EXPECT_EQ(rules->default_rule.name, "Default");
    EXPECT_EQ(rules->default_rule.fixed_target, 1u);
    EXPECT_DOUBLE_EQ(rules->default_rule.rate, 0.05);
    ASSERT_EQ(rules->rules.size(), 1u);
    const LocalRule& r = rules->rules[0];
    EXPECT_EQ(r.name, "checkout");
    EXPECT_EQ(r.host, "*");
    EXPECT_EQ(r.http_method, "*");
    EXPECT_EQ(r.url_path, "/checkout");
    EXPECT_EQ(r.fixed_target, 10u);
    EXPECT_DOUBLE_EQ(r.rate, 0.05);
}

TEST(SamplingRules, Version1ServiceNameBecomesHost) {
    const auto rules = parse_local_rules(R"({"version":1,"default":{"fixed_target":2,"rate":0.1},
        "rules":[{"service_name":"api.*","http_method":"GET","url_path":"/x","fixed_target":0,"rate":1}]})");
    ASSERT_TRUE(rules.ok()) << rules.error();
    EXPECT_EQ(rules->version, 1);
    ASSERT_EQ(rules->rules.size(), 1u);
    EXPECT_EQ(rules->rules[0].host, "api.*");
    EXPECT_EQ(rules->rules[0].name, "rule-1");  // no description
}

TEST(SamplingRules, RulesAreOptional) {
    const auto rules = parse_local_rules(R"({"version":2,"default":{"fixed_target":0,"rate":0}})");
    ASSERT_TRUE(rules.ok()) << rules.error();
    EXPECT_TRUE(rules->rules.empty());
}

TEST(SamplingRules, UnknownKeysAreIgnored) {
    EXPECT_TRUE(
        parse_local_rules(R"({"version":2,"x":1,"default":{"fixed_target":0,"rate":0,"y":2}})")
            .ok());
}

TEST(SamplingRules, StructuralErrors) {
    expect_error("not json", "not valid JSON");
    expect_error("[]", "must be an object");
    expect_error(R"({"default":{"fixed_target":1,"rate":0.05}})", "version is required");
    expect_error(R"({"version":3,"default":{"fixed_target":1,"rate":0.05}})",
                 "version must be 1 or 2");
    expect_error(R"({"version":"2","default":{"fixed_target":1,"rate":0.05}})",
                 "version must be 1 or 2");
    expect_error(R"({"version":2})", "default is required");
    expect_error(R"({"version":2,"default":5})", "default must be an object");
    expect_error(R"({"version":2,"default":{"fixed_target":1,"rate":0.05},"rules":{}})",
                 "rules must be an array");
}

TEST(SamplingRules, DefaultMayOnlySetNumbers) {
    for (const char* field : {"url_path", "service_name", "http_method", "host"}) {
        expect_error(std::string(R"({"version":2,"default":{"fixed_target":1,"rate":0.05,")") +
                         field + R"(":"*"}})",
                     std::string("default: ") + field + " is not allowed");
    }
    expect_error(R"({"version":2,"default":{"rate":0.05}})", "default: fixed_target is required");
    expect_error(R"({"version":2,"default":{"fixed_target":1}})", "default: rate is required");
}

TEST(SamplingRules, NumberValidation) {
    const auto with_default = [](const std::string& numbers) {
        return R"({"version":2,"default":{)" + numbers + "}}";
    };
    expect_error(with_default(R"("fixed_target":-1,"rate":0.05)"),
                 "fixed_target must be a non-negative integer");
    expect_error(with_default(R"("fixed_target":1.5,"rate":0.05)"),
                 "fixed_target must be a non-negative integer");
    expect_error(with_default(R"("fixed_target":1,"rate":-0.1)"), "rate must be between 0 and 1");
    expect_error(with_default(R"("fixed_target":1,"rate":1.5)"), "rate must be between 0 and 1");
    expect_error(with_default(R"("fixed_target":1,"rate":"0.1")"), "rate must be a number");
    EXPECT_TRUE(parse_local_rules(with_default(R"("fixed_target":0,"rate":1)")).ok());
}

TEST(SamplingRules, Version2RuleValidation) {
    const auto rule = [](const std::string& body) {
        return R"({"version":2,"default":{"fixed_target":1,"rate":0.05},"rules":[{"host":"*","http_method":"*","url_path":"*","fixed_target":1,"rate":0.1},)" +
               body + "]}";
    };
    expect_error(rule(R"({"http_method":"*","url_path":"*","fixed_target":1,"rate":0.1})"),
                 "rules[1]: host is required");
    expect_error(rule(R"({"host":"*","url_path":"*","fixed_target":1,"rate":0.1})"),
                 "rules[1]: http_method is required");
    expect_error(rule(R"({"host":"*","http_method":"*","fixed_target":1,"rate":0.1})"),
                 "rules[1]: url_path is required");
    expect_error(rule(R"({"host":1,"http_method":"*","url_path":"*","fixed_target":1,"rate":0.1})"),
                 "host must be a string");
    expect_error(
        rule(
            R"({"service_name":"a","host":"*","http_method":"*","url_path":"*","fixed_target":1,"rate":0.1})"),
        "service_name is not allowed in version 2 rules");
    expect_error(rule(R"({"host":"*","http_method":"*","url_path":"*","rate":0.1})"),
                 "rules[1]: fixed_target is required");
    expect_error(rule(R"({"host":"*","http_method":"*","url_path":"*","fixed_target":1,"rate":2})"),
                 "rules[1]: rate must be between 0 and 1");
    expect_error(rule("3"), "rules[1]: must be an object");
}

TEST(SamplingRules, Version1RuleValidation) {
    expect_error(
        R"({"version":1,"default":{"fixed_target":1,"rate":0.05},"rules":[{"host":"*","service_name":"*","http_method":"*","url_path":"*","fixed_target":1,"rate":0.1}]})",
        "host is not allowed in version 1 rules");
    expect_error(
        R"({"version":1,"default":{"fixed_target":1,"rate":0.05},"rules":[{"http_method":"*","url_path":"*","fixed_target":1,"rate":0.1}]})",
        "service_name is required");
}

TEST(SamplingRules, SdkDefault) {
    const LocalRules rules = default_local_rules();
    EXPECT_EQ(rules.default_rule.name, "Default");
    EXPECT_EQ(rules.default_rule.fixed_target, 1u);
    EXPECT_DOUBLE_EQ(rules.default_rule.rate, 0.05);
    EXPECT_TRUE(rules.rules.empty());
}

TEST(SamplingRules, LoadFromFile) {
    const std::string path = testing::TempDir() + "passport_rules_test.json";
    {
        std::ofstream out(path);
        out << kExampleV2;
    }
    const auto rules = load_local_rules(path);
    ASSERT_TRUE(rules.ok()) << rules.error();
    EXPECT_EQ(rules->rules.size(), 1u);
    {
        std::ofstream out(path);
        out << R"({"version":2})";
    }
    const auto bad = load_local_rules(path);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find(path), std::string::npos) << bad.error();
    std::remove(path.c_str());

    const auto missing = load_local_rules("/nonexistent/passport/rules.json");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().find("/nonexistent/passport/rules.json"), std::string::npos);
}

}  // namespace
}  // namespace passport::sample
