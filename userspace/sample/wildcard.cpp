#include "userspace/sample/wildcard.hpp"

#include "userspace/common/text.hpp"

namespace passport::sample {

using text::lower;

bool wildcard_match(std::string_view pattern, std::string_view text) {
    // Greedy scan remembering the last '*': on a mismatch, let that star absorb one more
    // character and retry. Each star restart advances the text, so the work is bounded.
    size_t p = 0;
    size_t t = 0;
    size_t star = std::string_view::npos;
    size_t star_text = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            star_text = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++star_text;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

bool attribute_matches(std::string_view pattern, std::string_view value) {
    return value.empty() || wildcard_match(pattern, value);
}

}  // namespace passport::sample
