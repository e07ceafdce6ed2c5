#include "userspace/redact/redact.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "userspace/common/text.hpp"

namespace passport::redact {
namespace {

using text::lower;
using text::to_lower;

// Words that mark a credential wherever they appear inside a word.
constexpr std::array<std::string_view, 11> kContained = {
    "token",      "secret", "password", "passwd", "passphrase",   "signature",
    "credential", "apikey", "session",  "sessid", "authorization"};
// Short words that mark a credential only as a whole word (so "monkey" is not a key).
constexpr std::array<std::string_view, 6> kWhole = {"key", "keys", "sig", "pwd", "pass", "auth"};

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }
bool is_upper(char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; }

// Words of a decoded name, lower-cased (see the header for the split rule).
std::vector<std::string> words_of(std::string_view name) {
    std::vector<std::string> words;
    std::string cur;
    for (size_t i = 0; i < name.size(); i++) {
        const char c = name[i];
        if (!is_alnum(c)) {
            if (!cur.empty()) words.push_back(std::move(cur));
            cur.clear();
            continue;
        }
        if (is_upper(c) && i > 0 && is_alnum(name[i - 1]) && !is_upper(name[i - 1]) &&
            !cur.empty()) {
            words.push_back(std::move(cur));
            cur.clear();
        }
        cur += lower(c);
    }
    if (!cur.empty()) words.push_back(std::move(cur));
    return words;
}

bool word_is_credential(const std::string& w) {
    for (auto k : kWhole)
        if (w == k) return true;
    for (auto k : kContained)
        if (w.find(k) != std::string::npos) return true;
    return false;
}

// Redacts the name=value items of a query or fragment (no leading '?' / '#').
std::string redact_params(std::string_view params, const Policy& policy) {
    std::string out;
    out.reserve(params.size());
    size_t start = 0;
    while (start <= params.size()) {
        size_t end = params.find_first_of("&;", start);
        if (end == std::string_view::npos) end = params.size();
        std::string_view item = params.substr(start, end - start);
        const size_t eq = item.find('=');
        if (eq != std::string_view::npos && eq + 1 < item.size() &&
            is_credential_name(item.substr(0, eq), policy)) {
            out.append(item.substr(0, eq + 1));
            out.append(kRedacted);
        } else {
            out.append(item);
        }
        if (end < params.size()) out += params[end];
        start = end + 1;
    }
    return out;
}

}  // namespace

std::string percent_decode(std::string_view s) { return text::percent_decode(s, true); }

bool is_credential_name(std::string_view name, const Policy& policy) {
    const std::string decoded = percent_decode(name);
    const std::string lowered = to_lower(decoded);
    if (lowered.rfind("x-amz-", 0) == 0) return true;
    for (const auto& extra : policy.extra_names)
        if (lowered == to_lower(extra)) return true;
    for (const auto& w : words_of(decoded))
        if (word_is_credential(w)) return true;
    return false;
}

std::string strip_userinfo(std::string_view url) {
    const size_t scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos || url.find_first_of("/?#") < scheme_end)
        return std::string(url);
    const size_t auth_start = scheme_end + 3;
    size_t auth_end = url.find_first_of("/?#", auth_start);
    if (auth_end == std::string_view::npos) auth_end = url.size();
    const size_t at = url.substr(auth_start, auth_end - auth_start).rfind('@');
    if (at == std::string_view::npos) return std::string(url);
    std::string out(url.substr(0, auth_start));
    out.append(url.substr(auth_start + at + 1));
    return out;
}

std::string redact_url(std::string_view raw, const Policy& policy) {
    std::string url = strip_userinfo(raw);
    if (!policy.enabled) return url;
    const size_t q = url.find_first_of("?#");
    if (q == std::string::npos) return url;
    std::string out = url.substr(0, q);
    std::string_view rest = std::string_view(url).substr(q);
    if (rest[0] == '?') {
        const size_t hash = rest.find('#');
        out += '?';
        out += redact_params(rest.substr(1, hash == std::string_view::npos ? rest.npos : hash - 1),
                             policy);
        rest = hash == std::string_view::npos ? std::string_view() : rest.substr(hash);
    }
    if (!rest.empty()) {
        out += '#';
        out += redact_params(rest.substr(1), policy);
    }
    return out;
}

std::vector<std::string> redact_args(const std::vector<std::string>& argv, const Policy& policy) {
    std::vector<std::string> out = argv;
    if (!policy.enabled) return out;
    for (size_t i = 1; i < out.size(); i++) {
        std::string& a = out[i];
        if (a.find("://") != std::string::npos) {
            a = redact_url(a, policy);
            continue;
        }
        const size_t dashes = a.find_first_not_of('-');
        if (dashes == std::string::npos) continue;
        const size_t eq = a.find('=');
        if (eq != std::string::npos) {
            if (eq > dashes && eq + 1 < a.size() &&
                is_credential_name(std::string_view(a).substr(dashes, eq - dashes), policy))
                a = a.substr(0, eq + 1) + std::string(kRedacted);
            continue;
        }
        if (dashes > 0 && i + 1 < out.size() && !out[i + 1].empty() && out[i + 1][0] != '-' &&
            is_credential_name(std::string_view(a).substr(dashes), policy)) {
            out[++i] = std::string(kRedacted);
        }
    }
    return out;
}

}  // namespace passport::redact
