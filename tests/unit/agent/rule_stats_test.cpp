// The kernel's per-rule sampling statistics as metrics (agent/metrics/rule_stats.*), without a
// kernel: what is added under each rule's name is what the kernel counted at its index since the
// previous collection, rules renamed between collections keep their own counts, and /metrics
// shows one series per rule name.
#include <sstream>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "agent/metrics/agent_metrics.hpp"
#include "agent/metrics/rule_stats.hpp"

namespace passport::agent::metrics {
namespace {

std::vector<std::string> names(std::initializer_list<std::pair<size_t, std::string>> at) {
    std::vector<std::string> out(PP_MAX_SAMPLE_RULES + 1);
    for (const auto& [i, name] : at) out[i] = name;
    return out;
}

TEST(RuleStatsCollector, AddsWhatEachRuleCountedSinceTheLastCollection) {
    Counters counters;
    RuleStatsCollector c;
    KernelRuleStats k{};
    k[0] = {10, 3, 1};
    k[PP_MAX_SAMPLE_RULES] = {5, 1, 0};
    c.collect(k, names({{0, "api"}, {PP_MAX_SAMPLE_RULES, "Default"}}), counters);
    EXPECT_EQ(counters.get("sampling.rule_requests.api"), 10u);
    EXPECT_EQ(counters.get("sampling.rule_sampled.api"), 3u);
    EXPECT_EQ(counters.get("sampling.rule_borrowed.api"), 1u);
    EXPECT_EQ(counters.get("sampling.rule_requests.Default"), 5u);
    // The rules change: index 0 is now "web"; the kernel keeps counting at the index.
    k[0] = {14, 4, 1};
    c.collect(k, names({{0, "web"}, {PP_MAX_SAMPLE_RULES, "Default"}}), counters);
    EXPECT_EQ(counters.get("sampling.rule_requests.api"), 10u) << "api keeps its own count";
    EXPECT_EQ(counters.get("sampling.rule_requests.web"), 4u);
    EXPECT_EQ(counters.get("sampling.rule_sampled.web"), 1u);
    EXPECT_EQ(counters.get("sampling.rule_borrowed.web"), 0u);
    EXPECT_EQ(counters.get("sampling.rule_requests.Default"), 5u);
    // An index without a rule name adds nothing.
    const size_t series = counters.all().size();
    k[3] = {7, 7, 0};
    c.collect(k, names({{0, "web"}}), counters);
    EXPECT_EQ(counters.all().size(), series);
    EXPECT_EQ(counters.get("sampling.rule_requests.web"), 4u);
}

TEST(RuleStatsCollector, MetricsShowOneSeriesPerRule) {
    Counters counters;
    RuleStatsCollector c;
    KernelRuleStats k{};
    k[1] = {8, 2, 1};
    c.collect(k, names({{1, "a\"b"}}), counters);
    const CounterNames kNames({});
    SnapshotInput in;
    in.counters = &counters;
    in.names = &kNames;
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, build_families(in));
    for (const char* line : {
             R"(passport_sampling_rule_requests_total{rule="a\"b"} 8)",
             R"(passport_sampling_rule_sampled_total{rule="a\"b"} 2)",
             R"(passport_sampling_rule_borrowed_total{rule="a\"b"} 1)",
             "# TYPE passport_sampling_rule_requests_total counter",
         })
        EXPECT_NE(text.str().find(line), std::string::npos) << line << "\n" << text.str();
}

}  // namespace
}  // namespace passport::agent::metrics
