#pragma once
// Session: the protocol state of one connection once its protocol is known: a parser per
// direction plus the pairing of requests with responses. stream::Connection owns one, feeds it
// each direction's StreamBuffer after new data, and tells it how the connection ended; the
// session hands finished exchanges to a pairing::ExchangeSink. Sessions are made by the registry
// (registry.hpp), so the connection code never names a protocol.
//
// Used only on the pipeline thread.
#include <array>
#include <cstddef>
#include <cstdint>

#include "userspace/common/counters.hpp"
#include "userspace/events/event.hpp"
#include "userspace/pairing/exchange_sink.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/stream/stream_buffer.hpp"

namespace passport::protocol {

// What a session needs to know about its connection to fill in an exchange: the very facts the
// exchange carries. Owned by the connection; role is kServer or kClient by the time a session
// exists, and tls means the bytes are TLS plaintext (SSL_read/SSL_write), not the socket's.
using ConnContext = pairing::ConnFacts;

struct SessionLimits {
    // Requests waiting for their response (pipelining depth). A request beyond it is reported at
    // once as kPipelineOverflow and its response discarded; the others still pair in order.
    size_t max_pending = 256;
};

struct SessionParams {
    Counters& counters;
    const pairing::ExchangeSink& sink;  // outlives the session
    SessionLimits limits;
    // Which side of the connection the traced process is: kServer or kClient.
    events::Role role = events::Role::kServer;
    // Per events::Direction: the stream was joined mid-way (socket older than the agent, or its
    // first bytes lost), so its parser starts by looking for a message boundary.
    std::array<bool, 2> mid_stream{};
};

class Session {
  public:
    virtual ~Session() = default;

    // Parses what `buffer` (the `dir` direction) holds and emits finished exchanges.
    virtual void on_data(events::Direction dir, stream::StreamBuffer& buffer,
                         const ConnContext& ctx) = 0;
    // The connection is over. For kConnectionClosed and kProcessExited the byte streams really
    // ended, so messages delimited by the close complete; everything still open is emitted with
    // `outcome`.
    virtual void end(pairing::Outcome outcome, const ConnContext& ctx) = 0;
    // Gives up (kTimedOut) on requests that completed before now_ns - timeout_ns unanswered.
    virtual void expire(uint64_t now_ns, uint64_t timeout_ns, const ConnContext& ctx) = 0;
    // False once the connection stopped speaking the protocol (e.g. an HTTP upgrade or CONNECT
    // tunnel): the connection then stops buffering its bytes.
    virtual bool wants_data() const = 0;
    // Requests waiting for a response.
    virtual size_t pending_requests() const = 0;
    // Heap held by parsed messages still waiting (what the memory budget is charged).
    virtual size_t memory_bytes() const { return 0; }
    // Memory budget: gives up on every message still waiting (reported at once), so its memory
    // is freed, without letting later messages pair with the wrong partner.
    virtual void shed(const ConnContext& /*ctx*/) {}
};

}  // namespace passport::protocol
