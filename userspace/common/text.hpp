#pragma once
// ASCII text functions shared by the parsers. HTTP header names, AWS values and X-Ray trace header
// keys are ASCII and compared case-insensitively without a locale (RFC 9110 section 5.1).
#include <cstddef>
#include <string>
#include <string_view>

namespace passport::text {

// 'A'-'Z' to 'a'-'z'; every other byte unchanged.
char lower(char c);

// `s` with 'A'-'Z' lowered.
std::string to_lower(std::string_view s);

// Equal ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b);

// Value of a hex digit, or -1 for any other byte.
int hex_value(char c);

// Percent-decoding (RFC 3986 section 2.1); `plus_is_space` for form bodies and query strings.
// Invalid escapes are kept as they are. Stops once the output holds `max_out` bytes.
std::string percent_decode(std::string_view s, bool plus_is_space,
                           size_t max_out = std::string::npos);

// `s` without leading and trailing spaces and tabs (HTTP optional whitespace, RFC 9110
// section 5.6.3).
std::string_view trim(std::string_view s);

}  // namespace passport::text
