#include "userspace/correlate/correlator.hpp"

#include <algorithm>
#include <utility>

#include "userspace/common/text.hpp"
#include "userspace/correlate/call_truth.hpp"

namespace passport::correlate {
namespace {

using protocol::http1::find_header;

constexpr int kMaxChainDepth = 32;

// The head of an exchange whose head was not reported on its own (lost, or joined mid-stream).
pairing::HttpRequestSeen seen_from(const pairing::HttpExchange& ex) {
    pairing::HttpRequestSeen seen;
    static_cast<pairing::ConnFacts&>(seen) = ex;
    seen.tgid = ex.tgid;
    seen.tid = ex.request_tid;
    seen.request_start_ns = ex.request_start_ns;
    seen.request_pos = ex.request_pos;
    seen.request = &ex.request;
    return seen;
}

}  // namespace

Correlator::Correlator(CorrelatorConfig cfg, ProcessInfoCache& processes, xray::IdGenerator& ids,
                       const ClockOffset& clock, SamplingDecider sampler, Counters& counters,
                       SegmentSink sink, SubsegmentSink subsegment_sink)
    : cfg_(std::move(cfg)),
      ids_(ids),
      clock_(clock),
      sampler_(std::move(sampler)),
      counters_(counters),
      sink_(std::move(sink)),
      subsegment_sink_(std::move(subsegment_sink)),
      table_(cfg_.max_contexts, counters),
      stitcher_(table_, counters),
      injections_(counters),
      builder_(cfg_, processes, ids, clock, counters) {}

bool Correlator::decide(const SamplingInput& in, std::string* rule_name) {
    return sampler_ ? sampler_(in, rule_name) : true;
}

SamplingInput Correlator::sampling_input(uint32_t tgid, const protocol::http1::Request* req) {
    const std::string* host = req ? find_header(req->headers, "Host") : nullptr;
    return SamplingInput{builder_.service_name(tgid),
                         host ? host_without_port(text::trim(*host)) : "", req ? req->method : "",
                         req ? req->target.substr(0, req->target.find('?')) : "",
                         builder_.origin(tgid)};
}

void Correlator::on_request_seen(const pairing::HttpRequestSeen& seen) {
    if (seen.role != events::Role::kClient) {
        server_context(seen);
        return;
    }
    new_call(seen);
}

ServerContext& Correlator::server_context(const pairing::HttpRequestSeen& seen) {
    RequestKey key{seen.conn, seen.request_start_ns};
    if (ServerContext* open = table_.open_server(key)) return *open;
    ServerContext& ctx = table_.add_server(key);
    ctx.tgid = seen.tgid;
    ctx.tid = seen.tid;
    ctx.local = seen.local;
    ctx.remote = seen.remote;
    ctx.start_ns = seen.request_start_ns;
    ctx.segment_id = ids_.new_segment_id();
    // The kernel's context for this request, when it made one: its ids are what the serving
    // thread's outgoing calls carry downstream, so the segment must use them.
    if (auto kernel = table_.take_kernel(ConnPos{seen.conn, seen.request_pos})) {
        ctx.has_kernel = true;
        ctx.kernel = std::move(*kernel);
        ctx.segment_id = ctx.kernel.segment_id;
        counters_.add("correlate.kernel_context_used");
    }
    if (seen.request) {
        ctx.upstream = request_trace_header(*seen.request, &counters_);
        ctx.sampling = sampling_input(seen.tgid, seen.request);
    }
    index_server(key, ctx, seen);
    return ctx;
}

void Correlator::index_server(const RequestKey& key, ServerContext& ctx,
                              const pairing::HttpRequestSeen& seen) {
    const uint64_t thread = thread_key(seen.tgid, seen.tid);
    linker_.saw_open(thread, table_.open_on_thread(thread, key));
    stitcher_.index_server(key, ctx);
    table_.index_position(ConnPos{seen.conn, seen.request_pos}, key);
    table_.remember_server(key, [this](const RequestKey& k, const ServerContext& c) {
        stitcher_.unindex_server(k, c);
    });
    if (has_own_header(ctx)) {  // the call it names as parent has a segment under it: this one
        std::string root;
        std::string parent;
        own_header_ids(ctx, root, parent);
        injections_.callee_parents().note(parent);
    }
    stitcher_.try_link_server(ctx);
}

void Correlator::unindex_server(const RequestKey& key, const ServerContext& ctx) {
    table_.close_on_thread(key, ctx);
    stitcher_.unindex_server(key, ctx);
}

void Correlator::new_call(const pairing::HttpRequestSeen& seen) {
    RequestKey key{seen.conn, seen.request_start_ns};
    if (table_.has_call(key)) return;
    CallContext call;
    call.subsegment_id = ids_.new_segment_id();
    call.local = seen.local;
    call.remote = seen.remote;
    call.start_ns = seen.request_start_ns;
    // The kernel's injection report for this request, if any: a context minted by the kernel
    // means no request was being served, whatever the thread rules would say.
    const InjectKey ikey =
        InjectionMatcher::key_of(seen.tgid, seen.local, seen.remote, seen.request_pos);
    const events::Inject* inj = injections_.pending(ikey);
    const bool kernel_minted =
        inj != nullptr && events::carries_our_ids(inj->outcome) && !inj->ctx_from_thread;
    // Go net/http: the request the transport handed to this thread for the call it writes.
    const auto handed = go_handoffs_.take(seen.tgid, seen.tid);
    const RequestKey* go_parent = handed && !kernel_minted
                                      ? table_.server_at(ConnPos{handed->conn, handed->request_pos})
                                      : nullptr;
    if (go_parent != nullptr) {
        link_go_handoff(call, *go_parent);
    } else {
        linker_.link_by_thread(call, table_, thread_key(seen.tgid, seen.tid), kernel_minted);
    }
    if (call.has_parent && seen.request) {
        if (const ServerContext* parent = table_.server(call.parent))
            note_forwarded_header(call, *seen.request, *parent, counters_);
    }
    if (!call.has_parent) give_own_trace(call, seen);
    if (inj != nullptr) {
        apply_inject(call, *inj, table_, cfg_.kernel_rule_names, counters_);
        injections_.drop_pending(ikey);
    }
    injections_.note_call(ikey, key);
    CallContext& stored = table_.add_call(key, std::move(call));
    stitcher_.index_call(key, stored);
    table_.remember_call(
        key, [this](const RequestKey& k, const CallContext& c) { stitcher_.unindex_call(k, c); });
    stitcher_.try_link_call(key, stored);
}

void Correlator::give_own_trace(CallContext& call, const pairing::HttpRequestSeen& seen) {
    // Not made while serving anything (a worker, a cron loop): its own segment and trace.
    call.own_segment_id = ids_.new_segment_id();
    call.own_trace_id =
        ids_.new_trace_id(clock_.to_epoch_ns(seen.request_start_ns) / 1000000000ULL);
    call.own_sampled = decide(sampling_input(seen.tgid, seen.request), &call.own_rule_name);
}

void Correlator::on_kernel_context(const events::TraceCtx& kc) {
    // Keyed like the request it is for: its connection and the stream position of its head.
    table_.put_kernel(
        ConnPos{kc.conn, kc.request_pos},
        KernelContext{kc.trace_id, kc.segment_id, kc.parent_id, kc.sampled, kc.source, kc.rule});
}

void Correlator::on_inject(const events::Inject& inj) {
    if (inj.outcome == events::InjectOutcome::kLeave) return;  // about the socket, not a request
    const InjectKey key = InjectionMatcher::key_of(inj);
    // Known before the call is parsed or the callee resolved, whichever comes first.
    injections_.note_injected_id(inj, key);
    if (const RequestKey* known = injections_.call_for(key)) {
        CallContext* call = table_.call(*known);
        if (call != nullptr && !call->done && !call->injected) {
            apply_inject(*call, inj, table_, cfg_.kernel_rule_names, counters_);
            return;
        }
    }
    injections_.hold(key, inj);
}

void Correlator::apply_kernel(ServerContext& ctx) {
    const KernelContext& k = ctx.kernel;
    ctx.trace_id = k.trace_id;
    ctx.parent_id = k.parent_id;
    if (k.sampled == events::Sampled::kUnknown) {  // the kernel could not decide: the rules here do
        ctx.sampled = decide(ctx.sampling, &ctx.rule_name);
        counters_.add("correlate.kernel_sampling_deferred");
    } else {
        ctx.sampled = k.sampled == events::Sampled::kYes;
        ctx.sampled_upstream =
            k.source != events::CtxSource::kMinted && k.rule == events::Rule::kNone;
        if (events::rule_index(k.rule) < cfg_.kernel_rule_names.size())
            ctx.rule_name = cfg_.kernel_rule_names[events::rule_index(k.rule)];
    }
    ctx.resolved = true;
}

void Correlator::apply_upstream(ServerContext& ctx) {
    const xray::TraceHeader& th = ctx.upstream;
    ctx.trace_id = th.has_root()
                       ? th.root
                       : ids_.new_trace_id(clock_.to_epoch_ns(ctx.start_ns) / 1000000000ULL);
    ctx.parent_id = th.has_root() ? th.parent : "";
    switch (th.sampled) {
        case xray::SampledFlag::kSampled:
            ctx.sampled = true;
            ctx.sampled_upstream = true;
            break;
        case xray::SampledFlag::kNotSampled:
            ctx.sampled = false;
            ctx.sampled_upstream = true;
            break;
        case xray::SampledFlag::kAbsent:
        case xray::SampledFlag::kRequested:
            ctx.sampled = decide(ctx.sampling, &ctx.rule_name);
            break;
    }
    ctx.resolved = true;
}

bool Correlator::call_trace(CallContext& call, std::string& trace_id, bool& sampled, int depth) {
    if (!call.has_parent) {
        trace_id = call.own_trace_id;
        sampled = call.own_sampled;
        return true;
    }
    ServerContext* parent = table_.server(call.parent);
    if (parent == nullptr) return false;
    resolve(*parent, depth + 1);
    trace_id = parent->trace_id;
    sampled = parent->sampled;
    return true;
}

bool Correlator::resolve_forwarded(ServerContext& ctx) {
    // A header that the caller on this node forwarded unchanged (a proxy): the header gives
    // the trace (the same Root) and the sampling decision, the caller's call is the parent.
    stitcher_.try_link_server(ctx);
    const CallContext* call = ctx.has_linked_call ? table_.call(ctx.linked_call) : nullptr;
    if (call == nullptr) return false;
    if (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted) {
        apply_kernel(ctx);
    } else {
        apply_upstream(ctx);
    }
    ctx.parent_id = call->subsegment_id;
    return true;
}

bool Correlator::resolve_stitched(ServerContext& ctx, int depth) {
    stitcher_.try_link_server(ctx);
    if (!ctx.has_linked_call) return false;
    CallContext* call = table_.call(ctx.linked_call);
    std::string trace_id;
    bool sampled = false;
    if (call == nullptr || !call_trace(*call, trace_id, sampled, depth)) return false;
    ctx.trace_id = trace_id;
    ctx.parent_id = call->subsegment_id;
    ctx.sampled = sampled;
    ctx.sampled_upstream = true;
    ctx.resolved = true;
    return true;
}

void Correlator::resolve(ServerContext& ctx, int depth) {
    if (ctx.resolved) return;
    if (has_own_header(ctx) && resolve_forwarded(ctx)) return;
    // The header names as parent a call whose id the kernel injected on this node: that call's
    // current trace wins over the header's Root (the call's request may have been stitched into
    // its own caller's trace after the kernel minted the Root the header carries).
    if (has_own_header(ctx) && depth <= kMaxChainDepth && link_by_injected_id(ctx, depth)) return;
    // The kernel read a trace header for this request: its reading wins (it is what the
    // thread's outgoing calls carried downstream).
    if (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted) {
        apply_kernel(ctx);
        return;
    }
    if (depth > kMaxChainDepth) {
        counters_.add("correlate.chain_too_deep");
    } else if (!has_own_header(ctx) && resolve_stitched(ctx, depth)) {
        return;
    }
    // No header the kernel could use, no caller on this node: the trace the kernel minted.
    if (ctx.has_kernel) {
        if (ctx.upstream.has_root()) counters_.add("correlate.kernel_minted_despite_header");
        apply_kernel(ctx);
        return;
    }
    apply_upstream(ctx);
}

bool Correlator::injected_call_trace(const InjectKey& ikey, uint64_t id, std::string& trace_id,
                                     bool& sampled, int depth) {
    // The report still waits for the call's head (newer than any call already matched to this
    // key): it says which request the writing thread was serving.
    const events::Inject* inj = injections_.pending(ikey);
    if (inj != nullptr && events::carries_our_ids(inj->outcome) && inj->subsegment_id == id) {
        if (inj->ctx_from_thread) {
            const RequestKey* key = table_.server_at(ConnPos{inj->ctx_conn, inj->ctx_request_pos});
            ServerContext* server = key != nullptr ? table_.server(*key) : nullptr;
            if (server == nullptr) return false;
            resolve(*server, depth + 1);
            trace_id = server->trace_id;
            sampled = server->sampled;
            return true;
        }
        if (inj->sampled == events::Sampled::kUnknown) return false;  // decided later
        trace_id = inj->trace_id;
        sampled = inj->sampled == events::Sampled::kYes;
        return true;
    }
    const RequestKey* key = injections_.call_for(ikey);
    CallContext* call = key != nullptr ? table_.call(*key) : nullptr;
    if (call == nullptr || !call->injected || call->injected_id != id) return false;
    return call_trace(*call, trace_id, sampled, depth);
}

bool Correlator::link_by_injected_id(ServerContext& ctx, int depth) {
    std::string root;
    std::string parent;
    own_header_ids(ctx, root, parent);
    if (parent.empty() || !injections_.any_injected()) return false;
    const std::optional<uint64_t> id = parse_hex16(parent);
    const InjectKey* ikey = id ? injections_.injected_by(*id) : nullptr;
    if (ikey == nullptr) return false;
    std::string trace_id;
    bool sampled = false;
    if (!injected_call_trace(InjectKey(*ikey), *id, trace_id, sampled, depth) || trace_id.empty())
        return false;
    ctx.trace_id = std::move(trace_id);
    ctx.parent_id = parent;
    ctx.sampled = sampled;
    ctx.sampled_upstream = true;
    ctx.resolved = true;
    counters_.add("correlate.linked_by_injected_id");
    if (ctx.trace_id != root) counters_.add("correlate.trace_realigned");
    return true;
}

void Correlator::on_exchange(pairing::HttpExchange&& ex) {
    if (ex.role == events::Role::kClient) {
        finish_call(std::move(ex));
    } else {
        finish_server(std::move(ex));
    }
}

void Correlator::finish_server(pairing::HttpExchange&& ex) {
    RequestKey key{ex.conn, ex.request_start_ns};
    ServerContext& ctx =
        server_context(seen_from(ex));  // existing, or made now if its head was not reported
    unindex_server(key, ctx);
    resolve(ctx);
    ctx.done = true;
    if (ctx.sampled) {
        xray::Segment s;
        builder_.build_segment(ctx, ex, s);
        counters_.add("correlate.segments");
        counters_.add("correlate.subsegments", ctx.subsegments.size());
        s.subsegments = std::move(ctx.subsegments);
        sink_(std::move(s));
    } else {
        counters_.add(ctx.sampled_upstream ? "correlate.not_sampled_upstream"
                                           : "correlate.not_sampled_rules");
    }
    // A finished context is kept only for its ids (late calls): drop everything else.
    ctx.subsegments = {};
    ctx.upstream = {};
    ctx.sampling = {};
}

void Correlator::finish_call(pairing::HttpExchange&& ex) {
    RequestKey key{ex.conn, ex.request_start_ns};
    CallContext* call = table_.call(key);
    if (call == nullptr) {
        // Its head was never reported (lost, or the tracker joined mid-stream): treat as new.
        on_request_seen(seen_from(ex));
        call = table_.call(key);
        if (call == nullptr) return;
    }
    call->done = true;
    if (call->has_parent && ex.response_tid != 0)
        table_.set_last_activity(thread_key(ex.tgid, ex.response_tid), call->parent);
    // The tuple entry stays: a downstream server reported after this call's read still links
    // to it. It goes with the context (bounded) or when newer calls on the tuple replace it.
    const bool traced = call_traced(call->downstream_linked,
                                    injections_.callee_parents().named(call->subsegment_id));
    xray::Subsegment sub = builder_.build_subsegment(*call, ex, traced);
    if (call->has_parent) {
        place_under_parent(*call, ex, std::move(sub));
    } else {
        send_own_segment(*call, ex, std::move(sub));
    }
}

void Correlator::place_under_parent(const CallContext& call, const pairing::HttpExchange& ex,
                                    xray::Subsegment&& sub) {
    ServerContext* parent = table_.server(call.parent);
    if (parent == nullptr) {
        counters_.add("correlate.call_parent_forgotten");
        return;
    }
    // A connection opened before the request arrived (a pool filled ahead) is not the call's
    // time: it starts at its first write, as on a reused connection.
    const double parent_start = clock_.to_epoch_seconds(parent->start_ns);
    if (sub.start_time < parent_start) {
        counters_.add("correlate.call_start_clamped");
        sub.start_time = std::max(clock_.to_epoch_seconds(ex.request_start_ns), parent_start);
        sub.end_time = sub.end_time != 0 ? std::max(sub.end_time, sub.start_time) : 0;
    }
    if (!parent->done) {
        if (parent->subsegments.size() >= cfg_.max_subsegments) {
            overflow_subsegment(*parent, std::move(sub));
            return;
        }
        parent->subsegments.push_back(std::move(sub));
        return;
    }
    // Parent already sent: an independent subsegment under it.
    if (parent->sampled && subsegment_sink_) {
        counters_.add("correlate.late_subsegments");
        subsegment_sink_(std::move(sub), parent->trace_id, parent->segment_id);
    }
}

void Correlator::send_own_segment(const CallContext& call, const pairing::HttpExchange& ex,
                                  xray::Subsegment&& sub) {
    // A call made outside any served request: a segment of its own.
    if (!call.own_sampled) {
        counters_.add("correlate.not_sampled_rules");
        return;
    }
    xray::Segment s;
    s.id = call.own_segment_id;
    s.trace_id = call.own_trace_id;
    s.start_time = sub.start_time;
    s.end_time = sub.end_time;
    s.in_progress = sub.in_progress;
    builder_.fill_identity(s, ex.tgid, ex.request_tid, ex.local, ex.remote);
    if (!call.own_rule_name.empty()) s.aws["xray"]["rule_name"] = call.own_rule_name;
    s.subsegments.push_back(std::move(sub));
    counters_.add("correlate.call_segments");
    sink_(std::move(s));
}

void Correlator::overflow_subsegment(ServerContext& parent, xray::Subsegment&& sub) {
    resolve(parent);
    if (parent.sampled && subsegment_sink_) {
        counters_.add("correlate.subsegments_flushed");
        subsegment_sink_(std::move(sub), parent.trace_id, parent.segment_id);
    } else {
        counters_.add("correlate.subsegments_dropped");
    }
}

}  // namespace passport::correlate
