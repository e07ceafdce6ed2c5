#pragma once
// Sampling decisions. Sampler is the interface the correlator calls once per inbound request
// that did not arrive with a decision; LocalSampler applies LocalRules (X-Ray SDK local rules
// file): first matching rule in file order, else the default; each rule samples `fixed_target`
// requests per wall-clock second, then a `rate` fraction. decide_with_upstream() puts the caller's
// Sampled= flag first. Single-threaded (the pipeline thread); clock and randomness are injected for
// tests.
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/sample/rules.hpp"
#include "userspace/xray/trace_header.hpp"

namespace passport::sample {

// What rules match on. Empty attributes match any pattern, as in the X-Ray SDKs.
struct SampleRequest {
    std::string_view host;  // Host header, without port
    std::string_view http_method;
    std::string_view url_path;        // path without query
    std::string_view service_name;    // segment name; for centralized rules (local ones ignore it)
    std::string_view service_type{};  // the segment's origin (AWS::EC2::Instance, ...); centralized
};

enum class DecisionSource : uint8_t {
    kUpstream,  // Sampled=1/0 from the incoming X-Amzn-Trace-Id
    kRule,      // a sampling rule (rule_name says which)
};

struct Decision {
    bool sampled = false;
    std::string rule_name;  // empty for upstream decisions
    DecisionSource source = DecisionSource::kRule;
};

using WallClock = std::function<std::chrono::system_clock::time_point()>;
// Uniform in [0, 1).
using UniformRandom = std::function<double()>;

UniformRandom default_uniform_random();

class Sampler {
  public:
    virtual ~Sampler() = default;
    virtual Decision decide(const SampleRequest& request) = 0;
};

class LocalSampler : public Sampler {
  public:
    explicit LocalSampler(LocalRules rules = default_local_rules(),
                          WallClock clock = std::chrono::system_clock::now,
                          UniformRandom random = default_uniform_random());

    Decision decide(const SampleRequest& request) override;

  private:
    struct RuleState {
        LocalRule rule;
        int64_t second = std::numeric_limits<int64_t>::min();  // the reservoir's current second
        uint32_t used = 0;                                     // reservoir hits in that second
    };

    bool sample(RuleState& state, int64_t now_second);

    std::vector<RuleState> rules_;
    RuleState default_;
    WallClock clock_;
    UniformRandom random_;
};

// Sampled=1 / Sampled=0 from upstream are followed as is, so a trace is recorded by every hop or
// by none; Sampled=? and no flag leave the decision to the rules.
std::optional<bool> upstream_decision(xray::SampledFlag flag);

// The full policy: the upstream flag when it decides, else sampler.decide(request). The sampler
// is not consulted (its reservoir not used) when upstream decides.
Decision decide_with_upstream(xray::SampledFlag upstream, Sampler& sampler,
                              const SampleRequest& request);

}  // namespace passport::sample
