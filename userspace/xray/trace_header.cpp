#include "userspace/xray/trace_header.hpp"

#include <algorithm>

#include "userspace/common/text.hpp"

namespace passport::xray {
namespace {

using text::iequals;
using text::to_lower;
using text::trim;

bool is_hex(char c) { return text::hex_value(c) >= 0; }

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool all_hex(std::string_view s) { return std::all_of(s.begin(), s.end(), is_hex); }

bool all_zero(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// Extras are re-emitted in outgoing headers, so only visible ASCII survives: no CR/LF or other
// controls that could split a header, and no separators that would change the parse.
bool is_safe_extra_text(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return c > 0x20 && c < 0x7F && c != ';' && c != ',';
    });
}

void set_extra(TraceHeaderExtras& extras, std::string_view key, std::string_view value) {
    for (auto& [k, v] : extras) {
        if (k == key) {
            v = std::string(value);
            return;
        }
    }
    extras.emplace_back(std::string(key), std::string(value));
}

size_t extras_bytes(const TraceHeaderExtras& extras) {
    size_t n = 0;
    for (const auto& [k, v] : extras) n += k.size() + v.size();
    return n;
}

}  // namespace

bool is_valid_trace_id(std::string_view id) {
    if (id.size() != 35 || id[0] != '1' || id[1] != '-' || id[10] != '-') return false;
    const std::string_view epoch = id.substr(2, 8);
    const std::string_view random = id.substr(11, 24);
    return all_hex(epoch) && all_hex(random) && !all_zero(random);
}

bool is_valid_segment_id(std::string_view id) {
    return id.size() == 16 && all_hex(id) && !all_zero(id);
}

TraceHeader parse_trace_header(std::string_view value) {
    TraceHeader header;
    if (value.size() > kMaxTraceHeaderLength) return header;

    // Extras are collected with their order and last-wins semantics, then capped at the end so
    // that the cap applies to what is actually kept.
    TraceHeaderExtras extras;
    while (!value.empty()) {
        const size_t semi = value.find(';');
        const std::string_view part = trim(value.substr(0, semi));
        value = semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1);

        const size_t eq = part.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string_view key = trim(part.substr(0, eq));
        const std::string_view val = trim(part.substr(eq + 1));
        if (key.empty() || val.empty()) continue;

        if (iequals(key, "root")) {
            header.root = is_valid_trace_id(val) ? to_lower(val) : std::string();
        } else if (iequals(key, "parent")) {
            // An invalid Parent is ignored rather than clearing an earlier valid one: the SDKs
            // only ever send one, so this only matters for hostile input.
            if (is_valid_segment_id(val)) header.parent = to_lower(val);
        } else if (iequals(key, "sampled")) {
            if (val == "1") {
                header.sampled = SampledFlag::kSampled;
            } else if (val == "0") {
                header.sampled = SampledFlag::kNotSampled;
            } else if (val == "?") {
                header.sampled = SampledFlag::kRequested;
            }
        } else if (iequals(key, "self")) {
            // Added by ALB; describes the load balancer's own hop and is never propagated.
        } else if (is_safe_extra_text(key) && is_safe_extra_text(val)) {
            set_extra(extras, key, val);
        }
    }

    // Keep extras in order while they fit; the first one that would overflow the cap ends the
    // list, as the X-Ray SDK for Node.js does (Foo kept, a following 251-byte Baz dropped).
    for (auto& kv : extras) {
        if (extras_bytes(header.extras) + kv.first.size() + kv.second.size() >
            kMaxTraceHeaderExtraBytes) {
            break;
        }
        header.extras.push_back(std::move(kv));
    }
    return header;
}

std::string format_trace_header(std::string_view root, std::string_view parent, bool sampled,
                                const TraceHeaderExtras& extras) {
    std::string out;
    out.reserve(80 + extras_bytes(extras) + 2 * extras.size());
    out += "Root=";
    out += root;
    out += ";Parent=";
    out += parent;
    out += sampled ? ";Sampled=1" : ";Sampled=0";
    for (const auto& [k, v] : extras) {
        out += ';';
        out += k;
        out += '=';
        out += v;
    }
    return out;
}

std::string format_response_trace_header(std::string_view root, bool sampled) {
    std::string out = "Root=";
    out += root;
    out += sampled ? ";Sampled=1" : ";Sampled=0";
    return out;
}

TraceHeader parse_traceparent(std::string_view value) {
    TraceHeader header;
    value = trim(value);
    // version(2) - trace id(32) - parent id(16) - flags(2) = 55 characters. Versions after 00
    // may append fields after another '-'; version ff is forbidden.
    if (value.size() < 55 || value.size() > 512) return header;
    const std::string_view version = value.substr(0, 2);
    const std::string_view trace_id = value.substr(3, 32);
    const std::string_view parent_id = value.substr(36, 16);
    const std::string_view flags = value.substr(53, 2);
    if (value[2] != '-' || value[35] != '-' || value[52] != '-') return header;
    const auto lower_hex = [](std::string_view s) {
        return std::all_of(s.begin(), s.end(), is_lower_hex);
    };
    if (!lower_hex(version) || !lower_hex(trace_id) || !lower_hex(parent_id) || !lower_hex(flags)) {
        return header;
    }
    if (version == "ff") return header;
    if (version == "00" && value.size() != 55) return header;
    if (version != "00" && value.size() > 55 && value[55] != '-') return header;
    if (all_zero(trace_id) || all_zero(parent_id)) return header;

    const std::string root =
        "1-" + std::string(trace_id.substr(0, 8)) + "-" + std::string(trace_id.substr(8));
    // A W3C id whose last 24 digits are zero is not a usable X-Ray id.
    if (!is_valid_trace_id(root)) return header;
    header.root = root;
    header.parent = std::string(parent_id);
    const int flag_bits = std::stoi(std::string(flags), nullptr, 16);
    header.sampled = (flag_bits & 1) != 0 ? SampledFlag::kSampled : SampledFlag::kNotSampled;
    return header;
}

std::string format_traceparent(std::string_view root, std::string_view parent, bool sampled) {
    if (!is_valid_trace_id(root) || !is_valid_segment_id(parent)) return {};
    std::string out = "00-";
    out += to_lower(root.substr(2, 8));
    out += to_lower(root.substr(11));
    out += '-';
    out += to_lower(parent);
    out += sampled ? "-01" : "-00";
    return out;
}

}  // namespace passport::xray
