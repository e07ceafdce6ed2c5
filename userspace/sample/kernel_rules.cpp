#include "userspace/sample/kernel_rules.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace passport::sample {
namespace {

bool put_pattern(const std::string& pattern, char (&dst)[PP_GLOB_MAX], __u8& len) {
    if (pattern.size() > PP_GLOB_MAX) return false;
    std::memcpy(dst, pattern.data(), pattern.size());
    len = static_cast<__u8>(pattern.size());
    return true;
}

pp_sample_rule compile(const LocalRule& r, bool& ok) {
    pp_sample_rule out{};
    out.fixed_target = r.fixed_target;
    const double rate = std::clamp(r.rate, 0.0, 1.0);
    out.rate_all = rate >= 1.0 ? 1 : 0;
    // sampled when a uniform 32-bit random number is below rate * 2^32
    out.rate_u32 = out.rate_all ? 0xffffffffu : static_cast<__u32>(std::floor(rate * 4294967296.0));
    ok = put_pattern(r.host, out.host, out.host_len) &&
         put_pattern(r.http_method, out.method, out.method_len) &&
         put_pattern(r.url_path, out.path, out.path_len);
    if (!ok) {
        out = pp_sample_rule{};
        out.deferred = 1;
    }
    return out;
}

}  // namespace

KernelRules compile_kernel_rules(const LocalRules& rules) {
    KernelRules k;
    k.names.assign(PP_MAX_SAMPLE_RULES + 1, std::string());
    for (size_t i = 0; i < rules.rules.size(); i++) {
        if (i >= PP_MAX_SAMPLE_RULES) {
            k.cfg.overflow = 1;
            k.deferred += rules.rules.size() - PP_MAX_SAMPLE_RULES;
            break;
        }
        bool ok = true;
        k.rules.push_back(compile(rules.rules[i], ok));
        if (!ok) k.deferred++;
        k.names[i] = rules.rules[i].name;
    }
    bool ok = true;
    k.default_rule =
        compile(rules.default_rule, ok);  // the default has no patterns: always compiles
    k.names[PP_MAX_SAMPLE_RULES] = rules.default_rule.name;
    k.cfg.rule_count = static_cast<__u32>(k.rules.size());
    k.cfg.enabled = 1;
    k.cfg.default_mask = ~__u32{0};  // local rules do not name services: every process
    return k;
}

}  // namespace passport::sample
