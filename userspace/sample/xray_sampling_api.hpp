#pragma once
// The JSON documents of X-Ray centralized sampling, as the X-Ray daemon's TCP proxy passes them
// to and from the X-Ray API (POST /GetSamplingRules and POST /SamplingTargets):
//   https://docs.aws.amazon.com/xray/latest/api/API_GetSamplingRules.html
//   https://docs.aws.amazon.com/xray/latest/api/API_GetSamplingTargets.html
//   https://docs.aws.amazon.com/xray/latest/api/API_SamplingRule.html
//   https://docs.aws.amazon.com/xray/latest/api/API_SamplingTargetDocument.html
//   https://docs.aws.amazon.com/xray/latest/api/API_SamplingStatisticsDocument.html
// Timestamps are epoch seconds (JSON numbers). Pure functions: no I/O.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/common/result.hpp"
#include "userspace/sample/centralized_reservoir.hpp"

namespace passport::sample {

// Answers larger than this are refused (a rules page is a few KiB; X-Ray allows 25 targets).
inline constexpr size_t kMaxSamplingResponseBytes = size_t{1} << 20;
inline constexpr std::string_view kGetSamplingRulesPath = "/GetSamplingRules";
inline constexpr std::string_view kSamplingTargetsPath = "/SamplingTargets";
// GetSamplingTargets accepts at most this many statistics documents per call.
inline constexpr size_t kMaxStatisticsPerRequest = 25;

// One SamplingRule the agent can apply.
struct CentralizedRule {
    std::string name;
    int64_t priority = 0;  // lower first; ties by name
    double fixed_rate = 0;
    uint32_t reservoir_size = 0;
    std::string service_name;
    std::string service_type;
    std::string host;
    std::string http_method;
    std::string url_path;
};

inline constexpr std::string_view kCentralizedDefaultRule = "Default";  // reserved by X-Ray

struct SamplingRulesPage {
    std::vector<CentralizedRule> rules;
    // Records left out, with why (as the X-Ray SDKs skip them): a Version other than 1, a
    // ResourceARN other than "*" or Attributes (Passport has no resource ARN or attributes to
    // match), missing or mistyped fields.
    std::vector<std::string> skipped;
    std::string next_token;  // "" on the last page
};

// The GetSamplingRules request body: {} or {"NextToken": ...}.
std::string sampling_rules_request(std::string_view next_token);

// A GetSamplingRules response. An error when the body is not JSON, not an object, too large, or
// SamplingRuleRecords is not an array; single bad records are skipped (listed in `skipped`).
Result<SamplingRulesPage> parse_sampling_rules(std::string_view body);

// Rules in the order they are tried: Priority, then RuleName.
void sort_rules(std::vector<CentralizedRule>& rules);

struct TargetDocument {
    std::string rule_name;
    SamplingTarget target;
};

struct SamplingTargetsResponse {
    std::vector<TargetDocument> targets;
    std::optional<int64_t> last_rule_modification;  // epoch seconds
    std::vector<std::string> unprocessed;           // "rule: code message"
};

// A GetSamplingTargets response. An error when the body is not a JSON object, too large, or a
// SamplingTargetDocument lacks RuleName or FixedRate.
Result<SamplingTargetsResponse> parse_sampling_targets(std::string_view body);

// One SamplingStatisticsDocument.
struct StatisticsDocument {
    std::string rule_name;
    std::string client_id;
    RuleStatistics counts;
    int64_t timestamp = 0;  // epoch seconds
};

// The GetSamplingTargets request body.
std::string sampling_targets_request(const std::vector<StatisticsDocument>& documents);

// A ClientID as the X-Ray SDKs make one: 24 lowercase hex digits (12 random bytes).
std::string new_client_id();

}  // namespace passport::sample
