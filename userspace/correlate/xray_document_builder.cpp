#include "userspace/correlate/xray_document_builder.hpp"

#include <utility>

#include "userspace/aws/aws_subsegment.hpp"
#include "userspace/common/text.hpp"
#include "userspace/correlate/call_truth.hpp"
#include "userspace/xray/document.hpp"

namespace passport::correlate {
namespace {

using protocol::http1::find_header;
using text::trim;

std::string endpoint_host(const events::Endpoint& e) {
    std::string ip = e.ip_string();
    if (ip.empty()) return "localhost";
    if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
    return ip + ":" + std::to_string(e.port);
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

}  // namespace

std::string host_without_port(std::string_view host) {
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

XrayDocumentBuilder::XrayDocumentBuilder(const CorrelatorConfig& cfg, ProcessInfoCache& processes,
                                         xray::IdGenerator& ids, const ClockOffset& clock,
                                         Counters& counters)
    : cfg_(cfg), processes_(processes), ids_(ids), clock_(clock), counters_(counters) {
    if (cfg_.identity == nullptr)
        own_identity_ = std::make_unique<ProcessOnlyIdentity>(cfg_.configured_service_name);
    identity_ = cfg_.identity != nullptr ? cfg_.identity : own_identity_.get();
}

void XrayDocumentBuilder::forget_process(uint32_t tgid) {
    process_json_.erase(tgid);
    identity_->forget(tgid);
}

std::shared_ptr<const identity::ProcessIdentity> XrayDocumentBuilder::identity_of(uint32_t tgid) {
    if (auto id = identity_->cached(tgid)) return id;
    const ProcessInfo* proc = processes_.get(tgid);
    if (!proc) counters_.add("correlate.process_info_missing");
    return identity_->identity(tgid, proc);
}

std::string XrayDocumentBuilder::service_name(uint32_t tgid) {
    return identity_of(tgid)->service_name;
}

std::string XrayDocumentBuilder::origin(uint32_t tgid) { return identity_of(tgid)->origin; }

void XrayDocumentBuilder::fill_identity(xray::Segment& s, uint32_t tgid, uint32_t tid,
                                        const events::Endpoint& local,
                                        const events::Endpoint& remote) {
    const auto id = identity_of(tgid);
    if (s.name.empty()) s.name = id->service_name;
    s.origin = id->origin;
    s.aws_members = id->aws_members;
    for (const std::string& why : id->missing) counters_.add(why);
    s.passport_metadata = process_metadata(tgid, tid, local, remote);
    // process_metadata ends with the closing brace of metadata.passport.
    s.passport_metadata.insert(s.passport_metadata.size() - 1, id->metadata_members);
}

// {"connection":{"local":…,"remote":…},"host":…,"process":{…,"tid":N}}: members in sorted order,
// as the JSON DOM this replaced wrote them.
std::string XrayDocumentBuilder::process_metadata(uint32_t tgid, uint32_t tid,
                                                  const events::Endpoint& local,
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

std::string XrayDocumentBuilder::process_facts(uint32_t tgid) {
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

void XrayDocumentBuilder::build_segment(const ServerContext& ctx, const pairing::HttpExchange& ex,
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

xray::Subsegment XrayDocumentBuilder::build_subsegment(const CallContext& call,
                                                       const pairing::HttpExchange& ex,
                                                       bool traced) {
    xray::Subsegment sub;
    sub.id = call.subsegment_id;
    const std::string* host = find_header(ex.request.headers, "Host");
    std::string name =
        host && !trim(*host).empty() ? host_without_port(trim(*host)) : ex.remote.ip_string();
    sub.name = name.empty() ? "remote" : name;
    sub.namespace_ = "remote";
    xray::HttpRequestInfo hr;
    hr.method = ex.request.method;
    hr.url = request_url(ex.request, ex.remote, ex.tls, cfg_.redaction);
    // traced: only when a segment naming this call as parent is known to exist, or X-Ray would
    // count the trace broken while it waits for one that never comes (call_truth.hpp).
    if (traced) {
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
