#pragma once
// The kernel's per-rule sampling statistics (map sample_stats: requests, sampled, borrowed per
// rule index) as exit counters named by rule, which /metrics shows as
// passport_sampling_rule_{requests,sampled,borrowed}_total{rule="<name>"}. The kernel counts per
// index since load; a rule's name at an index changes when the rules do, so what is added under a
// name is what the kernel counted since the previous collection, read while that name held the
// index (collect before the rules change).
#include <array>
#include <string>
#include <vector>

#include "passport/abi.h"
#include "userspace/common/counters.hpp"

namespace passport::agent::metrics {

using KernelRuleStats = std::array<pp_sample_stat, PP_MAX_SAMPLE_RULES + 1>;

class RuleStatsCollector {
  public:
    // Adds to `counters` what each rule counted since the previous call. names[i]: the rule at
    // kernel index i (PP_MAX_SAMPLE_RULES: the default rule); an index without a name is skipped.
    void collect(const KernelRuleStats& now, const std::vector<std::string>& names,
                 Counters& counters);

  private:
    KernelRuleStats last_{};
};

}  // namespace passport::agent::metrics
