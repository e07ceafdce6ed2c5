#pragma once
// ConnectionTracker: the connection table. It consumes the decoded event stream in order
// (on_event), keeps one stream::Connection per events::ConnKey, and hands every finished HTTP
// exchange to the callback given at construction.
//
// How connections end, and the Outcome their unanswered requests get:
//   ConnClose                  kConnectionClosed (a response delimited by the close completes)
//   ProcExit of the tgid       kProcessExited, for every connection of the process
//   same (tgid, fd), newer gen kConnectionClosed: the fd was reused, so the old socket is gone
//   expire(now): idle         kTimedOut after TrackerConfig::idle_timeout_ns without events
//   table full                 kTimedOut for the least recently active (stream.evicted_connections)
//
// Memory budget: every connection charges what its stream buffers hold to one MemoryBudget
// (TrackerConfig::memory_budget_bytes). After each data event, while the total is over the
// budget, the connection holding bytes for the longest time (its oldest unfinished message
// began first) is shed: its buffered bytes are dropped (stream.budget_dropped_heads,
// stream.budget_dropped_bytes) and its parsers resynchronise at their next message start. The
// connection itself stays, so its later requests are traced again.
//   flush_all()                kShutdown
// Independently, expire() gives up on requests whose response has not begun within
// pairing_timeout_ns (kTimedOut; a response still streaming is never cut short), and
// on stream bytes that have been missing for a whole expiry tick (lost by the ring buffer).
// Events for a connection already ended (late data, stale generations) are dropped and counted;
// a connection first seen through its data (open missed, or socket older than the agent) is
// created on the fly with the role the kernel reports, possibly kUnknown (then inferred).
//
// Single-threaded: owned and driven by the pipeline thread. The callback runs inside
// on_event/expire/flush_all and must not call back into the tracker.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "userspace/common/counters.hpp"
#include "userspace/events/event.hpp"
#include "userspace/pairing/exchange_sink.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/stream/connection.hpp"
#include "userspace/stream/memory_budget.hpp"

namespace passport::stream {

struct TrackerConfig {
    size_t max_connections = size_t{16} * 1024;
    uint64_t idle_timeout_ns = 300'000'000'000ULL;    // 5 min without any event
    uint64_t pairing_timeout_ns = 60'000'000'000ULL;  // 1 min waiting for a response to begin
    // Ended connections remembered, so their late events do not resurrect them.
    size_t ended_memory = 4096;
    // Bytes all stream buffers together may hold (0: unlimited). The default leaves room for
    // the rest of the agent within a 512 MiB container limit.
    size_t memory_budget_bytes = 256ULL * 1024 * 1024;
    ConnectionConfig connection;
};

class ConnectionTracker {
  public:
    using HttpCallback = std::function<void(pairing::HttpExchange&&)>;

    ConnectionTracker(Counters& counters, HttpCallback on_http, TrackerConfig config = {});
    // Optional: called for every HTTP request as soon as its head is parsed (before pairing).
    void set_request_observer(std::function<void(const pairing::HttpRequestSeen&)> observer) {
        sink_.http_request_seen = std::move(observer);
    }
    ConnectionTracker(const ConnectionTracker&) = delete;
    ConnectionTracker& operator=(const ConnectionTracker&) = delete;

    // Events must come in kernel order (by entry timestamp), as the decoder delivers them.
    void on_event(const events::Event& event);
    // Ends connections idle since now_ns - idle_timeout_ns and gives up on requests waiting
    // longer than pairing_timeout_ns. now_ns is CLOCK_MONOTONIC, like event timestamps.
    void expire(uint64_t now_ns);
    // Ends every connection (kShutdown): call once when the agent stops.
    void flush_all();

    size_t size() const { return conns_.size(); }
    const MemoryBudget& budget() const { return budget_; }
    const Connection* find(const events::ConnKey& key) const;

  private:
    // The activity list holds each connection's address too, so the expiry pass walks it
    // without a table lookup per connection.
    struct LruItem {
        events::ConnKey key;
        Connection* conn;
    };
    struct Entry {
        std::unique_ptr<Connection> conn;
        std::list<LruItem>::iterator lru;
    };
    using Table = std::unordered_map<events::ConnKey, Entry, events::ConnKeyHash>;

    void handle(const events::ConnOpen& open);
    void handle(const events::Data& data);
    void handle(const events::ConnClose& close);
    void handle(const events::ProcExec& exec);
    void handle(const events::ProcExit& exit);
    // Unsampled requests the kernel did not ship before this one: their connection passes over
    // their positions (the pipeline gives the context itself to the correlator).
    void handle(const events::TraceCtx& ctx);
    void handle(const events::Inject&) {}       // routed to the correlator by the pipeline
    void handle(const events::SdkDatagram&) {}  // routed to the SDK detector by the pipeline
    void handle(const events::GoHandoff&) {}    // routed to the correlator by the pipeline

    // False when the key is an older generation of its fd than one already seen; ends the older
    // connection when the key is newer.
    bool admit_generation(const events::ConnKey& key);
    Connection& find_or_create(const events::ConnKey& key);
    void touch(Entry& entry);
    void retire(Table::iterator it, pairing::Outcome outcome);
    void remember_ended(const events::ConnKey& key);
    // Sheds the connections holding bytes longest until the budget fits.
    void enforce_budget();
    bool ended(const events::ConnKey& key) const { return ended_.count(key) != 0; }

    Counters& counters_;
    TrackerConfig config_;
    pairing::ExchangeSink sink_;
    MemoryBudget budget_;
    Table conns_;
    std::list<LruItem> lru_;                             // front: least recently active
    std::unordered_map<uint64_t, uint64_t> newest_gen_;  // (tgid << 32 | fd) -> newest gen seen
    std::deque<events::ConnKey> ended_order_;
    std::unordered_set<events::ConnKey, events::ConnKeyHash> ended_;
};

}  // namespace passport::stream
