#pragma once
// X-Ray local sampling rules (AWS X-Ray Developer Guide, "Configuring sampling rules"): the JSON
// file format the SDKs accept as their local fallback, parsed and validated into LocalRules. The
// agent loads the file at startup (bad files are configuration errors, reported as Result errors);
// LocalSampler applies the rules.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/common/result.hpp"

namespace passport::sample {

struct LocalRule {
    std::string name;  // "Default", the rule's description, or "rule-<n>" (1-based) without one
    // Patterns matched case-insensitively with * and ?; empty only on the default rule.
    std::string host;  // v1 rules: their service_name (the SDKs copy it to host)
    std::string http_method;
    std::string url_path;
    uint32_t fixed_target = 0;  // requests sampled per wall-clock second before `rate` applies
    double rate = 0;            // 0..1
};

struct LocalRules {
    int version = 2;
    LocalRule default_rule;        // used when no rule matches
    std::vector<LocalRule> rules;  // tried in file order
};

inline constexpr std::string_view kDefaultRuleName = "Default";

// The SDKs' built-in rules: no rules, default {fixed_target 1, rate 0.05} ("the first request
// each second, then 5 %").
LocalRules default_local_rules();

// Parses a rules document. Version must be 1 or 2; `default` is required and may only carry
// fixed_target and rate; v2 rules need host, http_method and url_path (no service_name), v1
// rules need service_name, http_method and url_path (no host); fixed_target is an integer >= 0
// and rate a number in [0, 1]. Unknown keys are ignored, as the SDKs do.
Result<LocalRules> parse_local_rules(std::string_view json_text);

// Reads and parses a rules file.
Result<LocalRules> load_local_rules(const std::string& path);

}  // namespace passport::sample
