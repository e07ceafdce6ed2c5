#pragma once
// HTTP/1.x messages as the parser hands them on: the start line, headers in arrival order (names
// kept as sent; look them up case-insensitively with find_header), and body framing facts. Bodies
// are not kept, X-Ray needs only lengths; the one exception is a bounded body prefix for the few
// messages the parser is told to keep one for (AWS API calls, whose resource names live in the
// body: see ParserLimits::keep_request_body).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace passport::protocol::http1 {

using Headers = std::vector<std::pair<std::string, std::string>>;

// First header whose name equals `name` ignoring ASCII case, or nullptr.
const std::string* find_header(const Headers& headers, std::string_view name);

// Which bodies of an exchange to keep a prefix of (see ParserLimits::body_interest).
enum class KeepBody : uint8_t { kNo, kYes, kIfError };  // kIfError: responses with status >= 400
struct BodyInterest {
    bool request = false;
    KeepBody response = KeepBody::kNo;
};

struct Request {
    std::string method;   // "GET"
    std::string target;   // request-target as sent: "/path?q=1" or absolute-form
    std::string version;  // "HTTP/1.1"
    Headers headers;
    uint64_t body_bytes = 0;  // body length as framed (Content-Length or sum of chunks)
    // Set from ParserLimits::body_interest: when body_prefix_kept, body_prefix holds the first
    // body bytes (de-chunked, at most ParserLimits::body_prefix_bytes, up to the first capture
    // gap); response_body says whether the response that answers it keeps one.
    bool body_prefix_kept = false;
    KeepBody response_body = KeepBody::kNo;
    std::string body_prefix;
};

struct Response {
    int status = 0;
    std::string reason;
    std::string version;
    Headers headers;
    std::optional<uint64_t> content_length;  // from the Content-Length header, when present
    uint64_t body_bytes = 0;                 // body length as framed
    std::string body_prefix;                 // only when the request kept one (see Request)
};

}  // namespace passport::protocol::http1
