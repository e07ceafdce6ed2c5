#pragma once
// Connection: everything Passport knows about one traced connection (events::ConnKey): its role,
// addresses, a StreamBuffer per direction and, once the protocol is recognised, the protocol
// Session that parses and pairs its messages.
//
// Life cycle (Phase):
//   kDetecting  bytes are buffered until the registry recognises a protocol from the first
//               bytes of a direction. A socket opened before the agent (role kUnknown) is joined
//               mid-way, so the first message start is searched for within
//               ConnectionConfig::detect_window_bytes. Its role is inferred from what was found:
//               a request read (ingress) makes it a server, a request written a client.
//   kActive     every new chunk is handed to the session.
//   kIgnored    not a protocol we know (stream.non_http_connections), or it stopped being one
//               (HTTP upgrade, CONNECT tunnel): bytes are no longer buffered.
//   kEnded      end() was called; nothing more happens.
//
// TLS: Data events carry their source. Once a connection delivers TLS plaintext (source TLS)
// its socket-source bytes are ciphertext and are dropped; socket bytes that begin a stream with
// a TLS record header are dropped too (the handshake before the first plaintext). Both count
// as stream.tls_ciphertext_chunks and nothing else. If socket bytes were already buffered when
// the first plaintext arrives, the connection starts over on the plaintext stream.
//
// Owned by ConnectionTracker (which also owns the config and sink referenced here); pipeline
// thread only.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "userspace/common/counters.hpp"
#include "userspace/events/event.hpp"
#include "userspace/pairing/exchange_sink.hpp"
#include "userspace/protocol/registry.hpp"
#include "userspace/protocol/session.hpp"
#include "userspace/stream/memory_budget.hpp"
#include "userspace/stream/stream_buffer.hpp"

namespace passport::stream {

struct ConnectionConfig {
    StreamLimits stream;
    protocol::SessionLimits session;
    // Bytes per direction searched for a message start on a connection joined mid-way before it
    // is declared not to speak any known protocol.
    size_t detect_window_bytes = size_t{16} * 1024;
};

class Connection {
  public:
    enum class Phase : uint8_t { kDetecting, kActive, kIgnored, kEnded };

    // `config`, `sink` and `budget` (optional) must outlive the connection.
    Connection(const events::ConnKey& key, Counters& counters, const ConnectionConfig& config,
               const pairing::ExchangeSink& sink, MemoryBudget* budget = nullptr);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void on_open(const events::ConnOpen& open);
    void on_data(const events::Data& data);
    // Unsampled requests the kernel did not ship: ingress from rx_pos and egress from tx_pos, up
    // to the next position each direction delivers, are passed over without parsing.
    void on_unsampled(uint64_t rx_pos, uint64_t tx_pos);
    // The connection is over. kConnectionClosed and kProcessExited mean its streams ended (the
    // data seen so far is final); other outcomes just stop waiting.
    void end(pairing::Outcome outcome);
    // Called on every expiry tick. Gives up on requests unanswered for timeout_ns (kTimedOut), and
    // on bytes missing from a stream since the previous tick (declared lost, parsing goes on).
    void expire(uint64_t now_ns, uint64_t timeout_ns);

    const events::ConnKey& key() const { return ctx_.conn; }
    events::Role role() const { return ctx_.role; }
    Phase phase() const { return phase_; }
    // Name of the detected protocol, empty while detecting or if none.
    std::string_view protocol_name() const { return protocol_ ? protocol_->name : ""; }
    // Latest kernel timestamp seen on this connection (CLOCK_MONOTONIC ns).
    uint64_t last_activity_ns() const { return last_activity_ns_; }
    size_t buffered_bytes() const;
    // Heap held by both stream buffers and the requests parsed but still waiting for their
    // responses (what the memory budget is charged).
    size_t memory_bytes() const;
    // Memory budget: drops every buffered byte (stream.budget_dropped_heads/_bytes); each
    // direction resynchronises at its next message start. Requests parsed and still waiting are
    // reported at once (kMemoryBudget) and their responses discarded when they come.
    void shed();
    size_t pending_requests() const { return session_ ? session_->pending_requests() : 0; }

  private:
    StreamBuffer& buffer(events::Direction dir) { return buffers_[static_cast<size_t>(dir)]; }
    void detect(events::Direction dir);
    void start_session(const protocol::ProtocolEntry& entry, events::Direction detected);
    // Feeds the session, request direction first so responses find their requests.
    void feed_both();
    // Parses (or detects) what `dir` holds after something changed there.
    void process(events::Direction dir);
    void stop_buffering();
    void discard_before_start(events::Direction dir, size_t n);
    // False for bytes that are TLS ciphertext (see TLS above); switches to plaintext mode.
    bool admit_source(const events::Data& data);
    // Reports memory_bytes() to the budget.
    void recharge();

    Counters& counters_;
    const ConnectionConfig& config_;
    const pairing::ExchangeSink& sink_;
    protocol::ConnContext ctx_;
    Phase phase_ = Phase::kDetecting;
    std::array<StreamBuffer, 2> buffers_;     // by events::Direction
    std::array<bool, 2> search_anywhere_{};   // the direction's first bytes were lost
    std::array<size_t, 2> searched_bytes_{};  // discarded while looking for a start
    // Position at which a direction was waiting behind a hole at the last expiry tick.
    std::array<std::optional<uint64_t>, 2> stalled_at_{};
    std::unique_ptr<protocol::Session> session_;
    const protocol::ProtocolEntry* protocol_ = nullptr;
    MemoryBudget* budget_ = nullptr;
    BudgetNode budget_node_;
    uint64_t last_activity_ns_ = 0;
    bool ciphertext_ = false;  // socket bytes of this connection are TLS records
    // expire() has nothing to do until the next event: no hole, no buffered storage, no
    // request waiting for its response. Idle keep-alive connections then cost the expiry pass
    // one flag test each.
    bool settled_ = false;
};

}  // namespace passport::stream
