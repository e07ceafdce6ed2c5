#pragma once
// The per-rule state of X-Ray centralized sampling (as the X-Ray SDKs' centralized samplers
// implement it): borrow one request per second until the service grants a quota, then `quota` per
// second until its TTL, always falling back to the fixed rate; plus the statistics reported to
// GetSamplingTargets (https://docs.aws.amazon.com/xray/latest/api/API_GetSamplingTargets.html).
// Pure logic with the time and the random number passed in; CentralizedSampler owns one per rule.
#include <cstdint>
#include <limits>
#include <optional>

namespace passport::sample {

struct RuleStatistics {
    uint64_t requests = 0;
    uint64_t sampled = 0;  // borrows are not counted here, as in the SDKs
    uint64_t borrows = 0;
};

// One SamplingTargetDocument.
struct SamplingTarget {
    double fixed_rate = 0;
    std::optional<uint32_t> reservoir_quota;
    std::optional<int64_t> reservoir_quota_ttl;  // epoch seconds
    std::optional<int64_t> interval;             // seconds between reports
};

class CentralizedReservoir {
  public:
    // capacity = the rule's ReservoirSize; 0 disables borrowing.
    CentralizedReservoir(uint32_t capacity, double fixed_rate);

    // One request at now_s (integer epoch seconds); random is uniform in [0, 1).
    bool sample(int64_t now_s, double random);

    // Applies a target received at now_s.
    void apply_target(const SamplingTarget& target, int64_t now_s);

    // The rule was fetched again: its ReservoirSize and FixedRate (until the next target).
    void update_rule(uint32_t capacity, double fixed_rate);

    // Decisions taken elsewhere for this rule (the kernel's), reported with these.
    void add_statistics(const RuleStatistics& more);

    // True when this rule has requests to report and its interval has elapsed.
    bool needs_report(int64_t now_s) const;

    // The counters since the last call, which are reset.
    RuleStatistics take_statistics();

    const RuleStatistics& statistics() const { return statistics_; }
    double fixed_rate() const { return fixed_rate_; }
    uint32_t capacity() const { return capacity_; }
    // The quota and its end (epoch seconds) once a target granted one; 0 before.
    uint32_t quota() const { return quota_; }
    int64_t quota_expires() const { return expires_at_; }
    // When the next report is due (epoch seconds) by the last target's Interval; INT64_MAX
    // before the first target (the regular 10 s cycle reports it).
    int64_t report_due() const {
        return refreshed_at_ == 0 ? std::numeric_limits<int64_t>::max() : refreshed_at_ + interval_;
    }

  private:
    uint32_t capacity_;
    double fixed_rate_;
    uint32_t quota_ = 0;
    uint32_t used_ = 0;
    int64_t current_second_ = -1;
    bool borrowed_ = false;
    int64_t refreshed_at_ = 0;
    int64_t expires_at_ = 0;  // 0: no quota yet
    int64_t interval_ = 10;
    RuleStatistics statistics_;
};

}  // namespace passport::sample
