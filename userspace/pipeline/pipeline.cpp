#include "userspace/pipeline/pipeline.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "userspace/xray/document.hpp"

namespace passport::pipeline {

Pipeline::Pipeline(PipelineConfig cfg, std::unique_ptr<sample::Sampler> sampler,
                   exporter::Emitter& emitter, Counters& counters, const ClockOffset& clock,
                   xray::RandomSource random)
    : cfg_(std::move(cfg)),
      counters_(counters),
      clock_(clock),
      emitter_(emitter),
      sampler_(std::move(sampler)),
      ids_(std::move(random)),
      processes_(cfg_.proc_root),
      sdk_detector_(counters_, cfg_.sdk),
      sdk_gate_(
          sdk_detector_, !cfg_.keep_sdk_segments, counters_,
          [this](xray::Segment&& s) { emit_segment(std::move(s)); },
          [this](xray::Subsegment&& sub, const std::string& trace_id,
                 const std::string& parent_id) {
              emit_subsegment(std::move(sub), trace_id, parent_id);
          }),
      correlator_(
          cfg_.correlator, processes_, ids_, clock_,
          [this](const correlate::SamplingInput& in, std::string* rule_name) {
              sample::SampleRequest req{in.host, in.method, in.path, in.service_name,
                                        in.service_type};
              sample::Decision d = sampler_->decide(req);
              if (rule_name) *rule_name = d.rule_name;
              return d.sampled;
          },
          counters_, [this](xray::Segment&& s) { route_segment(std::move(s)); },
          [this](xray::Subsegment&& sub, const std::string& trace_id,
                 const std::string& parent_id) {
              sdk_gate_.subsegment(std::move(sub), trace_id, parent_id);
          }),
      tracker_(
          counters_,
          [this](pairing::HttpExchange&& ex) {
              on_server_exchange_start(ex);
              correlator_.on_exchange(std::move(ex));
              serving_tgid_ = 0;
          },
          cfg_.tracker) {
    tracker_.set_request_observer([this](const pairing::HttpRequestSeen& seen) {
        if (sdk_detector_.on_request_seen(seen)) sdk_gate_.on_sdk(seen.tgid);
        correlator_.on_request_seen(seen);
    });
}

void Pipeline::on_server_exchange_start(const pairing::HttpExchange& ex) {
    serving_tgid_ = ex.role == events::Role::kClient ? 0 : ex.tgid;
    serving_end_ns_ = std::max(
        {ex.request_start_ns, ex.request_end_ns, ex.response_start_ns, ex.response_end_ns});
}

void Pipeline::route_segment(xray::Segment&& s) {
    if (serving_tgid_ == 0) {  // a call made outside any request: not a server segment
        emit_segment(std::move(s));
        return;
    }
    sdk_gate_.server_segment(serving_tgid_, serving_end_ns_, std::move(s));
}

void Pipeline::emit_subsegment(xray::Subsegment&& sub, const std::string& trace_id,
                               const std::string& parent_id) {
    counters_.add("pipeline.documents");
    emitter_.emit(xray::make_datagram(xray::to_independent_json(sub, trace_id, parent_id)));
}

void Pipeline::set_sampling(std::unique_ptr<sample::Sampler> sampler,
                            std::vector<std::string> kernel_rule_names) {
    sampler_ = std::move(sampler);
    correlator_.set_kernel_rule_names(std::move(kernel_rule_names));
}

void Pipeline::on_event(const events::Event& e) {
    if (const auto* exec = std::get_if<events::ProcExec>(&e)) {
        processes_.forget(exec->tgid);
        correlator_.forget_process(exec->tgid);
        sdk_gate_.on_forget(exec->tgid);
        sdk_detector_.forget(exec->tgid);
    }
    if (const auto* sdk = std::get_if<events::SdkDatagram>(&e)) {
        if (sdk_detector_.on_datagram(*sdk)) sdk_gate_.on_sdk(sdk->tgid);
        return;
    }
    // Read a process's identity when its first connection appears, while /proc still has it:
    // a process that exits mid-request is then still named in its documents.
    if (const auto* open = std::get_if<events::ConnOpen>(&e)) processes_.get(open->conn.tgid);
    if (const auto* kc = std::get_if<events::TraceCtx>(&e)) {
        // Unsampled requests the kernel kept before this one: their connection passes over them.
        if (kc->unsampled_before) tracker_.on_event(e);
        correlator_.on_kernel_context(*kc);
        return;
    }
    if (const auto* inj = std::get_if<events::Inject>(&e)) {
        correlator_.on_inject(*inj);
        return;
    }
    if (const auto* go = std::get_if<events::GoHandoff>(&e)) {
        correlator_.on_go_handoff(*go);
        return;
    }
    tracker_.on_event(e);
    // Forget the process only after the tracker has ended its open exchanges with its identity.
    if (const auto* exit = std::get_if<events::ProcExit>(&e)) {
        processes_.forget(exit->tgid);
        correlator_.forget_process(exit->tgid);
        sdk_gate_.on_forget(exit->tgid);
        sdk_detector_.forget(exit->tgid);
    }
}

void Pipeline::tick(uint64_t now_monotonic_ns) {
    tracker_.expire(now_monotonic_ns);
    sdk_gate_.tick(now_monotonic_ns);
    counters_.set("process.cache_evicted", processes_.evicted());  // live for /metrics too
}

void Pipeline::shutdown() {
    tracker_.flush_all();
    sdk_gate_.flush();
    emitter_.flush();
    counters_.set("process.cache_evicted", processes_.evicted());
}

void Pipeline::emit_segment(xray::Segment&& s) {
    if (segment_observer_) segment_observer_(s);
    // The common case: the whole segment in one datagram, written straight into a buffer the
    // emitter hands back from a datagram already sent.
    std::string datagram = emitter_.spare();
    if (xray::write_datagram(s, datagram, cfg_.max_datagram)) {
        counters_.add("pipeline.documents");
        emitter_.emit(std::move(datagram));
        return;
    }
    for (std::string& datagram : xray::serialize_documents(s, cfg_.max_datagram, &counters_)) {
        counters_.add("pipeline.documents");
        emitter_.emit(std::move(datagram));
    }
}

}  // namespace passport::pipeline
