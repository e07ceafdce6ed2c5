#pragma once
// Correlator: turns parsed requests and paired exchanges into X-Ray documents the way an X-Ray
// SDK would, with no code in the traced process.
//
// Contexts are created when a request's head is parsed (on_request_seen) and resolved lazily:
//  - a server request (one the traced process serves) gets a segment id at once; its trace id,
//    parent and sampling decision are fixed the first time anything needs them, from, in order:
//    its own X-Amzn-Trace-Id (or W3C traceparent), else the call on this node whose connection
//    is the mirror of its own (same-node stitching: the caller is traced too), else a new trace
//    and the sampling rules. A header that the caller on this node merely forwarded (its call
//    carried exactly the header its own request arrived with: a proxy) is not the caller's:
//    then stitching gives the parent, the header the trace and sampling decision;
//  - an outgoing request (client role) belongs to the request it was made for and becomes one
//    of its subsegments: the request the kernel named when it injected the call's header, else
//    the open request whose I/O the thread handled last, else the latest the thread started
//    (call_linking.hpp; on an event loop the thread rules are the best guess available and say
//    so); made outside any request, it becomes a segment of its own;
//  - a call that completes after its parent segment was sent goes out as an independent
//    subsegment.
// Runs on the pipeline thread. All tables are bounded.
//
// This class coordinates; each concern has its own files in userspace/correlate/:
//  - context_table.hpp: server and call contexts, their bounds and eviction order, the
//    per-thread open-request index, the kernel's contexts not yet claimed (contexts.hpp: what a
//    context holds; keys.hpp: the tables' integer and struct keys);
//  - call_linking.hpp: which request a call was made for, one function per link rule
//    (link_rule.hpp names them), and the event-loop inference;
//  - same_node_stitching.hpp: a server request put under the call on this node that sent it;
//  - injection_matcher.hpp: the kernel's injection reports matched to calls, injected ids back
//    to their calls, callee parents;
//  - xray_document_builder.hpp: segments and subsegments, identity and metadata.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "userspace/common/clock.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/correlate/call_linking.hpp"
#include "userspace/correlate/context_table.hpp"
#include "userspace/correlate/contexts.hpp"
#include "userspace/correlate/correlator_config.hpp"
#include "userspace/correlate/go_handoff.hpp"
#include "userspace/correlate/identity_provider.hpp"
#include "userspace/correlate/injection_matcher.hpp"
#include "userspace/correlate/process_info.hpp"
#include "userspace/correlate/same_node_stitching.hpp"
#include "userspace/correlate/xray_document_builder.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/xray/ids.hpp"
#include "userspace/xray/segment.hpp"

namespace passport::correlate {

class Correlator {
  public:
    using SegmentSink = std::function<void(xray::Segment&&)>;
    // An independent subsegment: the subsegment, its trace id and its parent's id.
    using SubsegmentSink = std::function<void(xray::Subsegment&&, const std::string& trace_id,
                                              const std::string& parent_id)>;

    Correlator(CorrelatorConfig cfg, ProcessInfoCache& processes, xray::IdGenerator& ids,
               const ClockOffset& clock, SamplingDecider sampler, Counters& counters,
               SegmentSink sink, SubsegmentSink subsegment_sink = nullptr);
    // Its parts hold references to one another.
    Correlator(const Correlator&) = delete;
    Correlator& operator=(const Correlator&) = delete;

    void on_request_seen(const pairing::HttpRequestSeen& seen);
    // The kernel's context for a server request (reported before the request's bytes); used by
    // the request at (conn, request_pos) when its head is parsed.
    void on_kernel_context(const events::TraceCtx& kc);
    void on_exchange(pairing::HttpExchange&& ex);
    // The kernel injected (or found) X-Amzn-Trace-Id in an outgoing request: the call it matches
    // takes the injected ids (see docs/injection.md). Usually reported before the call's bytes.
    void on_inject(const events::Inject& inj);
    // Go net/http: the request context the transport handed to the thread that writes a call.
    void on_go_handoff(const events::GoHandoff& h) { go_handoffs_.saw(h); }
    // Entries in the tables that grow with traffic (for tests and the exit report).
    struct TableSizes {
        size_t servers = 0;
        size_t calls = 0;
        size_t servers_by_tuple = 0;
        size_t calls_by_tuple = 0;
        size_t open_threads = 0;
        size_t thread_activity = 0;
    };
    TableSizes table_sizes() const {
        return {table_.servers(),           table_.calls(),        stitcher_.servers_by_tuple(),
                stitcher_.calls_by_tuple(), table_.open_threads(), table_.thread_activity()};
    }
    // The process exec'd or exited: its cached name and facts are stale.
    // The names of the kernel's sampling rules by index, after a configuration reload.
    void set_kernel_rule_names(std::vector<std::string> names) {
        cfg_.kernel_rule_names = std::move(names);
    }
    void forget_process(uint32_t tgid) {
        builder_.forget_process(tgid);
        go_handoffs_.forget_process(tgid);
    }

  private:
    ServerContext& server_context(const pairing::HttpRequestSeen& seen);
    // Indexes a new server request (thread, tuple, kernel position, bound, callee parents).
    void index_server(const RequestKey& key, ServerContext& ctx,
                      const pairing::HttpRequestSeen& seen);
    void unindex_server(const RequestKey& key, const ServerContext& ctx);
    void new_call(const pairing::HttpRequestSeen& seen);
    // A call made outside any request: its own segment, trace and sampling decision.
    void give_own_trace(CallContext& call, const pairing::HttpRequestSeen& seen);
    SamplingInput sampling_input(uint32_t tgid, const protocol::http1::Request* req);

    // The header's trace and sampling decision, without the kernel (replays, kernel heads missed).
    void apply_upstream(ServerContext& ctx);
    // Takes the kernel's ids and its sampling decision; when the kernel left sampling to
    // userspace (Sampled unknown), the rules decide here, still with the kernel's ids.
    void apply_kernel(ServerContext& ctx);
    void resolve(ServerContext& ctx, int depth = 0);
    // A header the caller on this node forwarded unchanged: the call is the parent.
    bool resolve_forwarded(ServerContext& ctx);
    // No header of its own: the call on this node whose tuple mirrors it is the parent.
    bool resolve_stitched(ServerContext& ctx, int depth);
    // Trace id, sampled flag of whatever a call belongs to.
    bool call_trace(CallContext& call, std::string& trace_id, bool& sampled, int depth);
    // A server request whose header (its own, as read by the kernel or the parser) names as Parent
    // a subsegment id the kernel injected on this node: it takes that call's current trace (the
    // call's parent may have been stitched into another trace since the kernel wrote the header),
    // its sampling decision, and the call as parent. False when the id is not one injected here.
    bool link_by_injected_id(ServerContext& ctx, int depth);
    // Trace id and sampled flag of the call behind the injection report `ikey`, whose injected
    // subsegment id is `id`: from the call when it was parsed, else from the report itself.
    bool injected_call_trace(const InjectKey& ikey, uint64_t id, std::string& trace_id,
                             bool& sampled, int depth);

    void finish_server(pairing::HttpExchange&& ex);
    void finish_call(pairing::HttpExchange&& ex);
    // The call's subsegment goes into its parent's segment, or out on its own when that is sent.
    void place_under_parent(const CallContext& call, const pairing::HttpExchange& ex,
                            xray::Subsegment&& sub);
    void send_own_segment(const CallContext& call, const pairing::HttpExchange& ex,
                          xray::Subsegment&& sub);
    // A call finished under an open request that already holds max_subsegments.
    void overflow_subsegment(ServerContext& parent, xray::Subsegment&& sub);
    bool decide(const SamplingInput& in, std::string* rule_name);

    CorrelatorConfig cfg_;
    xray::IdGenerator& ids_;
    const ClockOffset& clock_;
    SamplingDecider sampler_;
    Counters& counters_;
    SegmentSink sink_;
    SubsegmentSink subsegment_sink_;
    ContextTable table_;
    SameNodeStitcher stitcher_;
    CallLinker linker_;
    GoHandoffs go_handoffs_;
    InjectionMatcher injections_;
    XrayDocumentBuilder builder_;
};

}  // namespace passport::correlate
