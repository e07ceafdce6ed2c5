#include "userspace/sample/sampler.hpp"

#include <memory>
#include <random>

#include "userspace/sample/wildcard.hpp"

namespace passport::sample {

UniformRandom default_uniform_random() {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

LocalSampler::LocalSampler(LocalRules rules, WallClock clock, UniformRandom random)
    : clock_(std::move(clock)), random_(std::move(random)) {
    rules_.reserve(rules.rules.size());
    for (LocalRule& rule : rules.rules) rules_.push_back(RuleState{std::move(rule)});
    default_.rule = std::move(rules.default_rule);
}

Decision LocalSampler::decide(const SampleRequest& request) {
    const auto since_epoch = clock_().time_since_epoch();
    // floor, not truncation, so the (theoretical) pre-1970 clock still changes second correctly.
    const int64_t now_second = std::chrono::floor<std::chrono::seconds>(since_epoch).count();

    RuleState* match = &default_;
    for (RuleState& state : rules_) {
        if (attribute_matches(state.rule.host, request.host) &&
            attribute_matches(state.rule.http_method, request.http_method) &&
            attribute_matches(state.rule.url_path, request.url_path)) {
            match = &state;
            break;
        }
    }
    return Decision{sample(*match, now_second), match->rule.name, DecisionSource::kRule};
}

bool LocalSampler::sample(RuleState& state, int64_t now_second) {
    if (now_second != state.second) {
        state.second = now_second;
        state.used = 0;
    }
    if (state.used < state.rule.fixed_target) {
        ++state.used;
        return true;
    }
    return random_() < state.rule.rate;
}

std::optional<bool> upstream_decision(xray::SampledFlag flag) {
    switch (flag) {
        case xray::SampledFlag::kSampled:
            return true;
        case xray::SampledFlag::kNotSampled:
            return false;
        case xray::SampledFlag::kRequested:
        case xray::SampledFlag::kAbsent:
            return std::nullopt;
    }
    return std::nullopt;
}

Decision decide_with_upstream(xray::SampledFlag upstream, Sampler& sampler,
                              const SampleRequest& request) {
    if (const auto decided = upstream_decision(upstream)) {
        return Decision{*decided, {}, DecisionSource::kUpstream};
    }
    return sampler.decide(request);
}

}  // namespace passport::sample
