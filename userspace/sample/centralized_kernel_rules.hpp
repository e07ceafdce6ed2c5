#pragma once
// Centralized rules compiled for the kernel (bpf/lib/sample.bpf.h). The first rules in match
// order go to sample_rules: fixed_target = the quota X-Ray granted, `expires` = its TTL,
// `borrow` = no quota granted yet (and the rule has a reservoir), the rate from FixedRate.
// Service name and type are not visible to the kernel, so rules that name them are selected per
// process through masks (sample_proc_rules):
//  - without such rules, every rule applies to every process (default_mask) and "Default" is the
//    kernel's default rule;
//  - with them, default_mask holds only the rules before the first service-specific one, and
//    "Default" becomes an ordinary rule at the end whose bit only per-process masks carry;
//    cfg.overflow makes a process without a mask defer to userspace when none of its rules
//    match, so it never gets a later rule's decision that the full rules would not give it.
// Patterns longer than PP_GLOB_MAX compile as deferred (userspace decides those requests).
#include <cstdint>
#include <string_view>
#include <vector>

#include "userspace/sample/centralized_sampler.hpp"
#include "userspace/sample/kernel_rules.hpp"

namespace passport::sample {

// `kernel_decides` false: cfg.enabled = 0, every request is left to userspace.
KernelRules compile_centralized_kernel_rules(const std::vector<CentralizedRuleState>& rules,
                                             bool kernel_decides);

// The sample_proc_rules mask of a process: every kernel rule its service name and type match
// (an empty service type matches any pattern, as in the SDKs), "Default" included.
uint32_t process_rule_mask(const std::vector<CentralizedRuleState>& rules,
                           const KernelRules& compiled, std::string_view service_name,
                           std::string_view service_type);

// Whether a rule matches only some processes (ServiceName or ServiceType other than "*").
bool service_specific(const CentralizedRule& rule);

}  // namespace passport::sample
