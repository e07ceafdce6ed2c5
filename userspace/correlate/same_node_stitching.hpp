#pragma once
// Same-node stitching: a call made by a traced process and the request a traced server on this
// node reads from it are the two ends of one connection, so the call's tuple (local, remote) is
// the mirror of the server request's (remote, local). The server request is then put under the
// call's subsegment (the caller is traced too), unless it carries a trace header of its own
// that the call did not merely forward (may_link). Both sides are indexed by TupleKey; a
// keep-alive connection keeps its few newest calls.
#include <unordered_map>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/correlate/context_table.hpp"
#include "userspace/correlate/contexts.hpp"
#include "userspace/correlate/keys.hpp"

namespace passport::correlate {

class SameNodeStitcher {
  public:
    SameNodeStitcher(ContextTable& table, Counters& counters)
        : table_(table), counters_(counters) {}

    void index_server(const RequestKey& key, const ServerContext& ctx);
    void unindex_server(const RequestKey& key, const ServerContext& ctx);
    // Drops calls no longer in the table from the tuple's entry and keeps at most 8.
    void index_call(const RequestKey& key, const CallContext& call);
    // Removes a call (the entry goes when its last call does).
    void unindex_call(const RequestKey& key, const CallContext& call);

    // The server takes the newest unlinked call on its mirrored tuple as parent, if any.
    void try_link_server(ServerContext& server);
    // The call becomes the parent of the first unresolved server request on its mirrored tuple.
    void try_link_call(const RequestKey& call_key, CallContext& call);

    // The server may be stitched under the call: it has no header of its own, or its header is
    // the one the call forwarded unchanged from the caller's own request.
    static bool may_link(const ServerContext& server, const CallContext& call);

    size_t servers_by_tuple() const { return servers_.size(); }
    size_t calls_by_tuple() const { return calls_.size(); }

  private:
    void link(ServerContext& server, const RequestKey& call_key, CallContext& call);

    ContextTable& table_;
    Counters& counters_;
    std::unordered_map<TupleKey, std::vector<RequestKey>, TupleKeyHash> servers_;
    std::unordered_map<TupleKey, std::vector<RequestKey>, TupleKeyHash> calls_;
};

}  // namespace passport::correlate
