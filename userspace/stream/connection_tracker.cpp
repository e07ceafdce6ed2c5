#include "userspace/stream/connection_tracker.hpp"

#include <utility>
#include <variant>
#include <vector>

namespace passport::stream {

namespace {

uint64_t fd_slot(const events::ConnKey& key) {
    return (uint64_t{key.tgid} << 32) | static_cast<uint32_t>(key.fd);
}

}  // namespace

ConnectionTracker::ConnectionTracker(Counters& counters, HttpCallback on_http, TrackerConfig config)
    : counters_(counters), config_(config), budget_(config_.memory_budget_bytes) {
    sink_.http = std::move(on_http);
}

const Connection* ConnectionTracker::find(const events::ConnKey& key) const {
    auto it = conns_.find(key);
    return it == conns_.end() ? nullptr : it->second.conn.get();
}

void ConnectionTracker::on_event(const events::Event& event) {
    std::visit([this](const auto& e) { handle(e); }, event);
}

void ConnectionTracker::handle(const events::ConnOpen& open) {
    if (ended(open.conn) || !admit_generation(open.conn)) {
        counters_.add("stream.stale_events");
        return;
    }
    counters_.add("stream.connections_opened");
    if (conns_.count(open.conn) != 0) counters_.add("stream.duplicate_open");
    find_or_create(open.conn).on_open(open);
}

void ConnectionTracker::handle(const events::Data& data) {
    if (ended(data.conn) || !admit_generation(data.conn)) {
        counters_.add("stream.stale_events");
        return;
    }
    if (conns_.count(data.conn) == 0) counters_.add("stream.conn_without_open");
    find_or_create(data.conn).on_data(data);
    enforce_budget();
}

void ConnectionTracker::handle(const events::TraceCtx& ctx) {
    if (!ctx.unsampled_before) return;
    counters_.add("stream.unsampled_spans");
    if (ended(ctx.conn) || !admit_generation(ctx.conn)) return;
    find_or_create(ctx.conn).on_unsampled(ctx.unsampled_rx_pos, ctx.unsampled_tx_pos);
}

void ConnectionTracker::enforce_budget() {
    while (budget_.over()) {
        BudgetNode* oldest = budget_.oldest();
        if (oldest == nullptr) return;
        oldest->owner->shed();
        if (oldest->linked() && oldest == budget_.oldest()) return;  // holds nothing it can drop
    }
}

void ConnectionTracker::handle(const events::ConnClose& close) {
    auto it = conns_.find(close.conn);
    if (it == conns_.end()) {
        if (!ended(close.conn)) counters_.add("stream.close_without_conn");
        remember_ended(close.conn);
        return;
    }
    retire(it, pairing::Outcome::kConnectionClosed);
}

void ConnectionTracker::handle(const events::ProcExec& /*exec*/) {
    // Sockets survive exec unless close-on-exec; their close or the process exit ends them.
}

void ConnectionTracker::handle(const events::ProcExit& exit) {
    // Walk in activity order so the exchanges come out in a deterministic order.
    std::vector<events::ConnKey> keys;
    for (const auto& item : lru_) {
        if (item.key.tgid == exit.tgid) keys.push_back(item.key);
    }
    for (const auto& key : keys) {
        auto it = conns_.find(key);
        if (it != conns_.end()) retire(it, pairing::Outcome::kProcessExited);
    }
}

bool ConnectionTracker::admit_generation(const events::ConnKey& key) {
    auto [it, inserted] = newest_gen_.try_emplace(fd_slot(key), key.gen);
    if (inserted || it->second == key.gen) return true;
    if (key.gen < it->second) return false;
    // The fd now names a newer socket: the old one was closed without us seeing it.
    const events::ConnKey old{key.tgid, key.fd, it->second};
    it->second = key.gen;
    if (auto conn = conns_.find(old); conn != conns_.end()) {
        counters_.add("stream.fd_reused");
        retire(conn, pairing::Outcome::kConnectionClosed);
    }
    return true;
}

Connection& ConnectionTracker::find_or_create(const events::ConnKey& key) {
    auto it = conns_.find(key);
    if (it != conns_.end()) {
        touch(it->second);
        return *it->second.conn;
    }
    auto owned = std::make_unique<Connection>(key, counters_, config_.connection, sink_, &budget_);
    Connection& conn = *owned;
    lru_.push_back(LruItem{key, &conn});
    conns_.emplace(key, Entry{std::move(owned), std::prev(lru_.end())});
    while (conns_.size() > config_.max_connections && lru_.front().key != key) {
        counters_.add("stream.evicted_connections");
        retire(conns_.find(lru_.front().key), pairing::Outcome::kTimedOut);
    }
    return conn;
}

void ConnectionTracker::touch(Entry& entry) { lru_.splice(lru_.end(), lru_, entry.lru); }

void ConnectionTracker::retire(Table::iterator it, pairing::Outcome outcome) {
    const events::ConnKey key = it->first;
    // Out of the table before ending, so the table is consistent while callbacks run.
    std::unique_ptr<Connection> conn = std::move(it->second.conn);
    lru_.erase(it->second.lru);
    conns_.erase(it);
    if (auto gen = newest_gen_.find(fd_slot(key));
        gen != newest_gen_.end() && gen->second == key.gen) {
        newest_gen_.erase(gen);
    }
    remember_ended(key);
    conn->end(outcome);
}

void ConnectionTracker::remember_ended(const events::ConnKey& key) {
    if (!ended_.insert(key).second) return;
    ended_order_.push_back(key);
    while (ended_order_.size() > config_.ended_memory) {
        ended_.erase(ended_order_.front());
        ended_order_.pop_front();
    }
}

void ConnectionTracker::expire(uint64_t now_ns) {
    while (!lru_.empty()) {
        const uint64_t last = lru_.front().conn->last_activity_ns();
        if (now_ns < last || now_ns - last < config_.idle_timeout_ns) break;
        counters_.add("stream.idle_expired");
        retire(conns_.find(lru_.front().key), pairing::Outcome::kTimedOut);
    }
    for (const auto& item : lru_) item.conn->expire(now_ns, config_.pairing_timeout_ns);
    counters_.set("stream.budget_peak_bytes", budget_.peak());
}

void ConnectionTracker::flush_all() {
    counters_.set("stream.budget_peak_bytes", budget_.peak());
    while (!lru_.empty()) retire(conns_.find(lru_.front().key), pairing::Outcome::kShutdown);
}

}  // namespace passport::stream
