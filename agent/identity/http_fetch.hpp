#pragma once
// One bounded HTTP request for metadata endpoints (IMDS, the ECS task metadata endpoint) and the
// X-Ray daemon's sampling proxy, on libcurl. Bounded every way an endpoint can misbehave: a total
// time budget (connect included), a low-speed limit against bodies that trickle in, a body cap (the
// transfer is aborted past it), no redirects, and no proxy from the environment (the endpoints are
// link-local or the node's own; a proxy set for the node's outbound traffic must not see them).
// Blocking: call it from the identity or the sampling thread, never from the pipeline.
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "userspace/common/result.hpp"

namespace passport::identity {

struct HttpRequest {
    std::string method = "GET";              // GET, PUT (an empty body) or POST (`body`)
    std::string url;                         // http:// or https://
    std::vector<std::string> headers;        // "Name: value"
    std::chrono::milliseconds budget{1000};  // the whole request, connect to last byte
    size_t body_cap = size_t{1} << 20;       // longer answers are an error
    std::string body{};                      // what a POST sends
    // Below 64 bytes a second for this long, the transfer is dropped (a trickling body). A
    // proxy that waits for a remote service before it answers needs more than the default.
    std::chrono::seconds low_speed_time{1};
};

struct HttpResponse {
    long status = 0;
    std::string body;
};

// The answer (any status), or a transport error: "connect: ...", "timed out after N ms",
// "response larger than N bytes", ...
Result<HttpResponse> http_fetch(const HttpRequest& request);

}  // namespace passport::identity
