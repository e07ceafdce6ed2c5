#include "userspace/correlate/contexts.hpp"

namespace passport::correlate {

bool has_own_header(const ServerContext& ctx) {
    return ctx.upstream.has_root() ||
           (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted);
}

void own_header_ids(const ServerContext& ctx, std::string& root, std::string& parent) {
    if (ctx.has_kernel && ctx.kernel.source != events::CtxSource::kMinted) {
        root = ctx.kernel.trace_id;
        parent = ctx.kernel.parent_id;
    } else {
        root = ctx.upstream.root;
        parent = ctx.upstream.parent;
    }
}

xray::TraceHeader request_trace_header(const protocol::http1::Request& req, Counters* unusable) {
    using protocol::http1::find_header;
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

}  // namespace passport::correlate
