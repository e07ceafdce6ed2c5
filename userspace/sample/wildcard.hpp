#pragma once
// Case-insensitive wildcard matching as X-Ray sampling rules use it (sdk-go pattern/wildcard.go):
// '*' matches any run of characters (also none), '?' exactly one. Used by the local rules and,
// later, by centralized rules. Patterns and text are ASCII-folded only.
#include <string_view>

namespace passport::sample {

// An empty pattern matches only empty text. Runs in O(pattern * text) worst case, without
// recursion, so hostile request paths cannot blow the stack or time.
bool wildcard_match(std::string_view pattern, std::string_view text);

// The X-Ray SDKs' rule-matching convention (aws-xray-sdk-node local_sampler.js and
// sampling_rule.js): an empty request attribute matches any pattern.
bool attribute_matches(std::string_view pattern, std::string_view value);

}  // namespace passport::sample
