#pragma once
// The correlator's contexts and their indexes, all bounded:
//  - server and call contexts by RequestKey, in creation order: past `max_contexts` of a kind
//    the oldest go (finished ones normally first, as they are older; an open server request
//    lost that way counts correlate.contexts_evicted);
//  - per thread, the server requests open on it (arrival order) and the request whose I/O it
//    handled last (the thread rules of call_linking.hpp read both);
//  - server requests by (connection, ingress offset of the head), as the kernel names them;
//  - the kernel's contexts not yet claimed by a parsed request, by (connection, offset).
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/correlate/contexts.hpp"
#include "userspace/correlate/keys.hpp"

namespace passport::correlate {

class ContextTable {
  public:
    ContextTable(size_t max_contexts, Counters& counters)
        : max_(max_contexts), counters_(counters), servers_by_pos_(kMaxPositions) {}

    ServerContext* server(const RequestKey& key);
    CallContext* call(const RequestKey& key);
    bool has_call(const RequestKey& key) const { return calls_.count(key) != 0; }
    // The open server context at `key`, or nullptr; a finished one there is dropped (the same key
    // again is a new request).
    ServerContext* open_server(const RequestKey& key);
    // A new server context at `key` (after open_server returned nullptr). Not yet remembered.
    ServerContext& add_server(const RequestKey& key) { return servers_[key]; }
    CallContext& add_call(const RequestKey& key, CallContext&& call);

    // The server request `key` opened on `thread`: it is open there and the thread's latest I/O.
    // Returns how many requests are now open on the thread.
    size_t open_on_thread(uint64_t thread, const RequestKey& key);
    const std::vector<RequestKey>* open_on(uint64_t thread) const;
    const RequestKey* last_activity(uint64_t thread) const;
    // The thread handled I/O for `key` (a call's response): kept within max_contexts threads.
    void set_last_activity(uint64_t thread, const RequestKey& key);
    // The request is no longer open on its thread.
    void close_on_thread(const RequestKey& key, const ServerContext& ctx);

    void index_position(const ConnPos& pos, const RequestKey& key);
    // The server request the kernel named by (connection, offset), while its context exists.
    const RequestKey* server_at(const ConnPos& pos) const;

    void put_kernel(const ConnPos& pos, KernelContext&& kc);
    std::optional<KernelContext> take_kernel(const ConnPos& pos);

    // Counts the context into the bound; `unindex(key, ctx)` removes an evicted one (still
    // open) from the indexes outside this table.
    template <typename F>
    void remember_server(const RequestKey& key, F&& unindex);
    template <typename F>
    void remember_call(const RequestKey& key, F&& unindex);

    size_t servers() const { return servers_.size(); }
    size_t calls() const { return calls_.size(); }
    size_t open_threads() const { return open_by_thread_.size(); }
    size_t thread_activity() const { return last_activity_.size(); }

  private:
    static constexpr size_t kMaxPositions = 8192;
    void bound_thread_activity();

    size_t max_;
    Counters& counters_;
    std::unordered_map<RequestKey, ServerContext, RequestKeyHash> servers_;
    std::unordered_map<RequestKey, CallContext, RequestKeyHash> calls_;
    std::deque<RequestKey> server_order_;  // creation order, for the bound
    std::deque<RequestKey> call_order_;
    std::unordered_map<uint64_t, std::vector<RequestKey>> open_by_thread_;
    // Per thread, the request whose I/O it handled last: its head was read there, or a call made
    // for it got its response there.
    std::unordered_map<uint64_t, RequestKey> last_activity_;
    BoundedMap<ConnPos, RequestKey, ConnPosHash> servers_by_pos_;
    std::unordered_map<ConnPos, KernelContext, ConnPosHash> kernel_pending_;
    std::deque<ConnPos> kernel_order_;
};

template <typename F>
void ContextTable::remember_server(const RequestKey& key, F&& unindex) {
    server_order_.push_back(key);
    while (server_order_.size() > max_) {
        RequestKey old = server_order_.front();
        server_order_.pop_front();
        auto it = servers_.find(old);
        if (it == servers_.end()) continue;
        if (!it->second.done) {
            counters_.add("correlate.contexts_evicted");
            close_on_thread(old, it->second);
            unindex(old, it->second);
        }
        servers_.erase(it);
    }
}

template <typename F>
void ContextTable::remember_call(const RequestKey& key, F&& unindex) {
    call_order_.push_back(key);
    while (call_order_.size() > max_) {
        RequestKey old = call_order_.front();
        call_order_.pop_front();
        auto it = calls_.find(old);
        if (it == calls_.end()) continue;
        unindex(old, it->second);
        calls_.erase(it);
    }
}

}  // namespace passport::correlate
