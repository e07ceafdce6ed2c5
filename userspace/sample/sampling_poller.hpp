#pragma once
// What keeps centralized sampling current, one step at a time (the agent calls step() from its
// own thread, never the pipeline's): GetSamplingRules every 5 minutes, GetSamplingTargets every
// 10 s (or when a rule's report Interval is due sooner) with the statistics of each rule, the
// kernel's share of them included; rules again at once when LastRuleModification says they
// changed. A failed or garbled answer makes the local rules decide (in the sampler and in the
// kernel) and the rules are fetched again every 10 s until X-Ray answers; then the centralized
// rules decide again. Transport, kernel and clock are interfaces, so tests drive it with fakes.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "passport/abi.h"
#include "userspace/common/result.hpp"
#include "userspace/sample/centralized_sampler.hpp"
#include "userspace/sample/kernel_rules.hpp"

namespace passport::sample {

// POSTs a JSON body to the X-Ray daemon's TCP proxy; the answer body or why there is none
// (connection refused, timeout, an HTTP status other than 200, ...).
class SamplingTransport {
  public:
    virtual ~SamplingTransport() = default;
    virtual Result<std::string> post(std::string_view path, const std::string& body) = 0;
};

// Where the kernel's sampling state lives (BPF maps).
class KernelSamplingSink {
  public:
    virtual ~KernelSamplingSink() = default;
    virtual Result<bool> set_sampling(const KernelRules& rules) = 0;
    virtual Result<bool> set_process_rules(uint32_t tgid, uint32_t mask) = 0;
    virtual Result<bool> clear_process_rules(uint32_t tgid) = 0;
    // Per rule (index as sample_rules; PP_MAX_SAMPLE_RULES is the default rule), summed over
    // CPUs, counted since the programs were loaded.
    virtual Result<std::vector<pp_sample_stat>> read_sampling_stats() = 0;
};

// A traced process as sampling rules see it.
struct ProcessFacts {
    uint32_t tgid = 0;
    std::string service_name;  // the name of its segments
    std::string service_type;  // its origin ("" off AWS)
};

struct PollerOptions {
    int64_t rules_interval_s = 300;
    int64_t targets_interval_s = 10;
    int64_t retry_interval_s = 10;  // rules again after a failure
    size_t max_rule_pages = 10;     // NextToken pages followed
    // The kernel decides with the centralized rules (needs its per-process masks and
    // statistics); false leaves every centralized decision to userspace.
    bool kernel_decides = false;
};

struct PollerStatus {
    bool centralized = false;  // the centralized rules decide
    size_t rules = 0;
    size_t skipped_rules = 0;
    uint64_t rules_fetches = 0;
    uint64_t rules_fetch_failures = 0;
    uint64_t targets_fetches = 0;
    uint64_t targets_fetch_failures = 0;
    uint64_t statistics_reported = 0;  // documents sent
    uint64_t kernel_errors = 0;
    std::string last_error;
};

class SamplingPoller {
  public:
    using Processes = std::function<std::vector<ProcessFacts>()>;

    SamplingPoller(CentralizedSampler& sampler, SamplingTransport& transport,
                   KernelSamplingSink* kernel, PollerOptions options, std::string client_id,
                   Processes processes = nullptr);

    // Does what is due at now_s; returns the epoch second of the next step.
    int64_t step(int64_t now_s);
    // New local rules (reload): the kernel gets them at the next step if they decide.
    void local_rules_changed();
    // Writes what changed into the kernel now (a reload does not wait for the next step).
    void flush_kernel();

    PollerStatus status() const;
    const std::string& client_id() const { return client_id_; }

  private:
    bool fetch_rules(int64_t now_s);
    bool report_and_fetch_targets(int64_t now_s);
    bool fall_back(const std::string& why);  // false, for the caller to return
    void push_kernel(int64_t now_s);
    void collect_kernel_statistics();
    void update_process_masks();
    void note_error(const std::string& why);

    CentralizedSampler& sampler_;
    SamplingTransport& transport_;
    KernelSamplingSink* kernel_;
    PollerOptions options_;
    std::string client_id_;
    Processes processes_;

    int64_t next_rules_ = 0;
    int64_t next_targets_ = 0;
    bool centralized_ = false;
    bool kernel_dirty_ = false;
    bool warned_ = false;                         // the fall back to local rules was logged
    KernelRules kernel_rules_;                    // what the kernel holds
    std::vector<std::string> kernel_stat_names_;  // centralized names by kernel index
    std::vector<pp_sample_stat> kernel_base_;
    std::vector<CentralizedRuleState> mask_rules_;
    std::map<uint32_t, uint32_t> masks_;  // tgid -> mask in sample_proc_rules

    mutable std::mutex status_mutex_;
    PollerStatus status_;
};

}  // namespace passport::sample
