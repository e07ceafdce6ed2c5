#pragma once
// X-Amzn-Trace-Id parsing and formatting, plus the W3C traceparent mapping. The correlator parses
// the header of every inbound request (untrusted bytes) and formats the header Passport
// propagates and returns. Parsing never fails: whatever is unusable is ignored, and a missing or
// invalid Root means "start a new trace". Every value that survives parsing is safe to put into
// a document or a header (validated hex ids; extras restricted to visible ASCII).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace passport::xray {

enum class SampledFlag : uint8_t {
    kAbsent,      // no usable Sampled= part: apply the sampling rules
    kSampled,     // Sampled=1
    kNotSampled,  // Sampled=0: do not record, but still propagate Sampled=0
    kRequested,   // Sampled=?: decide with the rules and return the decision in the response
};

// Inputs longer than this are treated as absent; keeps parsing work bounded per request. The
// X-Ray trace header's documented maximum length (XAmznTraceId, "Maximum length of 8192",
// https://docs.aws.amazon.com/lambda/latest/api/API_TraceHeader.html); the kernel's scan uses the
// same bound (PP_MAX_TRACE_HEADER in bpf/lib/ctx_parse.bpf.h).
inline constexpr size_t kMaxTraceHeaderLength = 8192;
// Sum of key + value lengths of the extra keys kept (the limit of the X-Ray SDK for Node.js,
// github.com/aws/aws-xray-sdk-node).
inline constexpr size_t kMaxTraceHeaderExtraBytes = 256;

using TraceHeaderExtras = std::vector<std::pair<std::string, std::string>>;

struct TraceHeader {
    std::string root;  // "1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy" lowercase, or empty (no usable root)
    std::string parent;  // 16 lowercase hex, or empty
    SampledFlag sampled = SampledFlag::kAbsent;
    TraceHeaderExtras
        extras;  // e.g. {"Lineage", "…"} in arrival order; never Root/Parent/Sampled/Self

    bool has_root() const { return !root.empty(); }
};

// True for "1-" + 8 hex + "-" + 24 hex with a non-zero random part. Accepts either hex case.
bool is_valid_trace_id(std::string_view id);
// True for 16 hex digits, not all zero. Accepts either hex case.
bool is_valid_segment_id(std::string_view id);

// Parses an X-Amzn-Trace-Id value. Keys are case-insensitive, parts may be padded with spaces
// and come in any order; malformed parts are skipped; for a repeated key the last one wins (as
// the X-Ray SDK for Node's processTraceData and OpenTelemetry's AWSXRayPropagator): a later
// malformed Root voids an earlier one, a malformed Parent or Sampled is ignored.
TraceHeader parse_trace_header(std::string_view value);

// The header Passport sends downstream: always Root=…;Parent=…;Sampled=0|1 in that order, then
// the extras. root and parent must be valid ids (from parse_trace_header or IdGenerator).
std::string format_trace_header(std::string_view root, std::string_view parent, bool sampled,
                                const TraceHeaderExtras& extras = {});

// The response header answering Sampled=? (what the Node SDK returns): Root=…;Sampled=0|1.
std::string format_response_trace_header(std::string_view root, bool sampled);

// W3C traceparent "00-<32 hex>-<16 hex>-<2 hex flags>" (https://www.w3.org/TR/trace-context/)
// mapped to X-Ray: root
// "1-" + tid[0:8] + "-" + tid[8:32], parent = span id, sampled from flag bit 0. Returns a header
// without root when the value is not a valid traceparent.
TraceHeader parse_traceparent(std::string_view value);

// The reverse mapping: "00-<root hex without dashes>-<parent>-0<sampled>". Empty when root or
// parent is invalid.
std::string format_traceparent(std::string_view root, std::string_view parent, bool sampled);

}  // namespace passport::xray
