// libFuzzer target: X-Ray sampling API answers (userspace/sample/xray_sampling_api.*) as they
// arrive from the daemon's proxy, and what the agent builds from them. Checked: no crash or
// exception; every rule kept has a name, a rate in [0, 1]; the rules compile for the kernel
// within its limits; a request body built from the parsed names is JSON again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "userspace/sample/centralized_kernel_rules.hpp"
#include "userspace/sample/xray_sampling_api.hpp"

namespace {

using namespace passport::sample;

void check(bool ok) {
    if (!ok) std::abort();
}

void rules(std::string_view body) {
    auto page = parse_sampling_rules(body);
    if (!page) return;
    std::vector<CentralizedRuleState> states;
    for (const CentralizedRule& r : page->rules) {
        check(!r.name.empty());
        check(r.fixed_rate >= 0 && r.fixed_rate <= 1);
        states.push_back(CentralizedRuleState{r, r.fixed_rate, r.reservoir_size, 0});
    }
    sort_rules(page->rules);
    const KernelRules k = compile_centralized_kernel_rules(states, true);
    check(k.rules.size() <= PP_MAX_SAMPLE_RULES);
    check(k.cfg.rule_count == k.rules.size());
    for (const CentralizedRuleState& s : states)
        (void)process_rule_mask(states, k, s.rule.service_name, s.rule.service_type);
    check(!nlohmann::json::parse(sampling_rules_request(page->next_token), nullptr, false)
               .is_discarded());
}

void targets(std::string_view body) {
    auto t = parse_sampling_targets(body);
    if (!t) return;
    std::vector<StatisticsDocument> docs;
    for (const TargetDocument& d : t->targets) {
        check(d.target.fixed_rate >= 0 && d.target.fixed_rate <= 1);
        docs.push_back(StatisticsDocument{d.rule_name, "0123456789abcdef01234567", {1, 1, 0}, 1});
    }
    check(!nlohmann::json::parse(sampling_targets_request(docs), nullptr, false).is_discarded());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    rules(body);
    targets(body);
    return 0;
}
