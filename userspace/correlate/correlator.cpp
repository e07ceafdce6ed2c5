#include "userspace/correlate/correlator.hpp"

#include <utility>

#include "userspace/xray/document.hpp"
#include "userspace/xray/trace_header.hpp"

namespace passport::correlate {
namespace {

using protocol::http1::find_header;

std::string strip_port(const std::string& host) {
    if (!host.empty() && host[0] == '[') {  // [v6]:port
        auto rb = host.find(']');
        return rb == std::string::npos ? host : host.substr(1, rb - 1);
    }
    auto colon = host.rfind(':');
    if (colon != std::string::npos && host.find(':') == colon) return host.substr(0, colon);
    return host;
}

std::string trim(std::string s) {
    size_t b = s.find_first_not_of(" \t");
    size_t e = s.find_last_not_of(" \t");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string endpoint_host(const events::Endpoint& e) {
    std::string ip = e.ip_string();
    if (ip.empty()) return "localhost";
    if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
    return ip + ":" + std::to_string(e.port);
}

// The URL as the SDK middlewares write it: scheme://Host + original target (query kept).
std::string request_url(const pairing::HttpExchange& ex) {
    const std::string& target = ex.request.target;
    if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) return target;
    const std::string* host = find_header(ex.request.headers, "Host");
    std::string authority = host && !host->empty() ? trim(*host) : endpoint_host(ex.local);
    return "http://" + authority + (target.empty() || target[0] != '/' ? "/" : "") +
           (target == "*" ? "" : target);
}

const char* outcome_message(pairing::Outcome o) {
    switch (o) {
        case pairing::Outcome::kComplete: return "";
        case pairing::Outcome::kConnectionClosed:
            return "connection closed before the response was complete";
        case pairing::Outcome::kProcessExited: return "process exited before responding";
        case pairing::Outcome::kTimedOut: return "no response within the pairing timeout";
        case pairing::Outcome::kShutdown: return "agent stopped before the response";
    }
    return "";
}

}  // namespace

Correlator::Correlator(CorrelatorConfig cfg, ProcessInfoCache& processes, xray::IdGenerator& ids,
                       const ClockOffset& clock, SamplingDecider sampler, Counters& counters,
                       SegmentSink sink)
    : cfg_(std::move(cfg)),
      processes_(processes),
      ids_(ids),
      clock_(clock),
      sampler_(std::move(sampler)),
      counters_(counters),
      sink_(std::move(sink)) {}

void Correlator::on_exchange(pairing::HttpExchange&& ex) {
    if (ex.role != events::Role::kServer) {
        counters_.add("correlate.client_exchanges_not_recorded");
        return;
    }
    xray::Segment seg;
    if (!build_segment(ex, seg)) return;
    counters_.add("correlate.segments");
    sink_(std::move(seg));
}

bool Correlator::build_segment(const pairing::HttpExchange& ex, xray::Segment& s) {
    const auto& req = ex.request;
    const ProcessInfo* proc = processes_.get(ex.tgid);
    ProcessInfo fallback;
    fallback.pid = ex.tgid;
    if (!proc) {
        counters_.add("correlate.process_info_missing");
        proc = &fallback;
    }
    s.name = derive_service_name(*proc, cfg_.configured_service_name);

    // Upstream context: X-Amzn-Trace-Id first, then W3C traceparent.
    xray::TraceHeader th;
    if (const std::string* v = find_header(req.headers, "X-Amzn-Trace-Id")) {
        th = xray::parse_trace_header(*v);
        if (!th.has_root()) counters_.add("correlate.trace_header_unusable");
    }
    if (!th.has_root()) {
        if (const std::string* v = find_header(req.headers, "traceparent")) {
            xray::TraceHeader w3c = xray::parse_traceparent(*v);
            if (w3c.has_root()) th = w3c;
        }
    }

    std::string target_path = req.target.substr(0, req.target.find('?'));
    const std::string* host_hdr = find_header(req.headers, "Host");
    bool sampled = false;
    std::string rule_name;
    switch (th.sampled) {
        case xray::SampledFlag::kSampled: sampled = true; break;
        case xray::SampledFlag::kNotSampled: sampled = false; break;
        case xray::SampledFlag::kAbsent:
        case xray::SampledFlag::kRequested:
            sampled = sampler_ ? sampler_(SamplingInput{s.name, host_hdr ? strip_port(trim(*host_hdr)) : "",
                                                        req.method, target_path},
                                          &rule_name)
                               : true;
            break;
    }
    if (!sampled) {
        counters_.add(th.sampled == xray::SampledFlag::kNotSampled ? "correlate.not_sampled_upstream"
                                                                   : "correlate.not_sampled_rules");
        return false;
    }

    uint64_t start_ns = ex.request_start_ns;
    s.id = ids_.new_segment_id();
    s.trace_id = th.has_root() ? th.root : ids_.new_trace_id(clock_.to_epoch_ns(start_ns) / 1000000000ULL);
    s.parent_id = th.has_root() ? th.parent : "";
    s.start_time = clock_.to_epoch_seconds(start_ns);

    xray::HttpInfo http;
    xray::HttpRequestInfo hr;
    hr.method = req.method;
    hr.url = request_url(ex);
    if (const std::string* ua = find_header(req.headers, "User-Agent")) hr.user_agent = *ua;
    if (const std::string* xff = find_header(req.headers, "X-Forwarded-For")) {
        std::string first = trim(xff->substr(0, xff->find(',')));
        if (!first.empty()) {
            hr.client_ip = first;
            hr.x_forwarded_for = true;
        }
    }
    if (hr.client_ip.empty()) hr.client_ip = ex.remote.ip_string();
    http.request = hr;

    bool complete = ex.outcome == pairing::Outcome::kComplete && ex.response.has_value();
    if (ex.response) {
        xray::HttpResponseInfo resp;
        resp.status = ex.response->status;
        if (ex.response->content_length) {
            resp.content_length = ex.response->content_length;
        } else if (complete && ex.response->body_bytes > 0) {
            resp.content_length = ex.response->body_bytes;
        }
        http.response = resp;
        xray::apply_http_status(resp.status, s.error, s.throttle, s.fault);
    }
    s.http = http;

    if (complete) {
        s.end_time = clock_.to_epoch_seconds(ex.response_end_ns);
    } else if (ex.outcome == pairing::Outcome::kShutdown) {
        s.in_progress = true;  // still open when the agent stopped: X-Ray shows it as pending
        counters_.add("correlate.segments_in_progress");
    } else {
        // The server never finished its answer: a fault the caller saw, with the reason.
        uint64_t end_ns = ex.response_end_ns ? ex.response_end_ns
                          : ex.response_start_ns ? ex.response_start_ns
                                                 : ex.request_end_ns ? ex.request_end_ns : start_ns;
        s.end_time = clock_.to_epoch_seconds(end_ns);
        s.fault = true;
        xray::Cause cause;
        xray::ExceptionInfo exc;
        exc.id = ids_.new_segment_id();
        exc.message = outcome_message(ex.outcome);
        exc.type = ex.outcome == pairing::Outcome::kProcessExited ? "ProcessExited"
                   : ex.outcome == pairing::Outcome::kTimedOut    ? "TimedOut"
                                                                  : "ConnectionClosed";
        cause.exceptions.push_back(exc);
        s.cause = cause;
        counters_.add("correlate.segments_incomplete");
    }
    if (s.end_time != 0 && s.end_time < s.start_time) s.end_time = s.start_time;

    nlohmann::json process = {{"pid", proc->pid}, {"tid", ex.request_tid}};
    if (!proc->exe.empty()) process["exe"] = proc->exe;
    if (!proc->cmdline.empty()) {
        std::string cmd;
        for (const auto& a : proc->cmdline) cmd += (cmd.empty() ? "" : " ") + a;
        process["command"] = cmd.substr(0, 250);
    }
    if (!proc->container_id.empty()) process["container_id"] = proc->container_id;
    nlohmann::json passport_md = {{"process", process}};
    if (!cfg_.hostname.empty()) passport_md["host"] = cfg_.hostname;
    passport_md["connection"] = {{"local", endpoint_host(ex.local)}, {"remote", endpoint_host(ex.remote)}};
    s.metadata = {{"passport", passport_md}};
    if (!rule_name.empty()) s.aws = {{"xray", {{"rule_name", rule_name}}}};
    return true;
}

}  // namespace passport::correlate
