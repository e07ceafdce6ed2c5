#pragma once
// Centralized sampling in the agent (docs/configuration.md, "Sampling"): a CentralizedSampler the
// pipeline asks, and a thread of its own that runs the SamplingPoller against the X-Ray
// daemon's TCP proxy (HTTP POST through libcurl) and writes the rules into the kernel's maps.
// The agent thread reads the poller's status once a second for /metrics and /healthz.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/bpf_loader.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/correlate/identity_provider.hpp"
#include "userspace/export/daemon_address.hpp"
#include "userspace/sample/centralized_sampler.hpp"
#include "userspace/sample/sampling_poller.hpp"

namespace passport::agent {

// The daemon's proxy over HTTP: POST http://HOST:PORT/<path>, 5 s per call, 1 MiB answers.
class DaemonSamplingTransport : public sample::SamplingTransport {
  public:
    explicit DaemonSamplingTransport(const exporter::HostPort& tcp);
    Result<std::string> post(std::string_view path, const std::string& body) override;

  private:
    std::string base_url_;
};

// The kernel side through BpfProbes. Calls come from the sampling thread and, on reload, the
// agent thread: one mutex. Kernel rule names go to the pipeline through `on_names` (called on
// the sampling thread; the agent posts them to its own).
class ProbesSamplingSink : public sample::KernelSamplingSink {
  public:
    using OnNames = std::function<void(std::vector<std::string>)>;
    ProbesSamplingSink(BpfProbes& probes, OnNames on_names);
    Result<bool> set_sampling(const sample::KernelRules& rules) override;
    Result<bool> set_process_rules(uint32_t tgid, uint32_t mask) override;
    Result<bool> clear_process_rules(uint32_t tgid) override;
    Result<std::vector<pp_sample_stat>> read_sampling_stats() override;

  private:
    std::mutex mutex_;
    BpfProbes& probes_;
    OnNames on_names_;
};

// Whether the kernel decides under X-Ray's rules (per-process rule masks, quotas and per-rule
// counters in the kernel's maps); off, userspace decides while X-Ray's rules are in force.
inline constexpr bool kKernelDecidesCentralized = true;

struct CentralizedSamplingOptions {
    exporter::HostPort tcp;
    sample::LocalRules local;
    // The kernel decides with the centralized rules. It needs per-process rule masks and
    // per-rule statistics from the kernel; off, userspace decides every request the rules
    // apply to (the kernel still mints the trace ids) and the kernel decides only while the
    // local rules are in force.
    bool kernel_decides = kKernelDecidesCentralized;
};

class CentralizedSampling {
  public:
    explicit CentralizedSampling(CentralizedSamplingOptions options);
    ~CentralizedSampling();
    CentralizedSampling(const CentralizedSampling&) = delete;
    CentralizedSampling& operator=(const CentralizedSampling&) = delete;

    // What the pipeline asks (forwards to the shared sampler).
    std::unique_ptr<sample::Sampler> pipeline_sampler();
    // Starts the polling thread once the probes are loaded. `identity` names processes for
    // the kernel's per-process masks (only read when the kernel decides).
    void start(BpfProbes& probes, correlate::IdentityProvider* identity,
               ProbesSamplingSink::OnNames on_names);
    void stop();
    // New local rules (reload): in the sampler at once, in the kernel when they are in force;
    // false when the kernel gets them a little later, from the sampling thread.
    bool set_local_rules(const sample::LocalRules& rules);

    // sampling.* counters and the /healthz line.
    void collect(Counters& counters) const;
    std::string health_note() const;
    std::string report_line() const;
    bool kernel_decides() const { return options_.kernel_decides; }
    bool centralized() const;  // X-Ray's rules decide now

  private:
    void run();
    std::vector<sample::ProcessFacts> processes() const;

    CentralizedSamplingOptions options_;
    std::shared_ptr<sample::CentralizedSampler> sampler_;  // the pipeline's sampler shares it
    DaemonSamplingTransport transport_;
    std::unique_ptr<ProbesSamplingSink> sink_;
    std::unique_ptr<sample::SamplingPoller> poller_;
    correlate::IdentityProvider* identity_ = nullptr;

    std::mutex step_mutex_;                   // poller_ is used by one thread at a time
    std::atomic<bool> local_changed_{false};  // a reload found the sampling thread busy
    std::mutex wake_mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace passport::agent
