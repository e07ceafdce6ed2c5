#include "userspace/correlate/correlator.hpp"

#include <algorithm>
#include <utility>

#include "userspace/aws/aws_subsegment.hpp"
#include "userspace/common/text.hpp"
#include "userspace/correlate/call_truth.hpp"
#include "userspace/correlate/endpoint_key.hpp"
#include "userspace/xray/document.hpp"

namespace passport::correlate {
namespace {

using protocol::http1::find_header;

constexpr int kMaxChainDepth = 32;

using text::trim;

std::string strip_port(std::string_view host) {
    if (!host.empty() && host[0] == '[') {  // [v6]:port
        auto rb = host.find(']');
        return std::string(rb == std::string_view::npos ? host : host.substr(1, rb - 1));
    }
    auto colon = host.rfind(':');
    if (colon != std::string_view::npos && host.find(':') == colon) {
        return std::string(host.substr(0, colon));
    }
    return std::string(host);
}

std::string endpoint_host(const events::Endpoint& e) {
    std::string ip = e.ip_string();
    if (ip.empty()) return "localhost";
    if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
    return ip + ":" + std::to_string(e.port);
}

// Raw bytes of both endpoints: an exact key without formatting addresses as text (IPv4-mapped
// IPv6 as IPv4: userspace/correlate/endpoint_key.hpp).
std::string tuple_key(const events::Endpoint& a, const events::Endpoint& b) {
    std::string k;
    k.reserve(2 * (sizeof a.port + a.addr.size()));
    for (const events::Endpoint& e : {comparable_endpoint(a), comparable_endpoint(b)}) {
        k.append(reinterpret_cast<const char*>(&e.port), sizeof e.port);
        k.append(reinterpret_cast<const char*>(e.addr.data()), e.addr.size());
    }
    return k;
}

// The URL as the SDK middlewares write it: scheme://Host + original target, then redacted
// (credential query values replaced, userinfo removed; userspace/redact).
std::string request_url(const protocol::http1::Request& req,
                        const events::Endpoint& authority_fallback, bool tls,
                        const redact::Policy& policy) {
    const std::string& target = req.target;
    if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0)
        return redact::redact_url(target, policy);
    const std::string* host = find_header(req.headers, "Host");
    std::string authority =
        host && !trim(*host).empty() ? std::string(trim(*host)) : endpoint_host(authority_fallback);
    return redact::redact_url((tls ? "https://" : "http://") + authority +
                                  (target.empty() || target[0] != '/' ? "/" : "") +
                                  (target == "*" ? "" : target),
                              policy);
}

const char* outcome_message(pairing::Outcome o) {
    switch (o) {
        case pairing::Outcome::kComplete:
            return "";
        case pairing::Outcome::kConnectionClosed:
            return "connection closed before the response was complete";
        case pairing::Outcome::kProcessExited:
            return "process exited before the response was complete";
        case pairing::Outcome::kTimedOut:
            return "no response within the pairing timeout";
        case pairing::Outcome::kShutdown:
            return "agent stopped before the response";
        case pairing::Outcome::kPipelineOverflow:
            return "request not paired: more pipelined requests than the pairing limit";
        case pairing::Outcome::kMemoryBudget:
            return "request not paired: the agent's memory budget was exhausted";
    }
    return "";
}

const char* outcome_type(pairing::Outcome o) {
    switch (o) {
        case pairing::Outcome::kProcessExited:
            return "ProcessExited";
        case pairing::Outcome::kTimedOut:
            return "TimedOut";
        case pairing::Outcome::kPipelineOverflow:
            return "PipelineOverflow";
        case pairing::Outcome::kMemoryBudget:
            return "MemoryBudget";
        case pairing::Outcome::kComplete:
        case pairing::Outcome::kConnectionClosed:
        case pairing::Outcome::kShutdown:
            return "ConnectionClosed";
    }
    return "ConnectionClosed";
}

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

// The trace header a request carries: X-Amzn-Trace-Id, else W3C traceparent. `unusable` (when
// given) counts an X-Amzn-Trace-Id without a usable Root.
xray::TraceHeader request_trace_header(const protocol::http1::Request& req, Counters* unusable) {
    xray::TraceHeader th;
    if (const std::string* v = find_header(req.headers, "X-Amzn-Trace-Id")) {
        th = xray::parse_trace_header(*v);
        if (!th.has_root() && unusable) unusable->add("correlate.trace_header_unusable");
    }
    if (!th.has_root()) {
        if (const std::string* v = find_header(req.headers, "traceparent")) {
            xray::TraceHeader w3c = xray::parse_traceparent(*v);
            if (w3c.has_root()) th = w3c;
        }
    }
    return th;
}

xray::TraceHeader upstream_header(const protocol::http1::Request& req, Counters& counters) {
    return request_trace_header(req, &counters);
}

// Times, HTTP facts and the error/fault/throttle flags shared by segments and subsegments.
template <typename Node>
void fill_exchange(Node& n, const pairing::HttpExchange& ex, const ClockOffset& clock,
                   xray::IdGenerator& ids, xray::HttpRequestInfo request_info, Counters& counters) {
    n.start_time = clock.to_epoch_seconds(exchange_start_ns(ex));
    xray::HttpInfo http;
    http.request = std::move(request_info);
    bool complete = ex.outcome == pairing::Outcome::kComplete && ex.response.has_value();
    if (ex.response) {
        xray::HttpResponseInfo resp;
        resp.status = ex.response->status;
        resp.content_length = response_content_length(ex);
        http.response = resp;
        xray::apply_http_status(resp.status, n.error, n.throttle, n.fault);
    }
    n.http = std::move(http);
    if (complete) {
        n.end_time = clock.to_epoch_seconds(ex.response_end_ns);
    } else if (ex.outcome == pairing::Outcome::kShutdown) {
        n.in_progress = true;  // still open when the agent stopped: X-Ray shows it as pending
        counters.add("correlate.in_progress");
    } else {
        uint64_t end_ns = ex.response_end_ns     ? ex.response_end_ns
                          : ex.response_start_ns ? ex.response_start_ns
                          : ex.request_end_ns    ? ex.request_end_ns
                                                 : ex.request_start_ns;
        n.end_time = clock.to_epoch_seconds(end_ns);
        n.fault = true;
        xray::Cause cause;
        xray::ExceptionInfo exc;
        exc.id = ids.new_segment_id();
        exc.message = outcome_message(ex.outcome);
        exc.type = outcome_type(ex.outcome);
        cause.exceptions.push_back(exc);
        n.cause = cause;
        counters.add("correlate.incomplete");
    }
    if (n.end_time != 0 && n.end_time < n.start_time) n.end_time = n.start_time;
}

std::string hex16(uint64_t v) {
    static const char* kDigits = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; i--, v >>= 4) out[static_cast<size_t>(i)] = kDigits[v & 15];
    return out;
}

std::string conn_pos_key(const events::ConnKey& c, uint64_t pos) {
    std::string k;
    k.append(reinterpret_cast<const char*>(&c.tgid), sizeof c.tgid);
    k.append(reinterpret_cast<const char*>(&c.fd), sizeof c.fd);
    k.append(reinterpret_cast<const char*>(&c.gen), sizeof c.gen);
    k.append(reinterpret_cast<const char*>(&pos), sizeof pos);
    return k;
}

constexpr size_t kMaxInjectEntries = 8192;

template <typename V>
void bounded_put(std::unordered_map<std::string, V>& map, std::deque<std::string>& order,
                 const std::string& key, V value, Counters& counters,
                 std::string_view evicted_counter) {
    if (!map.count(key)) order.push_back(key);
    map[key] = std::move(value);
    while (order.size() > kMaxInjectEntries) {
        if (map.erase(order.front())) counters.add(evicted_counter);
        order.pop_front();
    }
}

}  // namespace

std::string Correlator::inject_key(uint32_t tgid, const events::Endpoint& local,
                                   const events::Endpoint& remote, uint64_t pos) {
    std::string k = tuple_key(local, remote);
    k.append(reinterpret_cast<const char*>(&tgid), sizeof tgid);
    k.append(reinterpret_cast<const char*>(&pos), sizeof pos);
    return k;
}

void Correlator::apply_inject(CallContext& call, const events::Inject& inj) {
    if (!events::carries_our_ids(inj.outcome)) {
        counters_.add(inj.outcome == events::InjectOutcome::kAppHeader
                          ? "correlate.inject_app_header"
                          : "correlate.inject_skipped");
        return;
    }
    // What went on the wire wins: the downstream service takes these ids as its parent.
    call.subsegment_id = hex16(inj.subsegment_id);
    call.injected = true;
    counters_.add("correlate.inject_matched");
    const bool rewritten = inj.outcome == events::InjectOutcome::kRewritten;
    if (rewritten) {
        // A proxy's forwarded header now names this call: the request it forwarded is its parent,
        // exactly, whatever the thread heuristics said.
        call.forwards_parent_header = false;
        counters_.add("correlate.forwarded_header_rewritten");
    }
    if (inj.ctx_from_thread) {
        const bool go_link = call.has_parent && call.link == LinkRule::kGoHandoff;
        const RequestKey go_parent = call.parent;
        auto s = servers_by_pos_.find(conn_pos_key(inj.ctx_conn, inj.ctx_request_pos));
        if (s != servers_by_pos_.end() && servers_.count(s->second)) {
            call.has_parent = true;
            call.parent = s->second;
            // The thread rules' doubt (a thread serving many) stays for the kernel's choice.
            call.link = rewritten ? LinkRule::kForwardedHeader : LinkRule::kKernelThreadContext;
            if (rewritten) call.link_inferred = false;
            if (!rewritten && go_link && go_parent == s->second) {
                call.link = LinkRule::kGoHandoff;  // the kernel injected the request handed over
                call.link_inferred = false;
            }
        }
        return;
    }
    call.link = LinkRule::kNone;
    // The kernel saw no request being served: the call is a segment of its own, in the trace
    // the kernel minted for it.
    call.has_parent = false;
    call.own_trace_id = inj.trace_id;
    call.own_segment_id = hex16(inj.segment_id);
    // The kernel's sampling decision went on the wire (Sampled=1/0): the segment follows it.
    if (inj.sampled != events::Sampled::kUnknown) {
        call.own_sampled = inj.sampled == events::Sampled::kYes;
        call.own_rule_name.clear();
        if (events::rule_index(inj.rule) < cfg_.kernel_rule_names.size())
            call.own_rule_name = cfg_.kernel_rule_names[events::rule_index(inj.rule)];
    }
}

void Correlator::on_inject(const events::Inject& inj) {
    if (inj.outcome == events::InjectOutcome::kLeave) return;  // about the socket, not a request
    std::string key = inject_key(inj.tgid, inj.local, inj.remote, inj.app_pos);
    // Known before the call is parsed or the callee resolved, whichever comes first.
    if (events::carries_our_ids(inj.outcome) && inj.subsegment_id != 0)
        bounded_put(injected_ids_, injected_ids_order_, hex16(inj.subsegment_id), key, counters_,
                    "correlate.injected_ids_evicted");
    auto known = calls_by_inject_key_.find(key);
    if (known != calls_by_inject_key_.end()) {
        auto c = calls_.find(known->second);
        if (c != calls_.end() && !c->second.done && !c->second.injected) {
            apply_inject(c->second, inj);
            return;
        }
    }
    bounded_put(pending_injects_, pending_inject_order_, key, inj, counters_,
                "correlate.inject_reports_evicted");
}

Correlator::Correlator(CorrelatorConfig cfg, ProcessInfoCache& processes, xray::IdGenerator& ids,
                       const ClockOffset& clock, SamplingDecider sampler, Counters& counters,
                       SegmentSink sink, SubsegmentSink subsegment_sink)
    : cfg_(std::move(cfg)),
      processes_(processes),
      ids_(ids),
      clock_(clock),
      sampler_(std::move(sampler)),
      counters_(counters),
      sink_(std::move(sink)),
      subsegment_sink_(std::move(subsegment_sink)) {
    if (cfg_.identity == nullptr)
        own_identity_ = std::make_unique<ProcessOnlyIdentity>(cfg_.configured_service_name);
    identity_ = cfg_.identity != nullptr ? cfg_.identity : own_identity_.get();
}

std::shared_ptr<const identity::ProcessIdentity> Correlator::identity_of(uint32_t tgid) {
    if (auto id = identity_->cached(tgid)) return id;
    const ProcessInfo* proc = processes_.get(tgid);
    if (!proc) counters_.add("correlate.process_info_missing");
    return identity_->identity(tgid, proc);
}

std::string Correlator::service_name(uint32_t tgid) { return identity_of(tgid)->service_name; }

void Correlator::fill_identity(xray::Segment& s, uint32_t tgid, uint32_t tid,
                               const events::Endpoint& local, const events::Endpoint& remote) {
    const auto id = identity_of(tgid);
    if (s.name.empty()) s.name = id->service_name;
    s.origin = id->origin;
    s.aws_members = id->aws_members;
    for (const std::string& why : id->missing) counters_.add(why);
    s.passport_metadata = process_metadata(tgid, tid, local, remote);
    // process_metadata ends with the closing brace of metadata.passport.
    s.passport_metadata.insert(s.passport_metadata.size() - 1, id->metadata_members);
}

bool Correlator::decide(const SamplingInput& in, std::string* rule_name) {
    return sampler_ ? sampler_(in, rule_name) : true;
}

void Correlator::remember(std::deque<RequestKey>& order, const RequestKey& key, bool server) {
    order.push_back(key);
    // Bound: forget the oldest contexts (finished ones normally go first, as they are older).
    while (order.size() > cfg_.max_contexts) {
        RequestKey old = order.front();
        order.pop_front();
        if (server) {
            auto it = servers_.find(old);
            if (it == servers_.end()) continue;
            if (!it->second.done) {
                counters_.add("correlate.contexts_evicted");
                unindex_server(old, it->second);
            }
            servers_.erase(it);
        } else {
            auto it = calls_.find(old);
            if (it == calls_.end()) continue;
            unindex_call(old, it->second);
            calls_.erase(it);
        }
    }
}

void Correlator::unindex_server(const RequestKey& key, const ServerContext& ctx) {
    const uint64_t thread = (uint64_t{ctx.tgid} << 32) | ctx.tid;
    if (auto open = open_by_thread_.find(thread); open != open_by_thread_.end()) {
        auto& v = open->second;
        v.erase(std::remove(v.begin(), v.end(), key), v.end());
        if (v.empty()) open_by_thread_.erase(open);
    }
    if (auto last = last_activity_.find(thread);
        last != last_activity_.end() && last->second == key) {
        last_activity_.erase(last);
    }
    if (auto by_tuple = servers_by_tuple_.find(tuple_key(ctx.local, ctx.remote));
        by_tuple != servers_by_tuple_.end()) {
        auto& v = by_tuple->second;
        v.erase(std::remove(v.begin(), v.end(), key), v.end());
        if (v.empty()) servers_by_tuple_.erase(by_tuple);
    }
}

void Correlator::unindex_call(const RequestKey& key, const CallContext& call) {
    auto it = calls_by_tuple_.find(tuple_key(call.local, call.remote));
    if (it == calls_by_tuple_.end()) return;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), key), v.end());
    if (v.empty()) calls_by_tuple_.erase(it);
}

void Correlator::bound_thread_activity() {
    if (last_activity_.size() <= cfg_.max_contexts) return;
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

void Correlator::overflow_subsegment(ServerContext& parent, xray::Subsegment&& sub) {
    resolve(parent);
    if (parent.sampled && subsegment_sink_) {
        counters_.add("correlate.subsegments_flushed");
        subsegment_sink_(std::move(sub), parent.trace_id, parent.segment_id);
    } else {
        counters_.add("correlate.subsegments_dropped");
    }
}

Correlator::ServerContext& Correlator::server_context(const pairing::HttpRequestSeen& seen) {
    RequestKey key{seen.conn, seen.request_start_ns};
    auto it = servers_.find(key);
    if (it != servers_.end() && !it->second.done) return it->second;
    if (it != servers_.end()) servers_.erase(it);  // the same key again: a new request
    ServerContext& ctx = servers_[key];
    ctx.tgid = seen.tgid;
    ctx.tid = seen.tid;
    ctx.local = seen.local;
    ctx.remote = seen.remote;
    ctx.start_ns = seen.request_start_ns;
    ctx.segment_id = ids_.new_segment_id();
    // The kernel's context for this request, when it made one: its ids are what the serving
    // thread's outgoing calls carry downstream, so the segment must use them.
    if (!kernel_pending_.empty()) {
        auto k = kernel_pending_.find(RequestKey{seen.conn, seen.request_pos});
        if (k != kernel_pending_.end()) {
            ctx.has_kernel = true;
            ctx.kernel = std::move(k->second);
            ctx.segment_id = ctx.kernel.segment_id;
            kernel_pending_.erase(k);
            counters_.add("correlate.kernel_context_used");
        }
    }
    if (seen.request) {
        const auto& req = *seen.request;
        ctx.upstream = upstream_header(req, counters_);
        const std::string* host = find_header(req.headers, "Host");
        ctx.sampling = SamplingInput{service_name(seen.tgid), host ? strip_port(trim(*host)) : "",
                                     req.method, req.target.substr(0, req.target.find('?'))};
    }
    auto& open_here = open_by_thread_[(uint64_t{seen.tgid} << 32) | seen.tid];
    open_here.push_back(key);
    event_loops_.saw((uint64_t{seen.tgid} << 32) | seen.tid, open_here.size());
    last_activity_[(uint64_t{seen.tgid} << 32) | seen.tid] = key;
    servers_by_tuple_[tuple_key(seen.local, seen.remote)].push_back(key);
    bounded_put(servers_by_pos_, servers_by_pos_order_, conn_pos_key(seen.conn, seen.request_pos),
                key, counters_, "correlate.server_positions_evicted");
    remember(server_order_, key, /*server=*/true);
    if (has_own_header(ctx)) {  // the call it names as parent has a segment under it: this one
        std::string root, parent;
        own_header_ids(ctx, root, parent);
        callee_parents_.note(parent);
    }
    try_link_server(ctx);
    return ctx;
}

void Correlator::on_kernel_context(const events::TraceCtx& kc) {
    // Keyed like a request, with the stream position in place of the start time.
    RequestKey key{kc.conn, kc.request_pos};
    KernelContext k{kc.trace_id, kc.segment_id, kc.parent_id, kc.sampled, kc.source, kc.rule};
    if (!kernel_pending_.count(key)) kernel_order_.push_back(key);
    kernel_pending_[key] = std::move(k);
    while (kernel_order_.size() > cfg_.max_contexts) {
        if (kernel_pending_.erase(kernel_order_.front()))
            counters_.add("correlate.kernel_context_unclaimed");
        kernel_order_.pop_front();
    }
    // Claimed entries leave kernel_pending_ at once; drop their queue slots lazily.
    while (!kernel_order_.empty() && !kernel_pending_.count(kernel_order_.front()))
        kernel_order_.pop_front();
}

bool Correlator::has_own_header(const ServerContext& ctx) {
    return ctx.upstream.has_root() ||
           (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted);
}

void Correlator::own_header_ids(const ServerContext& ctx, std::string& root, std::string& parent) {
    if (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted) {
        root = ctx.kernel.trace_id;
        parent = ctx.kernel.parent_id;
    } else {
        root = ctx.upstream.root;
        parent = ctx.upstream.parent;
    }
}

bool Correlator::may_link(const ServerContext& server, const CallContext& call) {
    if (!has_own_header(server)) return true;
    // A header of its own wins over stitching (the app's own SDK made it), unless the caller only
    // passed on the header it had received: then the call, not the caller's caller, is the parent.
    if (!call.forwards_parent_header) return false;
    std::string root, parent;
    own_header_ids(server, root, parent);
    return root == call.forwarded_root && parent == call.forwarded_parent;
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

void Correlator::on_request_seen(const pairing::HttpRequestSeen& seen) {
    if (seen.role != events::Role::kClient) {
        server_context(seen);
        return;
    }
    RequestKey key{seen.conn, seen.request_start_ns};
    if (calls_.count(key)) return;
    CallContext call;
    call.subsegment_id = ids_.new_segment_id();
    call.local = seen.local;
    call.remote = seen.remote;
    call.start_ns = seen.request_start_ns;
    // The request this thread is serving: the one whose I/O it handled last, if still open;
    // else the latest one it started before this call.
    const uint64_t thread = (uint64_t{seen.tgid} << 32) | seen.tid;
    auto open = open_by_thread_.find(thread);
    auto last = last_activity_.find(thread);
    // The kernel's injection report for this request, if any: a context minted by the kernel
    // means no request was being served, whatever the thread heuristics below would say.
    const std::string ikey = inject_key(seen.tgid, seen.local, seen.remote, seen.request_pos);
    auto inj = pending_injects_.find(ikey);
    const bool kernel_minted = inj != pending_injects_.end() &&
                               events::carries_our_ids(inj->second.outcome) &&
                               !inj->second.ctx_from_thread;
    // Go net/http: the request the transport handed to this thread for the call it writes.
    const auto handed = go_handoffs_.take(seen.tgid, seen.tid);
    auto go_req = handed ? servers_by_pos_.find(conn_pos_key(handed->conn, handed->request_pos))
                         : servers_by_pos_.end();
    if (kernel_minted) {
        // fall through to the own-segment branch below
    } else if (go_req != servers_by_pos_.end() && servers_.count(go_req->second)) {
        call.has_parent = true;
        call.parent = go_req->second;
        call.link = LinkRule::kGoHandoff;
    } else if (open != open_by_thread_.end() && last != last_activity_.end() &&
               std::find(open->second.begin(), open->second.end(), last->second) !=
                   open->second.end()) {
        call.has_parent = true;
        call.parent = last->second;
        call.link = LinkRule::kLastIoOnThread;
    } else if (open != open_by_thread_.end()) {
        const RequestKey* best = nullptr;
        for (const RequestKey& k : open->second) {
            if (k.start_ns <= seen.request_start_ns && (!best || k.start_ns >= best->start_ns))
                best = &k;
        }
        if (best) {
            call.has_parent = true;
            call.parent = *best;
            call.link = LinkRule::kLatestOnThread;
        }
    }
    call.link_inferred = link_is_inferred(call.link, event_loops_.contains(thread),
                                          open != open_by_thread_.end() ? open->second.size() : 0);
    if (call.has_parent && seen.request) {
        // A proxy passes its request's trace header on unchanged: remember that the header this
        // call carries is not the caller's own, so its callee on this node is stitched under it.
        xray::TraceHeader sent = request_trace_header(*seen.request, nullptr);
        auto p = servers_.find(call.parent);
        if (sent.has_root() && p != servers_.end() && has_own_header(p->second)) {
            std::string root, parent;
            own_header_ids(p->second, root, parent);
            if (root == sent.root && parent == sent.parent) {
                call.forwards_parent_header = true;
                call.forwarded_root = std::move(root);
                call.forwarded_parent = std::move(parent);
                counters_.add("correlate.calls_forwarding_header");
            }
        }
    }
    if (!call.has_parent) {
        // Not made while serving anything (a worker, a cron loop): its own segment and trace.
        call.own_segment_id = ids_.new_segment_id();
        call.own_trace_id =
            ids_.new_trace_id(clock_.to_epoch_ns(seen.request_start_ns) / 1000000000ULL);
        const std::string* host =
            seen.request ? find_header(seen.request->headers, "Host") : nullptr;
        call.own_sampled = decide(
            SamplingInput{
                service_name(seen.tgid), host ? strip_port(trim(*host)) : "",
                seen.request ? seen.request->method : "",
                seen.request ? seen.request->target.substr(0, seen.request->target.find('?')) : ""},
            &call.own_rule_name);
    }
    if (inj != pending_injects_.end()) {
        apply_inject(call, inj->second);
        pending_injects_.erase(inj);
    }
    bounded_put(calls_by_inject_key_, calls_by_inject_key_order_, ikey, key, counters_,
                "correlate.call_inject_keys_evicted");
    auto [it, inserted] = calls_.emplace(key, std::move(call));
    // Keep-alive connections make many calls on one tuple: keep the few newest still known.
    auto& same_tuple = calls_by_tuple_[tuple_key(seen.local, seen.remote)];
    same_tuple.erase(std::remove_if(same_tuple.begin(), same_tuple.end(),
                                    [this](const RequestKey& k) { return !calls_.count(k); }),
                     same_tuple.end());
    if (same_tuple.size() >= 8) {
        same_tuple.erase(same_tuple.begin());
        counters_.add("correlate.tuple_calls_trimmed");
    }
    same_tuple.push_back(key);
    remember(call_order_, key, /*server=*/false);
    try_link_call(key, it->second);
}

void Correlator::link(ServerContext& server, const RequestKey& call_key, CallContext& call) {
    server.has_linked_call = true;
    server.linked_call = call_key;
    call.downstream_linked = true;
    counters_.add("correlate.stitched_same_node");
    if (has_own_header(server)) counters_.add("correlate.stitched_forwarded_header");
}

// A server request on this node whose connection mirrors a traced call: the caller's call is
// its parent, unless it carries its own trace header (then that header wins) that the call did
// not merely forward (may_link).
void Correlator::try_link_server(ServerContext& server) {
    if (server.has_linked_call || server.resolved) return;
    auto it = calls_by_tuple_.find(tuple_key(server.remote, server.local));
    if (it == calls_by_tuple_.end()) return;
    const RequestKey* best = nullptr;
    for (const RequestKey& k : it->second) {
        auto c = calls_.find(k);
        if (c == calls_.end() || c->second.downstream_linked || !may_link(server, c->second))
            continue;
        // The call was written before the server read it; allow for the two syscalls' exits
        // being reported in either order.
        if (!best || k.start_ns > best->start_ns) best = &k;
    }
    if (best) link(server, *best, calls_.at(*best));
}

void Correlator::try_link_call(const RequestKey& call_key, CallContext& call) {
    if (call.downstream_linked) return;
    auto it = servers_by_tuple_.find(tuple_key(call.remote, call.local));
    if (it == servers_by_tuple_.end()) return;
    for (const RequestKey& k : it->second) {
        auto s = servers_.find(k);
        if (s == servers_.end() || s->second.has_linked_call || s->second.resolved ||
            !may_link(s->second, call))
            continue;
        link(s->second, call_key, call);
        return;
    }
}

bool Correlator::call_trace(CallContext& call, std::string& trace_id, bool& sampled, int depth) {
    if (!call.has_parent) {
        trace_id = call.own_trace_id;
        sampled = call.own_sampled;
        return true;
    }
    auto p = servers_.find(call.parent);
    if (p == servers_.end()) return false;
    resolve(p->second, depth + 1);
    trace_id = p->second.trace_id;
    sampled = p->second.sampled;
    return true;
}

void Correlator::resolve(ServerContext& ctx, int depth) {
    if (ctx.resolved) return;
    if (has_own_header(ctx)) {
        // A header that the caller on this node forwarded unchanged (a proxy): the header gives
        // the trace (the same Root) and the sampling decision, the caller's call is the parent.
        try_link_server(ctx);
        auto c = ctx.has_linked_call ? calls_.find(ctx.linked_call) : calls_.end();
        if (c != calls_.end()) {
            if (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted) {
                apply_kernel(ctx);
            } else {
                apply_upstream(ctx);
            }
            ctx.parent_id = c->second.subsegment_id;
            return;
        }
    }
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
    } else if (!has_own_header(ctx)) {
        try_link_server(ctx);
        if (ctx.has_linked_call) {
            auto c = calls_.find(ctx.linked_call);
            std::string trace_id;
            bool sampled = false;
            if (c != calls_.end() && call_trace(c->second, trace_id, sampled, depth)) {
                ctx.trace_id = trace_id;
                ctx.parent_id = c->second.subsegment_id;
                ctx.sampled = sampled;
                ctx.sampled_upstream = true;
                ctx.resolved = true;
                return;
            }
        }
    }
    // No header the kernel could use, no caller on this node: the trace the kernel minted.
    if (ctx.has_kernel) {
        if (ctx.upstream.has_root()) counters_.add("correlate.kernel_minted_despite_header");
        apply_kernel(ctx);
        return;
    }
    apply_upstream(ctx);
}

bool Correlator::injected_call_trace(const std::string& ikey, const std::string& id,
                                     std::string& trace_id, bool& sampled, int depth) {
    // The report still waits for the call's head (newer than any call already matched to this
    // key): it says which request the writing thread was serving.
    auto p = pending_injects_.find(ikey);
    if (p != pending_injects_.end() && events::carries_our_ids(p->second.outcome) &&
        hex16(p->second.subsegment_id) == id) {
        const events::Inject& inj = p->second;
        if (inj.ctx_from_thread) {
            auto s = servers_by_pos_.find(conn_pos_key(inj.ctx_conn, inj.ctx_request_pos));
            if (s == servers_by_pos_.end()) return false;
            auto srv = servers_.find(s->second);
            if (srv == servers_.end()) return false;
            resolve(srv->second, depth + 1);
            trace_id = srv->second.trace_id;
            sampled = srv->second.sampled;
            return true;
        }
        if (inj.sampled == events::Sampled::kUnknown) return false;  // decided later
        trace_id = inj.trace_id;
        sampled = inj.sampled == events::Sampled::kYes;
        return true;
    }
    auto k = calls_by_inject_key_.find(ikey);
    if (k == calls_by_inject_key_.end()) return false;
    auto c = calls_.find(k->second);
    if (c == calls_.end() || !c->second.injected || c->second.subsegment_id != id) return false;
    return call_trace(c->second, trace_id, sampled, depth);
}

bool Correlator::link_by_injected_id(ServerContext& ctx, int depth) {
    std::string root, parent;
    own_header_ids(ctx, root, parent);
    if (parent.empty() || injected_ids_.empty()) return false;
    auto it = injected_ids_.find(parent);
    if (it == injected_ids_.end()) return false;
    std::string trace_id;
    bool sampled = false;
    if (!injected_call_trace(it->second, parent, trace_id, sampled, depth) || trace_id.empty())
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
        build_segment(ctx, ex, s);
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
    auto it = calls_.find(key);
    if (it == calls_.end()) {
        // Its head was never reported (lost, or the tracker joined mid-stream): treat as new.
        on_request_seen(seen_from(ex));
        it = calls_.find(key);
        if (it == calls_.end()) return;
    }
    CallContext& call = it->second;
    call.done = true;
    if (call.has_parent && ex.response_tid != 0) {
        last_activity_[(uint64_t{ex.tgid} << 32) | ex.response_tid] = call.parent;
        bound_thread_activity();
    }
    // The tuple entry stays: a downstream server reported after this call's read still links
    // to it. It goes with the context (bounded) or when newer calls on the tuple replace it.
    xray::Subsegment sub = build_subsegment(call, ex);

    if (call.has_parent) {
        auto p = servers_.find(call.parent);
        // A connection opened before the request arrived (a pool filled ahead) is not the call's
        // time: it starts at its first write, as on a reused connection.
        const double parent_start =
            p != servers_.end() ? clock_.to_epoch_seconds(p->second.start_ns) : 0;
        if (sub.start_time < parent_start) {
            counters_.add("correlate.call_start_clamped");
            sub.start_time = std::max(clock_.to_epoch_seconds(ex.request_start_ns), parent_start);
            sub.end_time = sub.end_time != 0 ? std::max(sub.end_time, sub.start_time) : 0;
        }
        if (p != servers_.end() && !p->second.done) {
            if (p->second.subsegments.size() >= cfg_.max_subsegments) {
                overflow_subsegment(p->second, std::move(sub));
                return;
            }
            p->second.subsegments.push_back(std::move(sub));
            return;
        }
        if (p != servers_.end()) {
            // Parent already sent: an independent subsegment under it.
            if (p->second.sampled && subsegment_sink_) {
                counters_.add("correlate.late_subsegments");
                subsegment_sink_(std::move(sub), p->second.trace_id, p->second.segment_id);
            }
            return;
        }
        counters_.add("correlate.call_parent_forgotten");
        return;
    }
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
    fill_identity(s, ex.tgid, ex.request_tid, ex.local, ex.remote);
    if (!call.own_rule_name.empty()) s.aws["xray"]["rule_name"] = call.own_rule_name;
    s.subsegments.push_back(std::move(sub));
    counters_.add("correlate.call_segments");
    sink_(std::move(s));
}

// {"connection":{"local":…,"remote":…},"host":…,"process":{…,"tid":N}}: members in sorted order,
// as the JSON DOM this replaced wrote them.
std::string Correlator::process_metadata(uint32_t tgid, uint32_t tid, const events::Endpoint& local,
                                         const events::Endpoint& remote) {
    auto cached = process_json_.find(tgid);
    if (cached == process_json_.end()) {
        if (process_json_.size() >= 4096) {
            process_json_.clear();
            counters_.add("correlate.process_cache_cleared");
        }
        cached = process_json_.emplace(tgid, process_facts(tgid)).first;
    }
    std::string md;
    md.reserve(96 + cfg_.hostname.size() + cached->second.size());
    md += R"({"connection":{"local":)";
    xray::append_json_string(md, endpoint_host(local));
    md += R"(,"remote":)";
    xray::append_json_string(md, endpoint_host(remote));
    md += '}';
    if (!cfg_.hostname.empty()) {
        md += R"(,"host":)";
        xray::append_json_string(md, cfg_.hostname);
    }
    md += R"(,"process":{)";
    md += cached->second;
    md += R"(,"tid":)";
    md += std::to_string(tid);
    md += "}}";
    return md;
}

std::string Correlator::process_facts(uint32_t tgid) {
    const ProcessInfo* proc = processes_.get(tgid);
    std::string out;
    if (proc) {
        if (cfg_.export_process_args && !proc->cmdline.empty()) {
            std::string cmd;
            for (const auto& a : redact::redact_args(proc->cmdline, cfg_.redaction))
                cmd += (cmd.empty() ? "" : " ") + a;
            out += R"("command":)";
            xray::append_json_string(out, std::string_view(cmd).substr(0, 250));
            out += ',';
        }
        if (!proc->container_id.empty()) {
            out += R"("container_id":)";
            xray::append_json_string(out, proc->container_id);
            out += ',';
        }
        if (!proc->exe.empty()) {
            out += R"("exe":)";
            xray::append_json_string(out, proc->exe);
            out += ',';
        }
    }
    out += R"("pid":)";
    out += std::to_string(tgid);
    return out;
}

void Correlator::build_segment(const ServerContext& ctx, const pairing::HttpExchange& ex,
                               xray::Segment& s) {
    const auto& req = ex.request;
    s.name = ctx.sampling.service_name;  // the name sampling saw; fill_identity's when empty
    s.id = ctx.segment_id;
    s.trace_id = ctx.trace_id;
    s.parent_id = ctx.parent_id;
    xray::HttpRequestInfo hr;
    hr.method = req.method;
    hr.url = request_url(req, ex.local, ex.tls, cfg_.redaction);
    if (const std::string* ua = find_header(req.headers, "User-Agent")) hr.user_agent = *ua;
    if (const std::string* xff = find_header(req.headers, "X-Forwarded-For")) {
        const std::string first(trim(std::string_view(*xff).substr(0, xff->find(','))));
        if (!first.empty()) {
            hr.client_ip = first;
            hr.x_forwarded_for = true;
        }
    }
    if (hr.client_ip.empty()) hr.client_ip = ex.remote.ip_string();
    fill_exchange(s, ex, clock_, ids_, std::move(hr), counters_);
    fill_identity(s, ex.tgid, ex.request_tid, ex.local, ex.remote);
    // Built member by member: the initializer-list form costs several times as much.
    if (!ctx.rule_name.empty()) s.aws["xray"]["rule_name"] = ctx.rule_name;
}

xray::Subsegment Correlator::build_subsegment(const CallContext& call,
                                              const pairing::HttpExchange& ex) {
    xray::Subsegment sub;
    sub.id = call.subsegment_id;
    const std::string* host = find_header(ex.request.headers, "Host");
    std::string name =
        host && !trim(*host).empty() ? strip_port(trim(*host)) : ex.remote.ip_string();
    sub.name = name.empty() ? "remote" : name;
    sub.namespace_ = "remote";
    xray::HttpRequestInfo hr;
    hr.method = ex.request.method;
    hr.url = request_url(ex.request, ex.remote, ex.tls, cfg_.redaction);
    // traced: only when a segment naming this call as parent is known to exist, or X-Ray would
    // count the trace broken while it waits for one that never comes (call_truth.hpp).
    if (call_traced(call.downstream_linked, callee_parents_.named(call.subsegment_id))) {
        hr.traced = true;
        counters_.add("correlate.calls_traced");
    }
    if (exchange_start_ns(ex) != ex.request_start_ns) counters_.add("correlate.calls_from_connect");
    fill_exchange(sub, ex, clock_, ids_, std::move(hr), counters_);
    if (call.has_parent && call.link != LinkRule::kNone) {
        auto& link = sub.metadata["passport"]["link"];
        link["rule"] = link_rule_name(call.link);
        link["inferred"] = call.link_inferred;
        count_link(counters_, call.link, call.link_inferred);
    }
    // AWS API calls become `aws` subsegments named after the service (userspace/aws).
    aws::fill_aws_subsegment(ex, sub, ids_, counters_);
    return sub;
}

}  // namespace passport::correlate
