#pragma once
// HTTP/1.x messages as the parser hands them on: the start line, headers in arrival order (names
// kept as sent; look them up case-insensitively with find_header), and body framing facts. Bodies
// themselves are never kept: X-Ray needs only lengths.
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

struct Request {
    std::string method;   // "GET"
    std::string target;   // request-target as sent: "/path?q=1" or absolute-form
    std::string version;  // "HTTP/1.1"
    Headers headers;
    uint64_t body_bytes = 0;  // body length as framed (Content-Length or sum of chunks)
};

struct Response {
    int status = 0;
    std::string reason;
    std::string version;
    Headers headers;
    std::optional<uint64_t> content_length;  // from the Content-Length header, when present
    uint64_t body_bytes = 0;                 // body length as framed
};

}  // namespace passport::protocol::http1
