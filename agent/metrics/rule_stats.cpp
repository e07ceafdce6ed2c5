#include "agent/metrics/rule_stats.hpp"

namespace passport::agent::metrics {
namespace {

uint64_t since(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

}  // namespace

void RuleStatsCollector::collect(const KernelRuleStats& now, const std::vector<std::string>& names,
                                 Counters& counters) {
    for (size_t i = 0; i < now.size(); i++) {
        const pp_sample_stat& n = now[i];
        const pp_sample_stat& b = last_[i];
        if (i < names.size() && !names[i].empty()) {
            const std::string& name = names[i];
            counters.add("sampling.rule_requests." + name, since(n.requests, b.requests));
            counters.add("sampling.rule_sampled." + name, since(n.sampled, b.sampled));
            counters.add("sampling.rule_borrowed." + name, since(n.borrowed, b.borrowed));
        }
    }
    last_ = now;
}

}  // namespace passport::agent::metrics
