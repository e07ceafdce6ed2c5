#pragma once
// Small UTF-8 helpers for the X-Ray document writer: decoding one code point at a time and
// truncating by character count without splitting a code point. Strings written into documents
// come from untrusted traffic, so every function here accepts arbitrary bytes.
#include <cstddef>
#include <string>
#include <string_view>

namespace passport::xray {

struct CodePoint {
    char32_t value = 0;  // U+FFFD when !valid
    size_t length = 1;   // bytes consumed; always >= 1 so callers make progress
    bool valid = false;  // false for stray, overlong, surrogate or truncated sequences
};

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// Decodes the code point starting at text[pos]. Requires pos < text.size().
CodePoint decode_utf8(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of cp (which must be a Unicode scalar value).
void append_utf8(std::string& out, char32_t cp);

// The longest prefix of text holding at most max_chars characters, cut on a code point boundary.
// An invalid byte counts as one character (the JSON writer later replaces it with U+FFFD).
std::string_view truncate_utf8(std::string_view text, size_t max_chars);

// Number of characters as counted by truncate_utf8.
size_t count_utf8_chars(std::string_view text);

}  // namespace passport::xray
