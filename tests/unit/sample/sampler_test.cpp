#include "userspace/sample/sampler.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <memory>

namespace passport::sample {
namespace {

using std::chrono::system_clock;

// A clock and random source the test drives.
struct Fakes {
    std::shared_ptr<system_clock::time_point> now =
        std::make_shared<system_clock::time_point>(std::chrono::seconds(1795480050));
    std::shared_ptr<double> random = std::make_shared<double>(0.99);

    WallClock clock() const {
        return [now = now] { return *now; };
    }
    UniformRandom uniform() const {
        return [random = random] { return *random; };
    }
    void advance(std::chrono::milliseconds d) const { *now += d; }
};

LocalRule rule(std::string name, std::string host, std::string method, std::string path,
               uint32_t fixed_target, double rate) {
    return LocalRule{std::move(name), std::move(host), std::move(method),
                     std::move(path), fixed_target,    rate};
}

LocalRules rules_with(std::vector<LocalRule> list, uint32_t default_target = 1,
                      double default_rate = 0.05) {
    LocalRules rules = default_local_rules();
    rules.default_rule.fixed_target = default_target;
    rules.default_rule.rate = default_rate;
    rules.rules = std::move(list);
    return rules;
}

constexpr SampleRequest kGet{"api.example.com", "GET", "/items", "frontend"};

TEST(SamplingLocalSampler, SdkDefaultFirstPerSecondThenRate) {
    Fakes f;
    LocalSampler sampler(default_local_rules(), f.clock(), f.uniform());

    Decision d = sampler.decide(kGet);
    EXPECT_TRUE(d.sampled);  // reservoir
    EXPECT_EQ(d.rule_name, "Default");
    EXPECT_EQ(d.source, DecisionSource::kRule);

    *f.random = 0.06;
    EXPECT_FALSE(sampler.decide(kGet).sampled);
    *f.random = 0.04;
    EXPECT_TRUE(sampler.decide(kGet).sampled);  // rate
    *f.random = 0.05;
    EXPECT_FALSE(sampler.decide(kGet).sampled);  // strictly below the rate

    *f.random = 0.99;
    f.advance(std::chrono::milliseconds(900));  // still the same wall-clock second
    EXPECT_FALSE(sampler.decide(kGet).sampled);
    f.advance(std::chrono::milliseconds(100));  // next second: reservoir refilled
    EXPECT_TRUE(sampler.decide(kGet).sampled);
    EXPECT_FALSE(sampler.decide(kGet).sampled);
}

TEST(SamplingLocalSampler, ReservoirIsPerWallClockSecondNotPerSlidingSecond) {
    Fakes f;
    f.advance(std::chrono::milliseconds(999));  // x.999
    LocalSampler sampler(rules_with({}, 3, 0), f.clock(), f.uniform());
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(sampler.decide(kGet).sampled) << i;
    EXPECT_FALSE(sampler.decide(kGet).sampled);
    f.advance(std::chrono::milliseconds(1));  // (x+1).000: only 1 ms later
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(sampler.decide(kGet).sampled) << i;
    EXPECT_FALSE(sampler.decide(kGet).sampled);
}

TEST(SamplingLocalSampler, RateOnly) {
    Fakes f;
    LocalSampler sampler(rules_with({rule("half", "*", "*", "*", 0, 0.5)}), f.clock(), f.uniform());
    *f.random = 0.49;
    EXPECT_TRUE(sampler.decide(kGet).sampled);
    *f.random = 0.5;
    EXPECT_FALSE(sampler.decide(kGet).sampled);
    *f.random = 0.0;
    EXPECT_TRUE(sampler.decide(kGet).sampled);
}

TEST(SamplingLocalSampler, ZeroRulesNeverSample) {
    Fakes f;
    *f.random = 0.0;
    LocalSampler sampler(rules_with({}, 0, 0), f.clock(), f.uniform());
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(sampler.decide(kGet).sampled);
}

TEST(SamplingLocalSampler, FirstMatchingRuleInFileOrderWins) {
    Fakes f;
    LocalSampler sampler(
        rules_with({rule("items", "*", "GET", "/items*", 0, 1), rule("all", "*", "*", "*", 0, 0)}),
        f.clock(), f.uniform());
    EXPECT_EQ(sampler.decide(kGet).rule_name, "items");
    EXPECT_TRUE(sampler.decide(kGet).sampled);
    const Decision post = sampler.decide({"api.example.com", "POST", "/items", ""});
    EXPECT_EQ(post.rule_name, "all");
    EXPECT_FALSE(post.sampled);
}

TEST(SamplingLocalSampler, WildcardsOnHostMethodAndPath) {
    Fakes f;
    LocalSampler sampler(rules_with({rule("host", "API.*.com", "*", "*", 0, 1),
                                     rule("method", "*", "p?t", "*", 0, 1),
                                     rule("path", "*", "*", "/health*", 0, 1)},
                                    0, 0),
                         f.clock(), f.uniform());
    EXPECT_EQ(sampler.decide({"api.example.com", "GET", "/", ""}).rule_name, "host");
    EXPECT_EQ(sampler.decide({"other.org", "PUT", "/", ""}).rule_name, "method");
    EXPECT_EQ(sampler.decide({"other.org", "GET", "/HEALTHZ", ""}).rule_name, "path");
    EXPECT_EQ(sampler.decide({"other.org", "GET", "/x", ""}).rule_name, "Default");
}

TEST(SamplingLocalSampler, EmptyRequestAttributesMatchAnything) {
    Fakes f;
    LocalSampler sampler(
        rules_with({rule("checkout", "shop.example.com", "POST", "/checkout", 0, 1)}), f.clock(),
        f.uniform());
    // A request with no Host header still matches a host-specific rule, as in the X-Ray SDK for
    // Node.js (local_sampler.js: a missing attribute is an implicit match).
    EXPECT_EQ(sampler.decide({"", "POST", "/checkout", ""}).rule_name, "checkout");
    EXPECT_EQ(sampler.decide({"", "", "", ""}).rule_name, "checkout");
    EXPECT_EQ(sampler.decide({"", "GET", "/checkout", ""}).rule_name, "Default");
}

TEST(SamplingLocalSampler, DefaultFallback) {
    Fakes f;
    LocalSampler sampler(rules_with({rule("checkout", "*", "*", "/checkout", 5, 0)}, 0, 0),
                         f.clock(), f.uniform());
    const Decision d = sampler.decide({"h", "GET", "/cart", ""});
    EXPECT_EQ(d.rule_name, "Default");
    EXPECT_FALSE(d.sampled);
}

TEST(SamplingLocalSampler, EachRuleHasItsOwnReservoir) {
    Fakes f;
    LocalSampler sampler(
        rules_with({rule("a", "*", "*", "/a", 1, 0), rule("b", "*", "*", "/b", 1, 0)}), f.clock(),
        f.uniform());
    EXPECT_TRUE(sampler.decide({"", "", "/a", ""}).sampled);
    EXPECT_FALSE(sampler.decide({"", "", "/a", ""}).sampled);
    EXPECT_TRUE(sampler.decide({"", "", "/b", ""}).sampled);
    EXPECT_TRUE(sampler.decide({"", "", "/c", ""}).sampled);  // default's own reservoir
}

TEST(SamplingLocalSampler, RealRandomRateIsRoughlyRight) {
    Fakes f;
    LocalSampler sampler(rules_with({}, 0, 0.05), f.clock());  // real random source
    int sampled = 0;
    for (int i = 0; i < 20000; ++i) sampled += sampler.decide(kGet).sampled ? 1 : 0;
    // Expected 1000, standard deviation ~31: these bounds are > 9 sigma away.
    EXPECT_GT(sampled, 700);
    EXPECT_LT(sampled, 1300);
}

// --- upstream policy ---

class CountingSampler : public Sampler {
  public:
    Decision decide(const SampleRequest&) override {
        ++calls;
        return Decision{true, "counted", DecisionSource::kRule};
    }
    int calls = 0;
};

TEST(SamplingPolicy, UpstreamFlagMapping) {
    EXPECT_EQ(upstream_decision(xray::SampledFlag::kSampled), std::optional<bool>(true));
    EXPECT_EQ(upstream_decision(xray::SampledFlag::kNotSampled), std::optional<bool>(false));
    EXPECT_EQ(upstream_decision(xray::SampledFlag::kRequested), std::nullopt);
    EXPECT_EQ(upstream_decision(xray::SampledFlag::kAbsent), std::nullopt);
}

TEST(SamplingPolicy, UpstreamDecisionWinsOverRules) {
    CountingSampler rules;
    const Decision yes = decide_with_upstream(xray::SampledFlag::kSampled, rules, kGet);
    EXPECT_TRUE(yes.sampled);
    EXPECT_EQ(yes.source, DecisionSource::kUpstream);
    EXPECT_EQ(yes.rule_name, "");
    const Decision no = decide_with_upstream(xray::SampledFlag::kNotSampled, rules, kGet);
    EXPECT_FALSE(no.sampled);
    EXPECT_EQ(no.source, DecisionSource::kUpstream);
    EXPECT_EQ(rules.calls, 0);
}

TEST(SamplingPolicy, RequestedOrAbsentUsesRules) {
    CountingSampler rules;
    for (const auto flag : {xray::SampledFlag::kRequested, xray::SampledFlag::kAbsent}) {
        const Decision d = decide_with_upstream(flag, rules, kGet);
        EXPECT_TRUE(d.sampled);
        EXPECT_EQ(d.rule_name, "counted");
        EXPECT_EQ(d.source, DecisionSource::kRule);
    }
    EXPECT_EQ(rules.calls, 2);
}

TEST(SamplingPolicy, UpstreamDecisionsDoNotUseTheReservoir) {
    Fakes f;
    LocalSampler sampler(rules_with({}, 1, 0), f.clock(), f.uniform());
    for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(decide_with_upstream(xray::SampledFlag::kSampled, sampler, kGet).sampled);
    }
    EXPECT_TRUE(decide_with_upstream(xray::SampledFlag::kAbsent, sampler, kGet).sampled);
    EXPECT_FALSE(decide_with_upstream(xray::SampledFlag::kAbsent, sampler, kGet).sampled);
}

}  // namespace
}  // namespace passport::sample
