#pragma once
// Local sampling rules compiled for the kernel (bpf/lib/sample.bpf.h), which decides sampling
// for the traces it mints so the decision is known before the serving thread calls downstream.
// A rule the kernel cannot hold (a pattern longer than PP_GLOB_MAX, or beyond the first
// PP_MAX_SAMPLE_RULES rules) is compiled as "deferred": a request that reaches it in rule order
// is left undecided by the kernel (Sampled unknown) and userspace decides it with the same rules,
// as before. The kernel's rule index names the rule through `names`.
#include <cstddef>
#include <string>
#include <vector>

#include "passport/abi.h"
#include "userspace/sample/rules.hpp"

namespace passport::sample {

struct KernelRules {
    std::vector<pp_sample_rule> rules;  // at most PP_MAX_SAMPLE_RULES
    pp_sample_rule default_rule{};
    pp_sample_cfg cfg{};
    // Rule name by kernel index; names[PP_MAX_SAMPLE_RULES] is the default rule's.
    std::vector<std::string> names;
    size_t deferred = 0;  // rules the kernel cannot evaluate (incl. those beyond the limit)
};

KernelRules compile_kernel_rules(const LocalRules& rules);

}  // namespace passport::sample
