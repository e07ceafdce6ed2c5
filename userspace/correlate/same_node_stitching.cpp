#include "userspace/correlate/same_node_stitching.hpp"

#include <algorithm>

namespace passport::correlate {
namespace {

constexpr size_t kCallsPerTuple = 8;

void remove_key(std::unordered_map<TupleKey, std::vector<RequestKey>, TupleKeyHash>& index,
                const TupleKey& tuple, const RequestKey& key) {
    auto it = index.find(tuple);
    if (it == index.end()) return;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), key), v.end());
    if (v.empty()) index.erase(it);
}

}  // namespace

void SameNodeStitcher::index_server(const RequestKey& key, const ServerContext& ctx) {
    servers_[tuple_of(ctx.local, ctx.remote)].push_back(key);
}

void SameNodeStitcher::unindex_server(const RequestKey& key, const ServerContext& ctx) {
    remove_key(servers_, tuple_of(ctx.local, ctx.remote), key);
}

void SameNodeStitcher::index_call(const RequestKey& key, const CallContext& call) {
    // Keep-alive connections make many calls on one tuple: keep the few newest still known.
    auto& same_tuple = calls_[tuple_of(call.local, call.remote)];
    same_tuple.erase(std::remove_if(same_tuple.begin(), same_tuple.end(),
                                    [this](const RequestKey& k) { return !table_.has_call(k); }),
                     same_tuple.end());
    if (same_tuple.size() >= kCallsPerTuple) {
        same_tuple.erase(same_tuple.begin());
        counters_.add("correlate.tuple_calls_trimmed");
    }
    same_tuple.push_back(key);
}

void SameNodeStitcher::unindex_call(const RequestKey& key, const CallContext& call) {
    remove_key(calls_, tuple_of(call.local, call.remote), key);
}

bool SameNodeStitcher::may_link(const ServerContext& server, const CallContext& call) {
    if (!has_own_header(server)) return true;
    // A header of its own wins over stitching (the app's own SDK made it), unless the caller only
    // passed on the header it had received: then the call, not the caller's caller, is the parent.
    if (!call.forwards_parent_header) return false;
    std::string root;
    std::string parent;
    own_header_ids(server, root, parent);
    return root == call.forwarded_root && parent == call.forwarded_parent;
}

void SameNodeStitcher::link(ServerContext& server, const RequestKey& call_key, CallContext& call) {
    server.has_linked_call = true;
    server.linked_call = call_key;
    call.downstream_linked = true;
    counters_.add("correlate.stitched_same_node");
    if (has_own_header(server)) counters_.add("correlate.stitched_forwarded_header");
}

void SameNodeStitcher::try_link_server(ServerContext& server) {
    if (server.has_linked_call || server.resolved) return;
    auto it = calls_.find(tuple_of(server.remote, server.local));
    if (it == calls_.end()) return;
    const RequestKey* best = nullptr;
    CallContext* best_call = nullptr;
    for (const RequestKey& k : it->second) {
        CallContext* c = table_.call(k);
        if (c == nullptr || c->downstream_linked || !may_link(server, *c)) continue;
        // The call was written before the server read it; allow for the two syscalls' exits
        // being reported in either order.
        if (!best || k.start_ns > best->start_ns) {
            best = &k;
            best_call = c;
        }
    }
    if (best) link(server, *best, *best_call);
}

void SameNodeStitcher::try_link_call(const RequestKey& call_key, CallContext& call) {
    if (call.downstream_linked) return;
    auto it = servers_.find(tuple_of(call.remote, call.local));
    if (it == servers_.end()) return;
    for (const RequestKey& k : it->second) {
        ServerContext* s = table_.server(k);
        if (s == nullptr || s->has_linked_call || s->resolved || !may_link(*s, call)) continue;
        link(*s, call_key, call);
        return;
    }
}

}  // namespace passport::correlate
