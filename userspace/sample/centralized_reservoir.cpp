#include "userspace/sample/centralized_reservoir.hpp"

namespace passport::sample {

CentralizedReservoir::CentralizedReservoir(uint32_t capacity, double fixed_rate)
    : capacity_(capacity), fixed_rate_(fixed_rate) {}

bool CentralizedReservoir::sample(int64_t now_s, double random) {
    ++statistics_.requests;
    if (now_s != current_second_) {
        current_second_ = now_s;
        used_ = 0;
        borrowed_ = false;
    }
    if (now_s > expires_at_) {
        // No quota yet or it expired: borrow at most once per second so that a fleet of fresh
        // clients does not exceed the rule's reservoir by much, then the fixed rate.
        const bool already_borrowed = borrowed_;
        borrowed_ = true;
        if (!already_borrowed && capacity_ != 0) {
            ++statistics_.borrows;
            return true;
        }
    } else if (quota_ > used_) {
        ++used_;
        ++statistics_.sampled;
        return true;
    }
    if (random < fixed_rate_) {
        ++statistics_.sampled;
        return true;
    }
    return false;
}

void CentralizedReservoir::apply_target(const SamplingTarget& target, int64_t now_s) {
    fixed_rate_ = target.fixed_rate;
    if (target.reservoir_quota) quota_ = *target.reservoir_quota;
    if (target.reservoir_quota_ttl) expires_at_ = *target.reservoir_quota_ttl;
    if (target.interval) interval_ = *target.interval;
    refreshed_at_ = now_s;
}

void CentralizedReservoir::update_rule(uint32_t capacity, double fixed_rate) {
    capacity_ = capacity;
    fixed_rate_ = fixed_rate;
}

void CentralizedReservoir::add_statistics(const RuleStatistics& more) {
    statistics_.requests += more.requests;
    statistics_.sampled += more.sampled;
    statistics_.borrows += more.borrows;
}

bool CentralizedReservoir::needs_report(int64_t now_s) const {
    return statistics_.requests != 0 && now_s >= refreshed_at_ + interval_;
}

RuleStatistics CentralizedReservoir::take_statistics() {
    const RuleStatistics snapshot = statistics_;
    statistics_ = {};
    return snapshot;
}

}  // namespace passport::sample
