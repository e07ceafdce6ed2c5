#pragma once
// HttpExchange: one HTTP/1.x request and (when it came) its response on one connection, with the
// kernel timestamps that bound them. Produced by stream::ConnectionTracker, consumed by the
// correlator. Server exchanges (role kServer) become segments; client ones subsegments.
#include <cstdint>
#include <optional>

#include "userspace/events/event.hpp"
#include "userspace/protocol/http1/http1_types.hpp"

namespace passport::pairing {

enum class Outcome : uint8_t {
    kComplete,          // full request and full response seen
    kConnectionClosed,  // connection closed/reset before the response was complete
    kProcessExited,     // the traced process exited before the response was complete
    kTimedOut,          // no response within the pairing timeout
    kShutdown,          // agent stopped while the exchange was open
    // more requests pipelined than the pairing keeps (SessionLimits::max_pending): this request
    // was not kept and its response, when it comes, is discarded
    kPipelineOverflow,
    // the agent's memory budget was exhausted while this request waited: it was not kept and
    // its response, when it comes, is discarded
    kMemoryBudget,
};

// The facts about one connection that every exchange on it carries (and what a protocol session
// is told about its connection): one struct, so they are copied whole rather than field by field.
// Its ends and namespace are those of the connection's events::ConnOpen.
struct ConnFacts : events::SocketAddrs {
    events::ConnKey conn;
    events::Role role = events::Role::kUnknown;  // kServer: we served it; kClient: we sent it
    bool tls = false;  // carried over TLS (plaintext from the TLS library): an https:// URL
    // A connection the process opened with connect() (events::ConnOpen of role kClient): the
    // entry of that connect() (CLOCK_MONOTONIC ns; a non-blocking connect counts from the call).
    // 0 for accepted connections and sockets found mid-life.
    uint64_t connect_ns = 0;
};

struct HttpExchange : ConnFacts {
    uint32_t tgid = 0;
    uint32_t request_tid = 0;   // thread that read (server) / wrote (client) the request
    uint32_t response_tid = 0;  // thread that wrote (server) / read (client) the response

    protocol::http1::Request request;
    std::optional<protocol::http1::Response> response;

    // CLOCK_MONOTONIC ns. For a server: request_start = exit of the read that returned the
    // request's first byte; response_end = exit of the write that sent its last byte.
    // For a client: request_start = entry of the first write; response_end = exit of the read
    // that returned the last byte.
    uint64_t request_start_ns = 0;
    uint64_t request_end_ns = 0;
    uint64_t response_start_ns = 0;
    uint64_t response_end_ns = 0;  // 0 when there is no (complete) response
    // Stream offset of the request's first byte (ingress for a server, egress for a client), as
    // the kernel numbers it: matches the kernel's trace context (events::TraceCtx::request_pos)
    // and, for a client, its injection report (events::Inject::app_pos: app bytes written
    // before it on this connection).
    uint64_t request_pos = 0;

    Outcome outcome = Outcome::kComplete;
};

// A request as soon as its head is parsed, before any response: lets the correlator give it a
// trace context early (outgoing calls made while serving it find it by thread; a downstream
// service on this node finds the caller's call by connection tuple). request_start_ns is
// computed exactly as HttpExchange::request_start_ns, so the two can be matched.
struct HttpRequestSeen : ConnFacts {
    uint32_t tgid = 0;
    uint32_t tid = 0;
    uint64_t request_start_ns = 0;
    uint64_t request_pos = 0;                           // as HttpExchange::request_pos
    const protocol::http1::Request* request = nullptr;  // valid during the callback only
};

}  // namespace passport::pairing
