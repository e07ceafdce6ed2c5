#include "userspace/sample/centralized_kernel_rules.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "userspace/sample/wildcard.hpp"

namespace passport::sample {
namespace {

bool put(const std::string& pattern, char (&dst)[PP_GLOB_MAX], __u8& len) {
    if (pattern.size() > PP_GLOB_MAX) return false;
    std::memcpy(dst, pattern.data(), pattern.size());
    len = static_cast<__u8>(pattern.size());
    return true;
}

pp_sample_rule compile(const CentralizedRuleState& s, bool& ok) {
    pp_sample_rule out{};
    const double rate = std::clamp(s.fixed_rate, 0.0, 1.0);
    out.rate_all = rate >= 1.0 ? 1 : 0;
    out.rate_u32 = out.rate_all ? 0xffffffffu : static_cast<__u32>(std::floor(rate * 4294967296.0));
    if (s.rule.reservoir_size > 0) {
        // A granted quota until its TTL; before one is granted (or after it ends), the kernel
        // borrows one a second.
        out.fixed_target = s.quota_expires > 0 ? s.quota : 0;
        out.expires = static_cast<__u32>(
            std::clamp<int64_t>(s.quota_expires, 0, std::numeric_limits<__u32>::max()));
        out.borrow = s.quota_expires > 0 ? 0 : 1;
    }
    ok = s.rule.name == kCentralizedDefaultRule ||
         (put(s.rule.host, out.host, out.host_len) &&
          put(s.rule.http_method, out.method, out.method_len) &&
          put(s.rule.url_path, out.path, out.path_len));
    if (!ok) {
        out = pp_sample_rule{};
        out.deferred = 1;
    }
    return out;
}

}  // namespace

bool service_specific(const CentralizedRule& rule) {
    return rule.service_name != "*" || rule.service_type != "*";
}

KernelRules compile_centralized_kernel_rules(const std::vector<CentralizedRuleState>& rules,
                                             bool kernel_decides) {
    KernelRules k;
    k.names.assign(PP_MAX_SAMPLE_RULES + 1, std::string());
    const CentralizedRuleState* deflt = nullptr;
    std::vector<const CentralizedRuleState*> ordinary;
    for (const CentralizedRuleState& s : rules) {
        if (s.rule.name == kCentralizedDefaultRule) {
            deflt = &s;
        } else {
            ordinary.push_back(&s);
        }
    }
    const bool per_process = std::any_of(ordinary.begin(), ordinary.end(),
                                         [](const auto* s) { return service_specific(s->rule); });
    bool before_specific = true;
    for (const CentralizedRuleState* s : ordinary) {
        if (k.rules.size() == PP_MAX_SAMPLE_RULES) {
            k.cfg.overflow = 1;
            k.deferred += ordinary.size() - PP_MAX_SAMPLE_RULES;
            break;
        }
        bool ok = true;
        const size_t i = k.rules.size();
        k.rules.push_back(compile(*s, ok));
        if (!ok) k.deferred++;
        k.names[i] = s->rule.name;
        if (service_specific(s->rule)) before_specific = false;
        if (!per_process || before_specific) k.cfg.default_mask |= 1u << i;
    }
    bool ok = true;
    if (deflt != nullptr) {
        k.default_rule = compile(*deflt, ok);
        k.names[PP_MAX_SAMPLE_RULES] = deflt->rule.name;
        if (per_process && k.rules.size() < PP_MAX_SAMPLE_RULES) {
            k.names[k.rules.size()] = deflt->rule.name;
            k.rules.push_back(k.default_rule);
        }
    } else {
        k.default_rule.deferred = 1;  // no "Default" from X-Ray: userspace's local rules decide
    }
    if (per_process) k.cfg.overflow = 1;
    k.cfg.rule_count = static_cast<__u32>(k.rules.size());
    k.cfg.enabled = kernel_decides ? 1 : 0;
    return k;
}

uint32_t process_rule_mask(const std::vector<CentralizedRuleState>& rules,
                           const KernelRules& compiled, std::string_view service_name,
                           std::string_view service_type) {
    uint32_t mask = 0;
    for (size_t i = 0; i < compiled.rules.size() && i < PP_MAX_SAMPLE_RULES; i++) {
        const std::string& name = compiled.names[i];
        const auto it = std::find_if(rules.begin(), rules.end(),
                                     [&](const auto& s) { return s.rule.name == name; });
        if (it == rules.end()) continue;
        if (name == kCentralizedDefaultRule ||
            (attribute_matches(it->rule.service_name, service_name) &&
             attribute_matches(it->rule.service_type, service_type)))
            mask |= 1u << i;
    }
    return mask;
}

}  // namespace passport::sample
