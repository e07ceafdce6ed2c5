#pragma once
// What the correlator knows of one request: a server request (served by a traced process, it
// becomes a segment) or a call (made by one, it becomes a subsegment or a segment of its own),
// and the kernel's context for a server request. Held by ContextTable (context_table.hpp).
#include <cstdint>
#include <string>
#include <vector>

#include "userspace/correlate/correlator_config.hpp"
#include "userspace/correlate/keys.hpp"
#include "userspace/correlate/link_rule.hpp"
#include "userspace/events/event.hpp"
#include "userspace/protocol/http1/http1_types.hpp"
#include "userspace/xray/segment.hpp"
#include "userspace/xray/trace_header.hpp"

namespace passport::correlate {

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
    bool has_kernel = false;  // the kernel gave it a context
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
    uint64_t injected_id = 0;        // the subsegment id it wrote (when injected)
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

// The request carries a trace header the trace must follow (its own, as the kernel or the
// parser read it): then same-node stitching applies only to a call that forwarded it.
bool has_own_header(const ServerContext& ctx);
// Root and Parent of that header: the kernel's reading when it read one, else the parser's.
void own_header_ids(const ServerContext& ctx, std::string& root, std::string& parent);

// The trace header a request carries: X-Amzn-Trace-Id, else W3C traceparent. `unusable` (when
// given) counts an X-Amzn-Trace-Id without a usable Root.
xray::TraceHeader request_trace_header(const protocol::http1::Request& req, Counters* unusable);

}  // namespace passport::correlate
