#pragma once
// Segment/Subsegment -> X-Ray JSON documents and daemon datagrams. The only place Passport writes
// X-Ray JSON: the correlator builds the model (segment.hpp), the pipeline calls
// serialize_documents() and hands each datagram to an exporter::Emitter.
//
// Output rules (AWS X-Ray Developer Guide, "AWS X-Ray segment documents"):
// - compact JSON with the top-level "id" first (the daemon finds a rejected document by regex
//   on "id":"…"); times as epoch seconds with exactly 6 decimals;
// - empty optional fields omitted; error/throttle/fault only when true;
// - every segment gets aws.xray {sdk:"Passport", sdk_version, auto_instrumentation:true};
// - names sanitised to the service's character set, strings capped (limits below);
// - a datagram is kDatagramHeader "\n" body and never exceeds max_datagram bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/xray/segment.hpp"

namespace passport::xray {

inline constexpr std::string_view kDatagramHeader = R"({"format":"json","version":1})";
// The service limit is 64 kB per document (AWS X-Ray segment documents page); 64 000 leaves
// room under the daemon's 65 536-byte read buffer and the 65 507-byte IPv4 UDP payload.
inline constexpr size_t kMaxDatagramSize = 64000;
inline constexpr size_t kMaxNameLength = 200;    // characters: the "name" field's limit
inline constexpr size_t kMaxStringLength = 250;  // characters: any other string field's limit
// URLs get the general string limit too. Past it, the query and fragment go first (they are
// what makes URLs long and carry no service-map meaning), then the path is cut.
inline constexpr size_t kMaxUrlLength = kMaxStringLength;
inline constexpr std::string_view kSdkName = "Passport";
inline constexpr std::string_view kDefaultName = "unknown";

// Counter names bumped by serialize_documents().
inline constexpr std::string_view kCounterDocumentTruncated = "xray.document_truncated";
inline constexpr std::string_view kCounterDocumentDropped = "xray.document_dropped";
inline constexpr std::string_view kCounterSubsegmentsStreamed = "xray.subsegments_streamed";

// "1795480050.858123": fixed 6 decimals. Non-finite or negative values become 0.
std::string format_time(double epoch_seconds);
// The same, appended to out.
void append_time(std::string& out, double epoch_seconds);

// Unix-epoch nanoseconds -> the model's double seconds, truncated to whole microseconds first.
// At today's epoch a double resolves only ~0.24 us, so ns / 1e9 can print as the next
// microsecond; a whole-microsecond value always prints back exactly.
double epoch_seconds_from_ns(uint64_t unix_ns);

// Keeps Unicode letters and digits, whitespace (as ' ') and _ . : / % & # = + \ - @; drops
// everything else including invalid UTF-8; trims; cuts to kMaxNameLength characters on a code
// point boundary. Returns fallback when nothing is left.
std::string sanitize_name(std::string_view name, std::string_view fallback = kDefaultName);

// Caps a URL at max_chars characters: first without query/fragment, then cut.
std::string truncate_url(std::string_view url, size_t max_chars = kMaxUrlLength);
// The same as a view of url (a prefix of it).
std::string_view truncate_url_view(std::string_view url, size_t max_chars = kMaxUrlLength);

// Sets the flags an HTTP status implies (X-Ray's errors and faults): 4xx error, 429 throttle +
// error, 5xx fault. Never clears a flag, so flags from other causes (a transport error) compound.
void apply_http_status(int status, bool& error, bool& throttle, bool& fault);

// Appends s as a JSON string literal (quotes included): control characters escaped, invalid
// UTF-8 replaced by U+FFFD, other non-ASCII kept as UTF-8 (the same text nlohmann::json's dump
// with error_handler_t::replace writes).
void append_json_string(std::string& out, std::string_view s);

// Document bodies (no header line), subsegments embedded.
std::string to_json(const Segment& segment);
std::string to_json(const Subsegment& subsegment);
// An independent subsegment: adds type "subsegment", trace_id and parent_id (Appendix A3).
std::string to_independent_json(const Subsegment& subsegment, std::string_view trace_id,
                                std::string_view parent_id);

// kDatagramHeader + "\n" + body.
std::string make_datagram(std::string_view body);

// The whole segment, subsegments embedded, as one datagram written into `out` (cleared first, its
// capacity reused): kDatagramHeader "\n" and the body written straight after it, no copy.
// Returns false when that is over max_datagram; serialize_documents() then splits or cuts it.
bool write_datagram(const Segment& segment, std::string& out,
                    size_t max_datagram = kMaxDatagramSize);

// The datagrams for one finished segment, the segment's own document first. If everything fits
// in one datagram, that is the only one. Otherwise subsegments are embedded in file order while
// they fit and the rest are sent as independent subsegments (recursively, their children the
// same way). A document that cannot fit even alone is cut down (metadata dropped, then long
// strings in aws/sql/annotations/service shortened, then those blocks and the cause dropped) and
// counted as xray.document_truncated; one that still cannot fit (only with an absurdly small
// max_datagram) is counted as xray.document_dropped. No datagram is ever over max_datagram.
std::vector<std::string> serialize_documents(const Segment& segment,
                                             size_t max_datagram = kMaxDatagramSize,
                                             Counters* counters = nullptr);

}  // namespace passport::xray
