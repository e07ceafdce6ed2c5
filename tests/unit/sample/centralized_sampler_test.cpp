#include "userspace/sample/centralized_sampler.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <nlohmann/json.hpp>

#include "userspace/sample/centralized_kernel_rules.hpp"
#include "userspace/sample/sampling_poller.hpp"

namespace passport::sample {
namespace {

constexpr int64_t kNow = 1795480050;
constexpr double kNever = 0.999;

CentralizedRule rule(std::string name, int64_t priority, double rate, uint32_t reservoir,
                     std::string service = "*", std::string type = "*", std::string host = "*",
                     std::string method = "*", std::string path = "*") {
    return CentralizedRule{std::move(name), priority,           rate,
                           reservoir,       std::move(service), std::move(type),
                           std::move(host), std::move(method),  std::move(path)};
}

struct Clock {
    int64_t now = kNow;
    WallClock wall() {
        return [this] { return std::chrono::system_clock::time_point(std::chrono::seconds(now)); };
    }
};

struct Fixture : ::testing::Test {
    Clock clock;
    double draw = kNever;
    CentralizedSampler sampler{default_local_rules(), clock.wall(), [this] { return draw; }};

    Decision decide(std::string_view host, std::string_view method, std::string_view path,
                    std::string_view service = "svc", std::string_view type = "") {
        return sampler.decide(SampleRequest{host, method, path, service, type});
    }
};

using CentralizedSamplerTest = Fixture;

TEST_F(CentralizedSamplerTest, LocalRulesDecideUntilCentralizedRulesAreInForce) {
    sampler.set_rules({rule("Default", 10000, 1.0, 0)}, kNow);
    EXPECT_EQ(decide("h", "GET", "/").rule_name, "Default");  // local default's name
    EXPECT_FALSE(sampler.centralized(kNow));
    sampler.set_centralized(true);
    EXPECT_TRUE(sampler.centralized(kNow));
    const Decision d = decide("h", "GET", "/");
    EXPECT_TRUE(d.sampled);  // the centralized Default samples everything
    // Rules an hour old are not used any more (the SDKs' rule cache TTL).
    clock.now = kNow + kCentralizedRulesTtlSeconds + 1;
    EXPECT_FALSE(sampler.centralized(clock.now));
}

TEST_F(CentralizedSamplerTest, PriorityThenNameOrderAndEveryAttribute) {
    sampler.set_rules({rule("Default", 10000, 0, 0), rule("b-any", 5, 0, 0),
                       rule("a-orders", 5, 1.0, 0, "orders", "AWS::EC2::Instance", "*.example.com",
                            "POST", "/orders/*"),
                       rule("health", 1, 0, 0, "*", "*", "*", "GET", "/health")},
                      kNow);
    sampler.set_centralized(true);
    EXPECT_EQ(decide("api.example.com", "GET", "/health").rule_name, "health");
    const Decision orders =
        decide("api.example.com", "post", "/orders/7", "orders", "AWS::EC2::Instance");
    EXPECT_EQ(orders.rule_name, "a-orders");
    EXPECT_TRUE(orders.sampled);
    // Any attribute that does not match moves on to the next rule.
    EXPECT_EQ(decide("api.example.com", "POST", "/orders/7", "billing").rule_name, "b-any");
    EXPECT_EQ(
        decide("api.example.com", "POST", "/orders/7", "orders", "AWS::ECS::Container").rule_name,
        "b-any");
    EXPECT_EQ(decide("other.test", "POST", "/orders/7", "orders").rule_name, "b-any");
    // An empty service type (not on AWS) matches any pattern, as in the SDKs.
    EXPECT_EQ(decide("api.example.com", "POST", "/orders/7", "orders", "").rule_name, "a-orders");
}

TEST_F(CentralizedSamplerTest, NoMatchingRuleFallsBackToLocalRules) {
    sampler.set_rules({rule("only-get", 1, 1.0, 0, "*", "*", "*", "GET")}, kNow);
    sampler.set_centralized(true);
    EXPECT_EQ(decide("h", "GET", "/").rule_name, "only-get");
    EXPECT_EQ(decide("h", "PUT", "/").rule_name, "Default");       // the local default
    EXPECT_EQ(sampler.take_due_statistics(kNow, "c").size(), 1u);  // only-get's
}

TEST_F(CentralizedSamplerTest, BorrowThenQuotaThenStatisticsPerRule) {
    sampler.set_rules({rule("Default", 10000, 0, 1), rule("api", 1, 0, 5, "*", "*", "api")}, kNow);
    sampler.set_centralized(true);
    EXPECT_TRUE(decide("api", "GET", "/").sampled);   // borrowed
    EXPECT_FALSE(decide("api", "GET", "/").sampled);  // one borrow a second
    sampler.apply_targets({TargetDocument{"api", SamplingTarget{0, 2, kNow + 60, 10}}}, kNow);
    clock.now = kNow + 1;
    EXPECT_TRUE(decide("api", "GET", "/").sampled);
    EXPECT_TRUE(decide("api", "GET", "/").sampled);
    EXPECT_FALSE(decide("api", "GET", "/").sampled);           // quota of 2 used up
    sampler.add_statistics("api", RuleStatistics{100, 7, 1});  // the kernel's share
    // The target was applied at kNow with Interval 10: not due before kNow + 10.
    EXPECT_TRUE(sampler.take_due_statistics(kNow + 5, "cid").empty());
    auto docs = sampler.take_due_statistics(kNow + 10, "cid");
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].rule_name, "api");
    EXPECT_EQ(docs[0].client_id, "cid");
    EXPECT_EQ(docs[0].counts.requests, 105u);
    EXPECT_EQ(docs[0].counts.sampled, 9u);  // 2 from the quota + the kernel's 7
    EXPECT_EQ(docs[0].counts.borrows, 2u);  // 1 here + the kernel's 1
    EXPECT_TRUE(sampler.take_due_statistics(kNow + 20, "cid").empty());  // reset; no requests
}

TEST_F(CentralizedSamplerTest, RefreshedRulesKeepTheirReservoir) {
    sampler.set_rules({rule("api", 1, 0, 5)}, kNow);
    sampler.set_centralized(true);
    sampler.apply_targets({TargetDocument{"api", SamplingTarget{0, 1, kNow + 60, 10}}}, kNow);
    EXPECT_TRUE(decide("h", "GET", "/").sampled);
    sampler.set_rules({rule("api", 1, 0.5, 5), rule("new", 2, 0, 0)}, kNow);
    EXPECT_FALSE(decide("h", "GET", "/").sampled);  // the quota was used this second
    const auto states = sampler.rule_states();
    ASSERT_EQ(states.size(), 2u);
    EXPECT_EQ(states[0].quota, 1u);
    EXPECT_EQ(states[0].quota_expires, kNow + 60);
    EXPECT_DOUBLE_EQ(states[0].fixed_rate, 0.5);  // the new rule's rate until the next target
}

// Quota and fixed rate over ten seconds of 100 requests each, with real random draws: the quota
// (5 a second) is exact, the rate (0.1 of the other 95) is binomial: 95 expected over the ten
// seconds, standard deviation 9.2; the bound is 5 standard deviations either way.
TEST(CentralizedSamplerLoad, QuotaAndRateHoldOverSeconds) {
    Clock clock;
    CentralizedSampler sampler(default_local_rules(), clock.wall());
    sampler.set_rules({rule("Default", 10000, 0.1, 5)}, kNow);
    sampler.set_centralized(true);
    sampler.apply_targets({TargetDocument{"Default", SamplingTarget{0.1, 5, kNow + 60, 10}}}, kNow);
    uint64_t sampled = 0;
    for (int second = 0; second < 10; second++) {
        clock.now = kNow + second;
        for (int i = 0; i < 100; i++)
            sampled += sampler.decide(SampleRequest{"h", "GET", "/", "svc"}).sampled ? 1 : 0;
    }
    const auto docs = sampler.take_due_statistics(kNow + 10, "c");
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].counts.requests, 1000u);
    EXPECT_EQ(docs[0].counts.sampled, sampled);
    EXPECT_EQ(docs[0].counts.borrows, 0u);
    EXPECT_GE(sampled, 50u + 95u - 46u);
    EXPECT_LE(sampled, 50u + 95u + 46u);
}

// ---- kernel compilation ----

std::vector<CentralizedRuleState> states(const std::vector<CentralizedRule>& rules) {
    std::vector<CentralizedRuleState> out;
    out.reserve(rules.size());
    for (const auto& r : rules) out.push_back(CentralizedRuleState{r, r.fixed_rate, 0, 0});
    return out;
}

TEST(CentralizedKernelRules, WithoutServiceRulesEveryProcessGetsEveryRule) {
    auto s = states({rule("health", 1, 0, 0, "*", "*", "*", "GET", "/health"),
                     rule("api", 2, 0.25, 5), rule("Default", 10000, 0.05, 1)});
    s[1].quota = 3;
    s[1].quota_expires = kNow + 10;
    const KernelRules k = compile_centralized_kernel_rules(s, /*kernel_decides=*/true);
    ASSERT_EQ(k.rules.size(), 2u);
    EXPECT_EQ(k.cfg.rule_count, 2u);
    EXPECT_EQ(k.cfg.enabled, 1);
    EXPECT_EQ(k.cfg.overflow, 0);
    EXPECT_EQ(k.cfg.default_mask, 0x3u);
    EXPECT_EQ(k.names[0], "health");
    EXPECT_EQ(k.names[PP_MAX_SAMPLE_RULES], "Default");
    EXPECT_EQ(std::string(k.rules[0].path, k.rules[0].path_len), "/health");
    EXPECT_EQ(k.rules[1].fixed_target, 3u);
    EXPECT_EQ(k.rules[1].expires, static_cast<__u32>(kNow + 10));
    EXPECT_EQ(k.rules[1].borrow, 0);
    EXPECT_EQ(k.rules[1].rate_u32, 1u << 30);
    EXPECT_EQ(k.default_rule.borrow, 1);  // no quota granted yet: borrow
    EXPECT_EQ(k.rules[0].borrow, 0);      // ReservoirSize 0: never borrows
    EXPECT_EQ(compile_centralized_kernel_rules(s, false).cfg.enabled, 0);
}

TEST(CentralizedKernelRules, ServiceRulesGoThroughProcessMasks) {
    auto s =
        states({rule("health", 1, 0, 0, "*", "*", "*", "GET", "/health"),
                rule("orders", 2, 1, 0, "orders"), rule("after", 3, 0, 0),
                rule("ec2", 4, 1, 0, "*", "AWS::EC2::Instance"), rule("Default", 10000, 0.05, 1)});
    const KernelRules k = compile_centralized_kernel_rules(s, true);
    ASSERT_EQ(k.rules.size(), 5u);  // Default as an ordinary last rule
    EXPECT_EQ(k.names[4], "Default");
    EXPECT_EQ(k.cfg.overflow, 1);         // a process without a mask defers when nothing matches
    EXPECT_EQ(k.cfg.default_mask, 0x1u);  // only the rules before the first service rule
    EXPECT_EQ(process_rule_mask(s, k, "orders", "AWS::EC2::Instance"), 0x1Fu);
    EXPECT_EQ(process_rule_mask(s, k, "billing", "AWS::ECS::Container"), 0x1u | 0x4u | 0x10u);
    EXPECT_EQ(process_rule_mask(s, k, "billing", ""), 0x1u | 0x4u | 0x8u | 0x10u);
}

TEST(CentralizedKernelRules, LongPatternsAreDeferredAndExtraRulesOverflow) {
    std::vector<CentralizedRule> rules;
    rules.push_back(rule("long", 1, 0, 0, "*", "*", "*", "*", "/" + std::string(200, 'a')));
    for (int i = 0; i < 20; i++) rules.push_back(rule("r" + std::to_string(i + 10), 2 + i, 0, 0));
    const KernelRules k = compile_centralized_kernel_rules(states(rules), true);
    EXPECT_EQ(k.rules.size(), size_t{PP_MAX_SAMPLE_RULES});
    EXPECT_EQ(k.rules[0].deferred, 1);
    EXPECT_EQ(k.cfg.overflow, 1);
    EXPECT_EQ(k.deferred, 1u + 21u - PP_MAX_SAMPLE_RULES);
    EXPECT_EQ(k.default_rule.deferred, 1);  // X-Ray sent no Default
}

// ---- the poller ----

struct FakeTransport : SamplingTransport {
    std::deque<Result<std::string>> answers;
    std::vector<std::pair<std::string, std::string>> requests;
    Result<std::string> post(std::string_view path, const std::string& body) override {
        requests.emplace_back(std::string(path), body);
        if (answers.empty()) return make_error("connect: Connection refused");
        auto a = answers.front();
        answers.pop_front();
        return a;
    }
};

struct FakeKernel : KernelSamplingSink {
    std::vector<KernelRules> pushed;
    std::map<uint32_t, uint32_t> masks;
    std::vector<pp_sample_stat> stats = std::vector<pp_sample_stat>(PP_MAX_SAMPLE_RULES + 1);
    Result<bool> set_sampling(const KernelRules& r) override {
        pushed.push_back(r);
        return true;
    }
    Result<bool> set_process_rules(uint32_t tgid, uint32_t mask) override {
        masks[tgid] = mask;
        return true;
    }
    Result<bool> clear_process_rules(uint32_t tgid) override {
        masks.erase(tgid);
        return true;
    }
    Result<std::vector<pp_sample_stat>> read_sampling_stats() override { return stats; }
};

std::string rules_body(const std::vector<CentralizedRule>& rules) {
    nlohmann::json records = nlohmann::json::array();
    for (const auto& r : rules) {
        records.push_back({{"SamplingRule",
                            {{"RuleName", r.name},
                             {"Priority", r.priority},
                             {"FixedRate", r.fixed_rate},
                             {"ReservoirSize", r.reservoir_size},
                             {"ServiceName", r.service_name},
                             {"ServiceType", r.service_type},
                             {"Host", r.host},
                             {"HTTPMethod", r.http_method},
                             {"URLPath", r.url_path},
                             {"ResourceARN", "*"},
                             {"Attributes", nlohmann::json::object()},
                             {"Version", 1}}}});
    }
    return nlohmann::json{{"SamplingRuleRecords", records}}.dump();
}

struct PollerTest : Fixture {
    FakeTransport transport;
    FakeKernel kernel;
    std::vector<ProcessFacts> processes;
    SamplingPoller poller{sampler, transport,
                          &kernel, PollerOptions{.kernel_decides = true},
                          "cid",   [this] { return processes; }};
};

TEST_F(PollerTest, FallsBackWhenUnreachableAndRecovers) {
    // Unreachable at start: local rules, retried after 10 s.
    EXPECT_EQ(poller.step(kNow), kNow + 10);
    EXPECT_FALSE(poller.status().centralized);
    EXPECT_EQ(poller.status().rules_fetch_failures, 1u);
    EXPECT_NE(poller.status().last_error.find("Connection refused"), std::string::npos);
    EXPECT_TRUE(kernel.pushed.empty());  // the kernel keeps the local rules it started with

    transport.answers.emplace_back(rules_body({rule("Default", 10000, 1.0, 0)}));
    clock.now = kNow + 10;
    EXPECT_EQ(poller.step(clock.now), kNow + 20);  // targets next
    EXPECT_TRUE(poller.status().centralized);
    ASSERT_EQ(kernel.pushed.size(), 1u);
    EXPECT_EQ(kernel.pushed[0].names[PP_MAX_SAMPLE_RULES], "Default");
    EXPECT_EQ(transport.requests[1].first, "/GetSamplingRules");
    EXPECT_EQ(transport.requests[1].second, "{}");
    EXPECT_EQ(decide("h", "GET", "/").rule_name, "Default");

    // Garbage from the targets call: local rules again, in the sampler and in the kernel.
    transport.answers.emplace_back(std::string("<html>"));
    clock.now = kNow + 20;
    poller.step(clock.now);
    EXPECT_EQ(transport.requests.back().first, "/SamplingTargets");
    EXPECT_FALSE(poller.status().centralized);
    EXPECT_EQ(poller.status().targets_fetch_failures, 1u);
    EXPECT_FALSE(sampler.centralized(clock.now));
    ASSERT_EQ(kernel.pushed.size(), 2u);
    EXPECT_EQ(kernel.pushed[1].cfg.default_mask, ~0u);  // the local rules' compilation

    // X-Ray answers again: centralized once more.
    transport.answers.emplace_back(rules_body({rule("Default", 10000, 1.0, 0)}));
    clock.now = kNow + 30;
    poller.step(clock.now);
    EXPECT_TRUE(poller.status().centralized);
    EXPECT_EQ(poller.status().rules_fetch_failures, 1u);
}

TEST_F(PollerTest, ReportsStatisticsKernelIncludedAndAppliesTargets) {
    transport.answers.emplace_back(
        rules_body({rule("api", 1, 0, 5, "*", "*", "api"), rule("Default", 10000, 0, 0)}));
    poller.step(kNow);
    ASSERT_EQ(kernel.pushed.size(), 1u);
    decide("api", "GET", "/");                   // userspace: borrowed
    kernel.stats[0] = pp_sample_stat{40, 4, 2};  // the kernel: 40 requests for "api"
    transport.answers.emplace_back(
        std::string(
            R"({"LastRuleModification": 1, "SamplingTargetDocuments": [{"RuleName": "api",
            "FixedRate": 0.5, "ReservoirQuota": 7, "ReservoirQuotaTTL": )") +
        std::to_string(kNow + 70) + R"(, "Interval": 5}]})");
    clock.now = kNow + 10;
    const int64_t next = poller.step(clock.now);
    EXPECT_EQ(next, kNow + 15);  // the target's Interval is shorter than 10 s
    const auto body = nlohmann::json::parse(transport.requests.back().second);
    const auto& docs = body.at("SamplingStatisticsDocuments");
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].at("RuleName"), "api");
    EXPECT_EQ(docs[0].at("ClientID"), "cid");
    EXPECT_EQ(docs[0].at("RequestCount"), 41);
    EXPECT_EQ(docs[0].at("SampledCount"), 4);
    EXPECT_EQ(docs[0].at("BorrowCount"), 3);
    EXPECT_EQ(poller.status().statistics_reported, 1u);
    ASSERT_EQ(kernel.pushed.size(), 2u);  // the new quota went to the kernel
    EXPECT_EQ(kernel.pushed[1].rules[0].fixed_target, 7u);
    EXPECT_EQ(kernel.pushed[1].rules[0].expires, static_cast<__u32>(kNow + 70));
    // The kernel's counters are cumulative: only what is new is reported next time.
    kernel.stats[0] = pp_sample_stat{45, 5, 2};
    transport.answers.emplace_back(std::string(R"({"LastRuleModification": 1})"));
    clock.now = kNow + 15;
    poller.step(clock.now);
    const auto second = nlohmann::json::parse(transport.requests.back().second);
    EXPECT_EQ(second.at("SamplingStatisticsDocuments")[0].at("RequestCount"), 5);
}

TEST_F(PollerTest, RulesChangedOnTheServiceAreFetchedAgain) {
    transport.answers.emplace_back(rules_body({rule("Default", 10000, 0, 0)}));
    poller.step(kNow);
    decide("h", "GET", "/");
    transport.answers.emplace_back(R"({"LastRuleModification": )" + std::to_string(kNow + 5) + "}");
    clock.now = kNow + 10;
    EXPECT_EQ(poller.step(clock.now), kNow + 11);  // rules at once, not in 5 minutes
    transport.answers.emplace_back(rules_body({rule("Default", 10000, 1, 0)}));
    poller.step(kNow + 11);
    EXPECT_EQ(transport.requests.back().first, "/GetSamplingRules");
    EXPECT_TRUE(decide("h", "GET", "/").sampled);
}

TEST_F(PollerTest, ProcessMasksFollowIdentities) {
    transport.answers.emplace_back(
        rules_body({rule("orders", 1, 1, 0, "orders"), rule("Default", 10000, 0, 0)}));
    processes = {{10, "orders", ""}, {11, "billing", ""}};
    poller.step(kNow);
    EXPECT_EQ(kernel.masks.at(10), 0x3u);
    EXPECT_EQ(kernel.masks.at(11), 0x2u);
    processes = {{10, "orders", ""}};
    poller.step(kNow + 1);
    EXPECT_EQ(kernel.masks.count(11), 0u);
    // Back to local rules: no per-process masks left.
    transport.answers.emplace_back(make_error("timed out"));
    decide("h", "GET", "/", "orders");
    poller.step(kNow + 10);
    EXPECT_TRUE(kernel.masks.empty());
}

TEST_F(PollerTest, AnEmptyOrUnusableRuleListKeepsTheLastGoodRules) {
    transport.answers.emplace_back(rules_body({rule("Default", 10000, 1, 0)}));
    poller.step(kNow);
    transport.answers.emplace_back(std::string(R"({"SamplingRuleRecords": []})"));
    poller.step(kNow + 300);
    EXPECT_FALSE(poller.status().centralized);  // said so, local rules decide
    EXPECT_EQ(sampler.rule_count(), 1u);        // the last good rules are kept
    transport.answers.emplace_back(rules_body({rule("Default", 10000, 1, 0)}));
    poller.step(kNow + 310);
    EXPECT_TRUE(poller.status().centralized);
}

}  // namespace
}  // namespace passport::sample
