#include "userspace/stream/connection.hpp"

#include <memory>
#include <string>

namespace passport::stream {

namespace {

using events::Direction;
using events::Role;

constexpr std::array<Direction, 2> kDirections = {Direction::kIngress, Direction::kEgress};

size_t index(Direction dir) { return static_cast<size_t>(dir); }

// A connection quiet this long gives back its buffers' storage (see expire()); a busy one keeps
// it so it does not reallocate per message.
constexpr uint64_t kReleaseAfterNs = 1'000'000'000;

// Which side we are, given that a message of `kind` travels in direction `dir`.
Role role_for(Direction dir, protocol::MessageKind kind) {
    const bool request = kind == protocol::MessageKind::kRequest;
    return (dir == Direction::kIngress) == request ? Role::kServer : Role::kClient;
}

}  // namespace

Connection::Connection(const events::ConnKey& key, Counters& counters,
                       const ConnectionConfig& config, const pairing::ExchangeSink& sink,
                       MemoryBudget* budget)
    : counters_(counters),
      config_(config),
      sink_(sink),
      buffers_{{StreamBuffer(counters, config.stream), StreamBuffer(counters, config.stream)}},
      budget_(budget) {
    ctx_.conn = key;
    budget_node_.owner = this;
}

Connection::~Connection() {
    if (budget_) budget_->update(budget_node_, 0);
}

size_t Connection::memory_bytes() const {
    return buffers_[0].memory_bytes() + buffers_[1].memory_bytes() +
           (session_ ? session_->memory_bytes() : 0);
}

void Connection::recharge() {
    if (budget_) budget_->update(budget_node_, memory_bytes());
}

void Connection::shed() {
    size_t dropped = 0;
    for (Direction d : kDirections) {
        dropped += buffer(d).shed();
        // A detector must now look for a message start anywhere, not at the next byte.
        if (phase_ == Phase::kDetecting) search_anywhere_[index(d)] = true;
        stalled_at_[index(d)].reset();
    }
    if (session_ && phase_ == Phase::kActive) session_->shed(ctx_);
    counters_.add("stream.budget_dropped_heads");
    counters_.add("stream.budget_dropped_bytes", dropped);
    settled_ = false;
    recharge();
}

size_t Connection::buffered_bytes() const {
    return buffers_[0].buffered_bytes() + buffers_[1].buffered_bytes();
}

void Connection::on_open(const events::ConnOpen& open) {
    static_cast<events::SocketAddrs&>(ctx_) = open;
    settled_ = false;
    if (phase_ == Phase::kDetecting && open.role != Role::kUnknown) ctx_.role = open.role;
    if (open.role == Role::kClient) ctx_.connect_ns = open.ts_ns;  // the connect() entry
    last_activity_ns_ = std::max(last_activity_ns_, open.ts_ns);
}

void Connection::on_data(const events::Data& data) {
    settled_ = false;
    last_activity_ns_ = std::max(last_activity_ns_, data.exit_ns);
    if (phase_ == Phase::kEnded || !admit_source(data)) return;
    if (phase_ == Phase::kIgnored) return;
    // A connection first seen through its data (its open event was missed) takes the role the
    // kernel side knows, if any.
    if (phase_ == Phase::kDetecting && ctx_.role == Role::kUnknown) ctx_.role = data.role;
    buffer(data.direction)
        .add(data.pos, data.bytes, data.len, ChunkTiming{data.enter_ns, data.exit_ns, data.tid});
    process(data.direction);
    recharge();
}

void Connection::on_unsampled(uint64_t rx_pos, uint64_t tx_pos) {
    settled_ = false;
    if (phase_ == Phase::kEnded || phase_ == Phase::kIgnored || ciphertext_) return;
    buffer(Direction::kIngress).unsampled_from(rx_pos);
    buffer(Direction::kEgress).unsampled_from(tx_pos);
}

bool Connection::admit_source(const events::Data& data) {
    if (data.source != events::DataSource::kTls) {
        // A TLS record header where a stream starts: the handshake, never an HTTP message.
        const std::string_view b = data.bytes;
        const bool record = data.pos == 0 && b.size() >= 3 && b[0] >= 0x14 && b[0] <= 0x17 &&
                            b[1] == 0x03 && static_cast<uint8_t>(b[2]) <= 0x04;
        if (record) ciphertext_ = true;
        if (!ciphertext_) return true;
        counters_.add("stream.tls_ciphertext_chunks");
        return false;
    }
    if (ctx_.tls) return true;
    ctx_.tls = true;
    ciphertext_ = true;
    counters_.add("stream.tls_connections");
    if (phase_ == Phase::kDetecting && buffers_[0].delivered_end() == 0 &&
        buffers_[1].delivered_end() == 0) {
        return true;
    }
    // Socket bytes were taken for traffic before the first plaintext: start over on the
    // plaintext streams (their positions count from 0 again).
    session_.reset();
    protocol_ = nullptr;
    phase_ = Phase::kDetecting;
    for (auto& b : buffers_) {
        std::destroy_at(&b);
        std::construct_at(&b, counters_, config_.stream);
    }
    search_anywhere_ = {};
    searched_bytes_ = {};
    stalled_at_ = {};
    return true;
}

void Connection::process(Direction dir) {
    if (phase_ == Phase::kDetecting) {
        detect(dir);
    } else if (phase_ == Phase::kActive) {
        session_->on_data(dir, buffer(dir), ctx_);
        if (!session_->wants_data()) stop_buffering();
    }
}

void Connection::detect(Direction dir) {
    StreamBuffer& buf = buffer(dir);
    const size_t d = index(dir);
    auto give_up = [&] {
        stop_buffering();
        counters_.add("stream.non_http_connections");
    };
    while (phase_ == Phase::kDetecting) {
        if (searched_bytes_[d] > config_.detect_window_bytes) return give_up();
        if (buf.head().empty()) {
            if (buf.gap_ahead() == 0) return;  // nothing contiguous to look at yet
            // The direction's first bytes were never captured: a message may start after them.
            search_anywhere_[d] = true;
            buf.skip(buf.gap_ahead());
            continue;
        }
        // A socket older than the agent is joined mid-message: search for a start.
        const bool anywhere = ctx_.role == Role::kUnknown || search_anywhere_[d];
        const std::string_view head = buf.head();
        const protocol::RegistryDetection r = protocol::detect_protocol(
            head, anywhere ? protocol::DetectMode::kAnywhere : protocol::DetectMode::kExact);
        switch (r.detection.status) {
            case protocol::DetectStatus::kFound: {
                const Role role = role_for(dir, r.detection.kind);
                // e.g. a server whose peer's first bytes look like a response: not ours.
                if (ctx_.role != Role::kUnknown && ctx_.role != role) return give_up();
                discard_before_start(dir, r.detection.offset);
                if (ctx_.role == Role::kUnknown) search_anywhere_ = {true, true};
                ctx_.role = role;
                search_anywhere_[d] = false;  // aligned on a message start now
                start_session(*r.protocol, dir);
                return;
            }
            case protocol::DetectStatus::kNeedMore:
                if (anywhere) discard_before_start(dir, r.detection.offset);
                if (buf.gap_ahead() == 0) return;  // wait for the rest of the line
                // The unfinished line runs into a gap and can never be confirmed.
                search_anywhere_[d] = true;
                discard_before_start(dir, buf.head().size());
                continue;
            case protocol::DetectStatus::kNo:
                if (!anywhere) return give_up();
                discard_before_start(dir, head.size());
                continue;
        }
    }
}

void Connection::discard_before_start(Direction dir, size_t n) {
    if (n == 0) return;
    counters_.add("stream.presync_bytes", n);
    searched_bytes_[index(dir)] += n;
    buffer(dir).consume(n);
}

void Connection::start_session(const protocol::ProtocolEntry& entry, Direction detected) {
    protocol::SessionParams params{counters_, sink_, config_.session, ctx_.role, {}};
    for (Direction d : kDirections) {
        params.mid_stream[index(d)] =
            d != detected && (search_anywhere_[index(d)] || buffer(d).position() != 0);
    }
    session_ = entry.make_session(params);
    protocol_ = &entry;
    phase_ = Phase::kActive;
    counters_.add(std::string("stream.detected.") + std::string(entry.name));
    feed_both();
}

void Connection::feed_both() {
    // Requests first, so a response already buffered finds its request pending.
    const Direction request_dir =
        ctx_.role == Role::kClient ? Direction::kEgress : Direction::kIngress;
    const Direction response_dir =
        request_dir == Direction::kIngress ? Direction::kEgress : Direction::kIngress;
    for (Direction d : {request_dir, response_dir}) {
        if (phase_ != Phase::kActive) return;
        session_->on_data(d, buffer(d), ctx_);
        if (!session_->wants_data()) stop_buffering();
    }
}

void Connection::stop_buffering() {
    phase_ = Phase::kIgnored;
    for (auto& b : buffers_) b.clear();
}

void Connection::end(pairing::Outcome outcome) {
    if (phase_ == Phase::kEnded) return;
    const bool stream_ended = outcome == pairing::Outcome::kConnectionClosed ||
                              outcome == pairing::Outcome::kProcessExited;
    if (phase_ == Phase::kActive && stream_ended) {
        // Nothing more will arrive: positions still missing are lost, parse what is left.
        for (auto& b : buffers_) b.declare_holes_lost();
        feed_both();
    }
    if (session_) session_->end(outcome, ctx_);
    phase_ = Phase::kEnded;
    for (auto& b : buffers_) b.clear();
    recharge();
}

void Connection::expire(uint64_t now_ns, uint64_t timeout_ns) {
    if (settled_) return;
    // Idle since the last tick: an exchange's bytes were consumed, their storage need not stay.
    if (last_activity_ns_ + kReleaseAfterNs <= now_ns) {
        for (auto& b : buffers_) b.release_idle_memory();
    }
    for (Direction d : kDirections) {
        if (phase_ != Phase::kDetecting && phase_ != Phase::kActive) break;
        StreamBuffer& buf = buffer(d);
        std::optional<uint64_t>& stalled = stalled_at_[index(d)];
        if (!buf.has_hole()) {
            stalled.reset();
        } else if (stalled != buf.position()) {
            stalled = buf.position();
        } else {
            // Out-of-order bytes arrive within microseconds; these have been missing for a whole
            // tick, so they were lost (ring buffer drop): stop waiting and parse what follows.
            counters_.add("stream.stalled_holes");
            stalled.reset();
            buf.declare_holes_lost();
            process(d);
        }
    }
    if (session_ && phase_ != Phase::kEnded) session_->expire(now_ns, timeout_ns, ctx_);
    recharge();
    settled_ = !stalled_at_[0] && !stalled_at_[1] && buffers_[0].holds_nothing() &&
               buffers_[1].holds_nothing() && (!session_ || session_->pending_requests() == 0);
}

}  // namespace passport::stream
