#pragma once
// What a document says about an exchange's callee and its timing, where the X-Ray SDKs' habits
// and the truth could differ (docs/xray-mapping.md, "What a call subsegment claims"):
//  - `http.response.content_length` is the length of the body the response carried: 0 for a
//    response that has none by definition (a HEAD request's, 204, 304), whatever its
//    Content-Length header announces;
//  - a call that opened its connection starts at the connect() call, as the SDKs' subsegments
//    start before the socket exists; a later request on a kept-alive connection starts at its
//    first write;
//  - `http.request.traced` is written only when a segment whose parent is the call is known to
//    exist: CalleeParents remembers which call ids a request served on this node named as its
//    parent.
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "userspace/pairing/http_exchange.hpp"

namespace passport::correlate {

// RFC 9110 §6.4.1: a response to HEAD, and every 1xx, 204 and 304 response, has no content.
bool response_has_no_body(std::string_view request_method, int status);

// The value of `http.response.content_length`: 0 when the response has no body by definition;
// else its Content-Length header; else, for a complete response with a body, the body's length
// as framed (chunked, or delimited by the close). Nothing without a response.
std::optional<uint64_t> response_content_length(const pairing::HttpExchange& ex);

// When the document of `ex` starts (CLOCK_MONOTONIC ns): for a call that is the first request on
// a connection the process opened with connect(), the entry of that connect(); otherwise the
// exchange's request_start_ns (the first write of a call, the first read of a served request).
uint64_t exchange_start_ns(const pairing::HttpExchange& ex);

// Call (subsegment) ids that requests served on this node named as their parent in the trace
// header they arrived with (as the kernel or the parser read it). Bounded: the oldest go first.
class CalleeParents {
  public:
    explicit CalleeParents(size_t max_entries = 8192) : max_(max_entries) {}
    // A served request's header named `parent_hex` (16 hex digits; anything else is ignored).
    void note(std::string_view parent_hex);
    bool named(std::string_view subsegment_hex) const;
    size_t size() const { return ids_.size(); }

  private:
    size_t max_;
    std::unordered_set<uint64_t> ids_;
    std::deque<uint64_t> order_;
};

// Whether a call subsegment says `traced: true`: a segment naming it as parent is known to exist,
// because a server on this node was stitched under it (`stitched`) or a request served on this
// node arrived with its id as Parent (`named_by_callee`). Never merely because the call carried
// a trace header: a callee that traces nothing would leave the trace marked broken.
inline bool call_traced(bool stitched, bool named_by_callee) { return stitched || named_by_callee; }

}  // namespace passport::correlate
