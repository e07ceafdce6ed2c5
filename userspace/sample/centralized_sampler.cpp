#include "userspace/sample/centralized_sampler.hpp"

#include <algorithm>
#include <limits>
#include <map>

#include "userspace/sample/wildcard.hpp"

namespace passport::sample {

CentralizedSampler::CentralizedSampler(LocalRules local, WallClock clock, UniformRandom random)
    : local_rules_(local),
      local_(std::move(local), clock, random),
      clock_(std::move(clock)),
      random_(std::move(random)) {}

bool CentralizedSampler::matches(const CentralizedRule& rule, const SampleRequest& request) {
    if (rule.name == kCentralizedDefaultRule) return true;
    return attribute_matches(rule.host, request.host) &&
           attribute_matches(rule.http_method, request.http_method) &&
           attribute_matches(rule.service_name, request.service_name) &&
           attribute_matches(rule.url_path, request.url_path) &&
           attribute_matches(rule.service_type, request.service_type);
}

bool CentralizedSampler::in_force(int64_t now_s) const {
    return centralized_ && !rules_.empty() && now_s <= fetched_at_ + kCentralizedRulesTtlSeconds;
}

Decision CentralizedSampler::decide(const SampleRequest& request) {
    const int64_t now_s =
        std::chrono::floor<std::chrono::seconds>(clock_().time_since_epoch()).count();
    const std::lock_guard lock(mutex_);
    if (in_force(now_s)) {
        for (Rule& r : rules_) {
            if (!matches(r.rule, request)) continue;
            return Decision{r.reservoir.sample(now_s, random_()), r.rule.name,
                            DecisionSource::kRule};
        }
    }
    return local_.decide(request);  // no centralized rule in force or none matched
}

void CentralizedSampler::set_rules(std::vector<CentralizedRule> rules, int64_t now_s) {
    sort_rules(rules);
    const std::lock_guard lock(mutex_);
    std::map<std::string, CentralizedReservoir> old;
    for (Rule& r : rules_) old.emplace(r.rule.name, r.reservoir);
    std::vector<Rule> next;
    next.reserve(rules.size());
    for (CentralizedRule& rule : rules) {
        CentralizedReservoir reservoir(rule.reservoir_size, rule.fixed_rate);
        if (auto it = old.find(rule.name); it != old.end()) {
            reservoir = it->second;
            reservoir.update_rule(rule.reservoir_size, rule.fixed_rate);
        }
        next.push_back(Rule{std::move(rule), reservoir});
    }
    rules_ = std::move(next);
    fetched_at_ = now_s;
}

void CentralizedSampler::apply_targets(const std::vector<TargetDocument>& targets, int64_t now_s) {
    const std::lock_guard lock(mutex_);
    for (const TargetDocument& t : targets) {
        for (Rule& r : rules_) {
            if (r.rule.name == t.rule_name) r.reservoir.apply_target(t.target, now_s);
        }
    }
}

void CentralizedSampler::set_centralized(bool on) {
    const std::lock_guard lock(mutex_);
    centralized_ = on;
}

void CentralizedSampler::set_local_rules(LocalRules local) {
    const std::lock_guard lock(mutex_);
    local_rules_ = local;
    local_ = LocalSampler(std::move(local), clock_, random_);
}

void CentralizedSampler::add_statistics(const std::string& rule_name,
                                        const RuleStatistics& counts) {
    const std::lock_guard lock(mutex_);
    for (Rule& r : rules_) {
        if (r.rule.name == rule_name) r.reservoir.add_statistics(counts);
    }
}

std::vector<StatisticsDocument> CentralizedSampler::take_due_statistics(
    int64_t now_s, const std::string& client_id) {
    const std::lock_guard lock(mutex_);
    std::vector<StatisticsDocument> out;
    for (Rule& r : rules_) {
        if (out.size() == kMaxStatisticsPerRequest) break;
        if (!r.reservoir.needs_report(now_s)) continue;
        out.push_back(
            StatisticsDocument{r.rule.name, client_id, r.reservoir.take_statistics(), now_s});
    }
    return out;
}

int64_t CentralizedSampler::next_report_due() const {
    const std::lock_guard lock(mutex_);
    int64_t due = std::numeric_limits<int64_t>::max();
    for (const Rule& r : rules_) due = std::min(due, r.reservoir.report_due());
    return due;
}

bool CentralizedSampler::centralized(int64_t now_s) const {
    const std::lock_guard lock(mutex_);
    return in_force(now_s);
}

int64_t CentralizedSampler::rules_fetched_at() const {
    const std::lock_guard lock(mutex_);
    return fetched_at_;
}

size_t CentralizedSampler::rule_count() const {
    const std::lock_guard lock(mutex_);
    return rules_.size();
}

std::vector<CentralizedRuleState> CentralizedSampler::rule_states() const {
    const std::lock_guard lock(mutex_);
    std::vector<CentralizedRuleState> out;
    out.reserve(rules_.size());
    for (const Rule& r : rules_) {
        out.push_back(CentralizedRuleState{r.rule, r.reservoir.fixed_rate(), r.reservoir.quota(),
                                           r.reservoir.quota_expires()});
    }
    return out;
}

LocalRules CentralizedSampler::local_rules() const {
    const std::lock_guard lock(mutex_);
    return local_rules_;
}

}  // namespace passport::sample
