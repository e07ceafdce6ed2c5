// libFuzzer target: the X-Amzn-Trace-Id and W3C traceparent parsers (userspace/xray/
// trace_header.*). Checked: whatever survives parsing is valid (ids, extras of visible ASCII
// within the cap), and formatting what was parsed and parsing it again gives the same header
// (Root, Parent, Sampled, extras), for both header forms.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "userspace/xray/trace_header.hpp"

namespace {

using namespace passport::xray;

void check(bool ok) {
    if (!ok) std::abort();
}

bool visible(std::string_view s) {
    for (char c : s) {
        if (c <= 0x20 || c >= 0x7f || c == ';' || c == ',') return false;
    }
    return !s.empty();
}

void check_header(const TraceHeader& h) {
    if (h.has_root()) check(is_valid_trace_id(h.root));
    if (!h.parent.empty()) check(is_valid_segment_id(h.parent));
    size_t extra_bytes = 0;
    for (const auto& [k, v] : h.extras) {
        check(visible(k) && visible(v));
        extra_bytes += k.size() + v.size();
    }
    check(extra_bytes <= kMaxTraceHeaderExtraBytes);
}

void round_trip(const TraceHeader& h) {
    if (!h.has_root() || h.parent.empty()) return;
    for (bool sampled : {false, true}) {
        const TraceHeader again =
            parse_trace_header(format_trace_header(h.root, h.parent, sampled, h.extras));
        check(again.root == h.root && again.parent == h.parent && again.extras == h.extras);
        check(again.sampled == (sampled ? SampledFlag::kSampled : SampledFlag::kNotSampled));

        const TraceHeader w3c = parse_traceparent(format_traceparent(h.root, h.parent, sampled));
        check(w3c.root == h.root && w3c.parent == h.parent);
        check(w3c.sampled == (sampled ? SampledFlag::kSampled : SampledFlag::kNotSampled));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view value(reinterpret_cast<const char*>(data), size);
    const TraceHeader xray = parse_trace_header(value);
    check_header(xray);
    round_trip(xray);

    const TraceHeader w3c = parse_traceparent(value);
    check_header(w3c);
    check(w3c.extras.empty());
    check(w3c.has_root() == !w3c.parent.empty());
    if (w3c.has_root()) check(w3c.sampled != SampledFlag::kAbsent);
    round_trip(w3c);

    (void)is_valid_trace_id(value);
    (void)is_valid_segment_id(value);
    return 0;
}
