#pragma once
// Pipeline: the whole userspace path in one object, in data-flow order:
//   events -> stream::ConnectionTracker (connections, reassembly, HTTP/1 parsing, pairing)
//          -> correlate::Correlator (segments, trace context, sampling)
//          -> xray::serialize_documents (schema, 64 KB limit) -> exporter::Emitter
// The agent feeds it kernel events; replay tests feed it recorded ones. Single-threaded: the
// agent calls it only from its io_context thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "userspace/common/clock.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/correlate/correlator.hpp"
#include "userspace/correlate/process_info.hpp"
#include "userspace/correlate/sdk_detector.hpp"
#include "userspace/events/event.hpp"
#include "userspace/export/emitter.hpp"
#include "userspace/pipeline/sdk_gate.hpp"
#include "userspace/sample/sampler.hpp"
#include "userspace/stream/connection_tracker.hpp"
#include "userspace/xray/ids.hpp"

namespace passport::pipeline {

struct PipelineConfig {
    correlate::CorrelatorConfig correlator;
    stream::TrackerConfig tracker;
    std::string proc_root = "/proc";
    size_t max_datagram = 64000;
    // Server segments of processes that report to X-Ray themselves (--sdk-segments): false
    // suppresses them (the default), true keeps both theirs and Passport's (docs/sdk.md).
    bool keep_sdk_segments = false;
    correlate::SdkDetectorConfig sdk;
};

class Pipeline {
  public:
    Pipeline(PipelineConfig cfg, std::unique_ptr<sample::Sampler> sampler,
             exporter::Emitter& emitter, Counters& counters, const ClockOffset& clock,
             xray::RandomSource random = xray::system_random_source());

    void on_event(const events::Event& e);
    // Periodic work: idle connections and unanswered requests time out.
    void tick(uint64_t now_monotonic_ns);
    // Ends every open exchange (documents marked in progress) and flushes the emitter.
    void shutdown();
    // New sampling rules (a configuration reload): the userspace sampler and the names of the
    // rules the kernel now holds. Requests already decided keep their decision.
    void set_sampling(std::unique_ptr<sample::Sampler> sampler,
                      std::vector<std::string> kernel_rule_names);

    // Sees every segment the pipeline emits, before it is serialised (per-service metrics).
    void set_segment_observer(std::function<void(const xray::Segment&)> observer) {
        segment_observer_ = std::move(observer);
    }

    Counters& counters() { return counters_; }
    const ClockOffset& clock() const { return clock_; }

  private:
    void emit_segment(xray::Segment&& s);
    void emit_subsegment(xray::Subsegment&& sub, const std::string& trace_id,
                         const std::string& parent_id);
    // The correlator's segments: a server exchange's go through the SDK gate.
    void route_segment(xray::Segment&& s);
    void on_server_exchange_start(const pairing::HttpExchange& ex);

    PipelineConfig cfg_;
    Counters& counters_;
    const ClockOffset& clock_;
    exporter::Emitter& emitter_;
    std::unique_ptr<sample::Sampler> sampler_;
    xray::IdGenerator ids_;
    correlate::ProcessInfoCache processes_;
    correlate::SdkDetector sdk_detector_;
    SdkGate sdk_gate_;
    // The server exchange the correlator is finishing (tgid 0: none), for route_segment.
    uint32_t serving_tgid_ = 0;
    uint64_t serving_end_ns_ = 0;
    correlate::Correlator correlator_;
    stream::ConnectionTracker tracker_;
    std::function<void(const xray::Segment&)> segment_observer_;
};

}  // namespace passport::pipeline
