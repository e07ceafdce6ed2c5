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
//  - an outgoing request (client role) made on a thread that is serving a request belongs to
//    the most recently started request open on that thread (threads serve one request at a
//    time; on an event loop this is the best guess available) and becomes one of its
//    subsegments; made outside any request, it becomes a segment of its own;
//  - a call that completes after its parent segment was sent goes out as an independent
//    subsegment.
// Runs on the pipeline thread. All tables are bounded.
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "userspace/common/clock.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/correlate/call_truth.hpp"
#include "userspace/correlate/go_handoff.hpp"
#include "userspace/correlate/identity_provider.hpp"
#include "userspace/correlate/link_rule.hpp"
#include "userspace/correlate/process_info.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/redact/redact.hpp"
#include "userspace/xray/ids.hpp"
#include "userspace/xray/segment.hpp"
#include "userspace/xray/trace_header.hpp"

namespace passport::correlate {

// What the sampling rules see of a request that arrived without an upstream decision.
struct SamplingInput {
    std::string service_name;
    std::string host;  // Host header without port
    std::string method;
    std::string path;  // URL path without query
};

using SamplingDecider = std::function<bool(const SamplingInput&, std::string* rule_name)>;

struct CorrelatorConfig {
    std::string configured_service_name;  // --service-name
    std::string hostname;                 // this machine, for metadata
    // Open + recently finished contexts, per kind. Finished ones stay only so late calls and
    // late-reported callees still find them; the oldest go first (correlate.contexts_evicted
    // counts open ones lost that way).
    size_t max_contexts = 8192;
    // Subsegments an open server request keeps for its segment (about what one 64 KB document
    // holds). Calls finishing beyond that are sent at once as independent subsegments under it
    // (correlate.subsegments_flushed), or dropped when it is not sampled
    // (correlate.subsegments_dropped).
    size_t max_subsegments = 1000;
    // Names of the kernel's sampling rules by index (sample::KernelRules::names), so a segment
    // the kernel sampled names its rule as one sampled here would.
    std::vector<std::string> kernel_rule_names = {};
    // Credential values in URLs and process arguments (userspace/redact). Userinfo is always
    // removed from URLs.
    redact::Policy redaction = {};
    // Process arguments (argv after argv[0]) in metadata.passport.process.command: off by
    // default (--export-process-args); when on, credentials in them are redacted too.
    bool export_process_args = false;
    // Names and identity blocks (EC2, ECS, Kubernetes) per process; null: names from /proc
    // alone (ProcessOnlyIdentity). Not owned; outlives the correlator.
    IdentityProvider* identity = nullptr;
};

class Correlator {
  public:
    using SegmentSink = std::function<void(xray::Segment&&)>;
    // An independent subsegment: the subsegment, its trace id and its parent's id.
    using SubsegmentSink = std::function<void(xray::Subsegment&&, const std::string& trace_id,
                                              const std::string& parent_id)>;

    Correlator(CorrelatorConfig cfg, ProcessInfoCache& processes, xray::IdGenerator& ids,
               const ClockOffset& clock, SamplingDecider sampler, Counters& counters,
               SegmentSink sink, SubsegmentSink subsegment_sink = nullptr);

    void on_request_seen(const pairing::HttpRequestSeen& seen);
    // The kernel's context for a server request (reported before the request's bytes); used by
    // the request at (conn, request_pos) when its head is parsed.
    void on_kernel_context(const events::TraceCtx& kc);
    void on_exchange(pairing::HttpExchange&& ex);
    // The kernel injected (or found) X-Amzn-Trace-Id in an outgoing request: the call it matches
    // takes the injected ids (see docs/injection.md). Usually reported before the call's bytes.
    void on_inject(const events::Inject& inj);
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
        return {servers_.size(),        calls_.size(),          servers_by_tuple_.size(),
                calls_by_tuple_.size(), open_by_thread_.size(), last_activity_.size()};
    }
    // The process exec'd or exited: its cached name and facts are stale.
    // The names of the kernel's sampling rules by index, after a configuration reload.
    void set_kernel_rule_names(std::vector<std::string> names) {
        cfg_.kernel_rule_names = std::move(names);
    }
    void forget_process(uint32_t tgid) {
        process_json_.erase(tgid);
        identity_->forget(tgid);
        go_handoffs_.forget_process(tgid);
    }

  private:
    struct RequestKey {
        events::ConnKey conn;
        uint64_t start_ns = 0;
        bool operator==(const RequestKey&) const = default;
    };
    struct RequestKeyHash {
        size_t operator()(const RequestKey& k) const {
            return events::ConnKeyHash{}(k.conn) ^ (k.start_ns * 0x9E3779B97F4A7C15ULL);
        }
    };
    struct KernelContext {
        std::string trace_id;
        std::string segment_id;
        std::string parent_id;
        events::Sampled sampled = events::Sampled::kUnknown;
        events::CtxSource source = events::CtxSource::kNone;
        events::Rule rule = events::Rule::kNone;
    };
    struct ServerContext {
        uint32_t tgid = 0;
        uint32_t tid = 0;
        events::Endpoint local;
        events::Endpoint remote;
        uint64_t start_ns = 0;
        xray::TraceHeader upstream;  // from the request's own headers
        SamplingInput sampling;
        std::string segment_id;
        bool resolved = false;
        std::string trace_id;
        std::string parent_id;
        bool sampled = false;
        bool sampled_upstream = false;  // the decision came with the request
        std::string rule_name;
        bool has_linked_call = false;  // stitched under a call made on this node
        RequestKey linked_call;
        bool done = false;        // its segment was sent (or dropped)
        bool has_kernel = false;  // the kernel gave it a context (it is in thread_ctx)
        KernelContext kernel;
        std::vector<xray::Subsegment> subsegments;
    };
    struct CallContext {
        bool has_parent = false;
        RequestKey parent;  // server request it was made under
        std::string subsegment_id;
        // Made outside any request: the segment it becomes, and its trace.
        std::string own_segment_id;
        std::string own_trace_id;
        bool own_sampled = false;
        std::string own_rule_name;  // the sampling rule that decided own_sampled
        events::Endpoint local;
        events::Endpoint remote;
        uint64_t start_ns = 0;
        bool downstream_linked = false;  // a traced server on this node took it as parent
        bool injected = false;           // the kernel put our ids into its X-Amzn-Trace-Id
        bool done = false;
        // The call's request carried exactly the trace header (Root and Parent) its parent request
        // arrived with: the caller forwarded it (a proxy) instead of making its own.
        bool forwards_parent_header = false;
        std::string forwarded_root;
        std::string forwarded_parent;
        // Why `parent` is this call's request (metadata.passport.link): the rule, and whether it
        // is inferred (the thread was serving more than one request; see link_rule.hpp).
        LinkRule link = LinkRule::kNone;
        bool link_inferred = false;
    };

    ServerContext& server_context(const pairing::HttpRequestSeen& seen);
    // The request carries a trace header the trace must follow (its own, as the kernel or the
    // parser read it): then same-node stitching applies only to a call that forwarded it.
    static bool has_own_header(const ServerContext& ctx);
    // Root and Parent of that header: the kernel's reading when it read one, else the parser's.
    static void own_header_ids(const ServerContext& ctx, std::string& root, std::string& parent);
    // The server may be stitched under the call: it has no header of its own, or its header is
    // the one the call forwarded unchanged from the caller's own request.
    static bool may_link(const ServerContext& server, const CallContext& call);
    // The header's trace and sampling decision, without the kernel (replays, kernel heads missed).
    void apply_upstream(ServerContext& ctx);
    // Takes the kernel's ids and its sampling decision; when the kernel left sampling to
    // userspace (Sampled unknown), the rules decide here, still with the kernel's ids.
    void apply_kernel(ServerContext& ctx);
    void resolve(ServerContext& ctx, int depth = 0);
    // Trace id, sampled flag of whatever a call belongs to.
    bool call_trace(CallContext& call, std::string& trace_id, bool& sampled, int depth);
    void link(ServerContext& server, const RequestKey& call_key, CallContext& call);
    void try_link_server(ServerContext& server);
    void try_link_call(const RequestKey& call_key, CallContext& call);

    // Injection reports, keyed by tgid + connection tuple + egress offset of the request.
    static std::string inject_key(uint32_t tgid, const events::Endpoint& local,
                                  const events::Endpoint& remote, uint64_t pos);
    void apply_inject(CallContext& call, const events::Inject& inj);
    // A server request whose header (its own, as read by the kernel or the parser) names as Parent
    // a subsegment id the kernel injected on this node: it takes that call's current trace (the
    // call's parent may have been stitched into another trace since the kernel wrote the header),
    // its sampling decision, and the call as parent. False when the id is not one injected here.
    bool link_by_injected_id(ServerContext& ctx, int depth);
    // Trace id and sampled flag of the call behind the injection report `ikey`, whose injected
    // subsegment id is `id`: from the call when it was parsed, else from the report itself.
    bool injected_call_trace(const std::string& ikey, const std::string& id, std::string& trace_id,
                             bool& sampled, int depth);

    void finish_server(pairing::HttpExchange&& ex);
    void finish_call(pairing::HttpExchange&& ex);
    void build_segment(const ServerContext& ctx, const pairing::HttpExchange& ex, xray::Segment& s);
    xray::Subsegment build_subsegment(const CallContext& call, const pairing::HttpExchange& ex);
    // metadata.passport, serialised (xray::Segment::passport_metadata).
    std::string process_metadata(uint32_t tgid, uint32_t tid, const events::Endpoint& local,
                                 const events::Endpoint& remote);
    std::string process_facts(uint32_t tgid);  // the per-process part, cached below
    std::string service_name(uint32_t tgid);
    std::shared_ptr<const identity::ProcessIdentity> identity_of(uint32_t tgid);
    // Name, origin, aws blocks and metadata.passport of a segment of process `tgid`.
    void fill_identity(xray::Segment& s, uint32_t tgid, uint32_t tid, const events::Endpoint& local,
                       const events::Endpoint& remote);
    bool decide(const SamplingInput& in, std::string* rule_name);
    void remember(std::deque<RequestKey>& order, const RequestKey& key, bool server);
    // Removes a server request from the per-thread and per-tuple indexes.
    void unindex_server(const RequestKey& key, const ServerContext& ctx);
    // Removes a call from calls_by_tuple_ (the entry goes when its last call does).
    void unindex_call(const RequestKey& key, const CallContext& call);
    // A call finished under an open request that already holds max_subsegments.
    void overflow_subsegment(ServerContext& parent, xray::Subsegment&& sub);
    // Keeps last_activity_ within max_contexts threads: forgets threads whose request is gone.
    void bound_thread_activity();

    CorrelatorConfig cfg_;
    ProcessInfoCache& processes_;
    xray::IdGenerator& ids_;
    const ClockOffset& clock_;
    SamplingDecider sampler_;
    Counters& counters_;
    SegmentSink sink_;
    SubsegmentSink subsegment_sink_;

    std::unordered_map<RequestKey, ServerContext, RequestKeyHash> servers_;
    std::unordered_map<RequestKey, CallContext, RequestKeyHash> calls_;
    std::deque<RequestKey> server_order_;  // creation order, for the bound
    std::deque<RequestKey> call_order_;
    // Open server requests per thread ((tgid << 32) | tid), in arrival order.
    std::unordered_map<uint64_t, std::vector<RequestKey>> open_by_thread_;
    // Per thread, the request whose I/O it handled last: its head was read there, or a call made
    // for it got its response there. On an event loop the code that runs next (the handler, or
    // its continuation after an awaited call) most likely works for that request.
    std::unordered_map<uint64_t, RequestKey> last_activity_;
    // Threads seen serving more than one request at once (event loops): a call made there is
    // linked by inference (bounded like last_activity_).
    ThreadsServingMany event_loops_;
    GoHandoffs go_handoffs_;
    // "local>remote" of each side, for same-node stitching.
    std::unordered_map<std::string, std::vector<RequestKey>> servers_by_tuple_;
    std::unordered_map<std::string, std::vector<RequestKey>> calls_by_tuple_;
    // Injection reports not yet matched to a call, and calls by inject_key (bounded).
    std::unordered_map<std::string, events::Inject> pending_injects_;
    std::deque<std::string> pending_inject_order_;
    std::unordered_map<std::string, RequestKey> calls_by_inject_key_;
    std::deque<std::string> calls_by_inject_key_order_;
    // Subsegment ids the kernel injected (hex) -> their injection report's inject_key (bounded):
    // reaches the call through calls_by_inject_key_, or the report while it is still pending.
    std::unordered_map<std::string, std::string> injected_ids_;
    std::deque<std::string> injected_ids_order_;
    // Server requests by (connection, ingress offset of the request), as the kernel names them.
    std::unordered_map<std::string, RequestKey> servers_by_pos_;
    std::deque<std::string> servers_by_pos_order_;
    // Per-process metadata and service names, forgotten when the process execs or exits.
    // Per process: `"command":…,"exe":…,"pid":N` (the members of metadata.passport.process
    // before "tid", in the order nlohmann::json would write them), serialised once.
    std::unordered_map<uint32_t, std::string> process_json_;
    std::unique_ptr<IdentityProvider> own_identity_;  // when the config gives none
    IdentityProvider* identity_ = nullptr;
    // Kernel contexts not yet claimed by a parsed request, by (conn, request_pos); bounded.
    std::unordered_map<RequestKey, KernelContext, RequestKeyHash> kernel_pending_;
    std::deque<RequestKey> kernel_order_;
    // Call ids that requests served on this node named as parent: those calls are `traced`.
    CalleeParents callee_parents_;
};

}  // namespace passport::correlate
