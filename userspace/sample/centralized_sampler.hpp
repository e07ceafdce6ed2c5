#pragma once
// X-Ray centralized sampling as the X-Ray SDKs' centralized samplers apply it: rules from
// GetSamplingRules tried in Priority order (then RuleName), each matching on service name,
// service type, Host, HTTP method and URL path with wildcards (an empty request attribute
// matches any pattern); the reserved "Default" rule matches everything. Each rule has a
// CentralizedReservoir (borrow one a second until X-Ray grants a quota, then the quota until its
// TTL, then the fixed rate) and counts requests, sampled and borrowed for GetSamplingTargets.
// The local rules decide while the centralized ones are not in force: before the first
// successful fetch, when X-Ray is unreachable (set_centralized(false)), when the rules were not
// refreshed for an hour (the SDKs' rule cache TTL), or when no rule matches.
// decide() runs on the pipeline thread; the poller thread loads rules and targets and takes the
// statistics: one mutex guards it all.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "userspace/sample/centralized_reservoir.hpp"
#include "userspace/sample/sampler.hpp"
#include "userspace/sample/xray_sampling_api.hpp"

namespace passport::sample {

// Rules not refreshed for this long are not used (aws-xray-sdk-node rule_cache.js: one hour).
inline constexpr int64_t kCentralizedRulesTtlSeconds = 3600;

// A rule and its reservoir state, for the kernel's copy of the rules.
struct CentralizedRuleState {
    CentralizedRule rule;
    double fixed_rate = 0;  // the target's, else the rule's
    uint32_t quota = 0;
    int64_t quota_expires = 0;  // 0: no quota granted yet
};

class CentralizedSampler : public Sampler {
  public:
    CentralizedSampler(LocalRules local, WallClock clock = std::chrono::system_clock::now,
                       UniformRandom random = default_uniform_random());

    Decision decide(const SampleRequest& request) override;

    // New rules (any order; sorted here) fetched at now_s. Rules keeping their name keep their
    // reservoir and statistics, as in the SDKs.
    void set_rules(std::vector<CentralizedRule> rules, int64_t now_s);
    void apply_targets(const std::vector<TargetDocument>& targets, int64_t now_s);
    // Whether the centralized rules decide (X-Ray reachable) or the local ones.
    void set_centralized(bool on);
    void set_local_rules(LocalRules local);

    // Counters of decisions made elsewhere (the kernel), by rule name.
    void add_statistics(const std::string& rule_name, const RuleStatistics& counts);
    // The statistics of every rule that has requests and whose report is due, reset here (at
    // most kMaxStatisticsPerRequest).
    std::vector<StatisticsDocument> take_due_statistics(int64_t now_s,
                                                        const std::string& client_id);
    // The earliest report due among the rules (epoch seconds); INT64_MAX without rules.
    int64_t next_report_due() const;

    bool centralized(int64_t now_s) const;  // the centralized rules decide now
    int64_t rules_fetched_at() const;
    size_t rule_count() const;
    std::vector<CentralizedRuleState> rule_states() const;  // in match order
    LocalRules local_rules() const;

  private:
    struct Rule {
        CentralizedRule rule;
        CentralizedReservoir reservoir;
    };

    static bool matches(const CentralizedRule& rule, const SampleRequest& request);
    bool in_force(int64_t now_s) const;  // mutex_ held

    mutable std::mutex mutex_;
    std::vector<Rule> rules_;
    LocalRules local_rules_;
    LocalSampler local_;
    bool centralized_ = false;
    int64_t fetched_at_ = 0;
    WallClock clock_;
    UniformRandom random_;
};

}  // namespace passport::sample
