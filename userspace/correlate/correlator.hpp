#pragma once
// Correlator: turns paired exchanges into X-Ray segments the way an X-Ray SDK's HTTP middleware
// would. A server exchange (a request the traced process served) becomes a segment that
// continues the incoming X-Amzn-Trace-Id (or W3C traceparent) or starts a new trace; the
// sampling decision is the upstream's when it made one, else the sampling rules'. Client
// exchanges are counted and left for the subsegment work (docs/not-supported.md).
// Runs on the pipeline thread; owns nothing but its configuration.
#include <cstdint>
#include <functional>
#include <string>

#include "userspace/common/clock.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/correlate/process_info.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/xray/ids.hpp"
#include "userspace/xray/segment.hpp"

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
};

class Correlator {
public:
    using SegmentSink = std::function<void(xray::Segment&&)>;

    Correlator(CorrelatorConfig cfg, ProcessInfoCache& processes, xray::IdGenerator& ids,
               const ClockOffset& clock, SamplingDecider sampler, Counters& counters,
               SegmentSink sink);

    void on_exchange(pairing::HttpExchange&& ex);

    // Builds the segment for a server exchange; returns false (and counts why) when the request
    // must not be recorded (Sampled=0 upstream, or not sampled by the rules).
    bool build_segment(const pairing::HttpExchange& ex, xray::Segment& out);

private:
    CorrelatorConfig cfg_;
    ProcessInfoCache& processes_;
    xray::IdGenerator& ids_;
    const ClockOffset& clock_;
    SamplingDecider sampler_;
    Counters& counters_;
    SegmentSink sink_;
};

}  // namespace passport::correlate
