#include "userspace/correlate/context_table.hpp"

#include <algorithm>

namespace passport::correlate {

ServerContext* ContextTable::server(const RequestKey& key) {
    auto it = servers_.find(key);
    return it == servers_.end() ? nullptr : &it->second;
}

CallContext* ContextTable::call(const RequestKey& key) {
    auto it = calls_.find(key);
    return it == calls_.end() ? nullptr : &it->second;
}

ServerContext* ContextTable::open_server(const RequestKey& key) {
    auto it = servers_.find(key);
    if (it == servers_.end()) return nullptr;
    if (!it->second.done) return &it->second;
    servers_.erase(it);
    return nullptr;
}

CallContext& ContextTable::add_call(const RequestKey& key, CallContext&& call) {
    return calls_.emplace(key, std::move(call)).first->second;
}

size_t ContextTable::open_on_thread(uint64_t thread, const RequestKey& key) {
    auto& open_here = open_by_thread_[thread];
    open_here.push_back(key);
    last_activity_[thread] = key;
    return open_here.size();
}

const std::vector<RequestKey>* ContextTable::open_on(uint64_t thread) const {
    auto it = open_by_thread_.find(thread);
    return it == open_by_thread_.end() ? nullptr : &it->second;
}

const RequestKey* ContextTable::last_activity(uint64_t thread) const {
    auto it = last_activity_.find(thread);
    return it == last_activity_.end() ? nullptr : &it->second;
}

void ContextTable::set_last_activity(uint64_t thread, const RequestKey& key) {
    last_activity_[thread] = key;
    bound_thread_activity();
}

void ContextTable::close_on_thread(const RequestKey& key, const ServerContext& ctx) {
    const uint64_t thread = thread_key(ctx.tgid, ctx.tid);
    if (auto open = open_by_thread_.find(thread); open != open_by_thread_.end()) {
        auto& v = open->second;
        v.erase(std::remove(v.begin(), v.end(), key), v.end());
        if (v.empty()) open_by_thread_.erase(open);
    }
    if (auto last = last_activity_.find(thread);
        last != last_activity_.end() && last->second == key) {
        last_activity_.erase(last);
    }
}

// Keeps last_activity_ within max_contexts threads: forgets threads whose request is gone.
void ContextTable::bound_thread_activity() {
    if (last_activity_.size() <= max_) return;
    for (auto it = last_activity_.begin(); it != last_activity_.end();) {
        auto s = servers_.find(it->second);
        if (s == servers_.end() || s->second.done) {
            counters_.add("correlate.thread_activity_forgotten");
            it = last_activity_.erase(it);
        } else {
            ++it;
        }
    }
}

void ContextTable::index_position(const ConnPos& pos, const RequestKey& key) {
    if (size_t evicted = servers_by_pos_.put(pos, key))
        counters_.add("correlate.server_positions_evicted", evicted);
}

const RequestKey* ContextTable::server_at(const ConnPos& pos) const {
    const RequestKey* key = servers_by_pos_.find(pos);
    return key != nullptr && servers_.count(*key) != 0 ? key : nullptr;
}

void ContextTable::put_kernel(const ConnPos& pos, KernelContext&& kc) {
    if (!kernel_pending_.count(pos)) kernel_order_.push_back(pos);
    kernel_pending_[pos] = std::move(kc);
    while (kernel_order_.size() > max_) {
        if (kernel_pending_.erase(kernel_order_.front()))
            counters_.add("correlate.kernel_context_unclaimed");
        kernel_order_.pop_front();
    }
    // Claimed entries leave kernel_pending_ at once; drop their queue slots lazily.
    while (!kernel_order_.empty() && !kernel_pending_.count(kernel_order_.front()))
        kernel_order_.pop_front();
}

std::optional<KernelContext> ContextTable::take_kernel(const ConnPos& pos) {
    if (kernel_pending_.empty()) return std::nullopt;
    auto it = kernel_pending_.find(pos);
    if (it == kernel_pending_.end()) return std::nullopt;
    std::optional<KernelContext> kc(std::move(it->second));
    kernel_pending_.erase(it);
    return kc;
}

}  // namespace passport::correlate
