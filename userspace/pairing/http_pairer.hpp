#pragma once
// HttpPairer: the HTTP/1 session of one connection. It runs an Http1Parser per direction and
// pairs requests with responses first-in first-out (HTTP/1 answers in request order, pipelined
// or not), producing pairing::HttpExchange with the kernel timestamps of the syscalls that moved
// each message's first and last byte (see http_exchange.hpp for which ones).
//
// Keeping FIFO order honest when things go missing:
//   - a request dropped as invalid or lost in a capture gap leaves a placeholder, so its response
//     is discarded instead of being paired with the next request (pairing.discarded_responses);
//   - a request given up by expire() (kTimedOut) leaves a placeholder for the same reason;
//   - a response that could not be parsed takes its request with it (pairing.response_lost);
//   - a response that finished before its request began (a socket joined mid-way) is an orphan
//     (pairing.orphan_responses), as is one with no request at all;
//   - a response that completes while its request's body is still arriving (100-continue, early
//     413) is held until the request completes.
// At most SessionLimits::max_pending requests wait (pipelining depth). A request beyond that is
// emitted at once as kPipelineOverflow (pairing.pending_overflow) and leaves a placeholder, so
// its response is discarded (pairing.discarded_responses) and every later response still pairs
// with its own request. Consecutive placeholders share one entry (a count), so memory stays
// bounded by max_pending requests whatever the depth.
//
// Timeouts: expire() gives up (kTimedOut) only on requests still waiting for the first byte of
// their response, counted from when the request ended or the previous response ended, whichever
// is later. A response whose bytes have started is never expired here, however long it streams
// (server-sent events, downloads); a connection that goes silent is ended by the tracker's idle
// timeout instead.
//
// Owned by a stream::Connection (made through protocol::registered_protocols()); pipeline thread.
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string_view>

#include "userspace/common/counters.hpp"
#include "userspace/pairing/exchange_sink.hpp"
#include "userspace/protocol/http1/http1_parser.hpp"
#include "userspace/protocol/session.hpp"

namespace passport::pairing {

class HttpPairer final : public protocol::Session {
  public:
    // params.role must be kServer or kClient.
    explicit HttpPairer(const protocol::SessionParams& params);

    void on_data(events::Direction dir, stream::StreamBuffer& buffer,
                 const protocol::ConnContext& ctx) override;
    void end(Outcome outcome, const protocol::ConnContext& ctx) override;
    void expire(uint64_t now_ns, uint64_t timeout_ns, const protocol::ConnContext& ctx) override;
    bool wants_data() const override { return wants_data_; }
    size_t pending_requests() const override;
    size_t memory_bytes() const override { return pending_bytes_; }
    void shed(const protocol::ConnContext& ctx) override;

  private:
    using Message = protocol::http1::Message;
    struct Pending {
        Message message;
        // Requests we lost or gave up on: their responses are discarded. Runs of consecutive
        // placeholders share one entry.
        bool placeholder = false;
        uint64_t count = 1;  // placeholders only: how many responses to discard
    };

    void on_request(Message&& request, const protocol::ConnContext& ctx);
    void on_request_lost(const protocol::ConnContext& ctx);
    void on_response(Message&& response, const protocol::ConnContext& ctx);
    void on_response_lost();
    void push_pending(Pending&& pending, const protocol::ConnContext& ctx);
    void push_placeholder();
    // Turns a waiting request into a placeholder, merged with placeholder runs next to it;
    // returns the entry after the result.
    std::list<Pending>::iterator make_placeholder(std::list<Pending>::iterator it);
    // Removes one placeholder (its response arrived or was lost); pops the run when empty.
    void pop_placeholder();
    // Removes a real request from pending_ and from pending_bytes_.
    Message take_front();
    // Since when the front request has waited for its response to begin.
    uint64_t waiting_since(const Pending& front) const;
    void drain_early(const protocol::ConnContext& ctx);
    // Method of the request the next response answers ("" when unknown).
    std::string_view next_response_method() const;
    // Whether the next response keeps a body prefix, as the request it answers says (AWS calls).
    protocol::http1::KeepBody next_response_keeps_body() const;
    void emit(Message&& request, std::optional<Message>&& response, Outcome outcome,
              const protocol::ConnContext& ctx);

    Counters& counters_;
    const ExchangeSink& sink_;
    protocol::SessionLimits limits_;
    events::Direction request_dir_;
    protocol::http1::Http1Parser requests_;
    protocol::http1::Http1Parser responses_;
    // Lists, not deques: an empty std::deque still holds a node (over 1 KiB for a Message), and
    // every idle keep-alive connection has both empty. A list holds nothing while empty.
    std::list<Pending> pending_;
    std::list<Message> early_;  // responses that completed while their request was still arriving
    size_t waiting_ = 0;        // real (non-placeholder) requests in pending_
    size_t pending_bytes_ = 0;  // heap held by the requests in pending_, approximately
    // The response direction has bytes of a response that has not completed yet.
    bool response_started_ = false;
    uint64_t last_response_end_ns_ = 0;  // exit of the syscall that ended the previous response
    bool wants_data_ = true;
};

// Registry hook (protocol/registry.cpp).
std::unique_ptr<protocol::Session> make_http_session(const protocol::SessionParams& params);

}  // namespace passport::pairing
