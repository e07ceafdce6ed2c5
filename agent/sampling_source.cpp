#include "agent/sampling_source.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "agent/identity/http_fetch.hpp"
#include "agent/proc_list.hpp"
#include "userspace/identity/process_identity.hpp"
#include "userspace/sample/xray_sampling_api.hpp"

namespace passport::agent {
namespace {

// The daemon answers after the X-Ray API did: seconds, not the milliseconds of a local endpoint.
constexpr auto kCallBudget = std::chrono::milliseconds(5000);

int64_t epoch_seconds() {
    return std::chrono::floor<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The pipeline owns its sampler; this one lends it the shared CentralizedSampler.
class ForwardingSampler : public sample::Sampler {
  public:
    explicit ForwardingSampler(std::shared_ptr<sample::Sampler> target)
        : target_(std::move(target)) {}
    sample::Decision decide(const sample::SampleRequest& request) override {
        return target_->decide(request);
    }

  private:
    std::shared_ptr<sample::Sampler> target_;
};

}  // namespace

DaemonSamplingTransport::DaemonSamplingTransport(const exporter::HostPort& tcp)
    : base_url_("http://" + exporter::to_string(tcp)) {}

Result<std::string> DaemonSamplingTransport::post(std::string_view path, const std::string& body) {
    identity::HttpRequest r;
    r.method = "POST";
    r.url = base_url_ + std::string(path);
    r.headers = {"Content-Type: application/json"};
    r.budget = kCallBudget;
    r.low_speed_time = std::chrono::duration_cast<std::chrono::seconds>(kCallBudget);
    r.body_cap = sample::kMaxSamplingResponseBytes;
    r.body = body;
    auto answer = identity::http_fetch(r);
    if (!answer) return make_error(r.url + ": " + answer.error());
    if (answer->status != 200)
        return make_error(r.url + ": HTTP " + std::to_string(answer->status));
    return std::move(answer->body);
}

ProbesSamplingSink::ProbesSamplingSink(BpfProbes& probes, OnNames on_names)
    : probes_(probes), on_names_(std::move(on_names)) {}

Result<bool> ProbesSamplingSink::set_sampling(const sample::KernelRules& rules) {
    const std::lock_guard lock(mutex_);
    pp_sample_cfg cfg = rules.cfg;
    // Programs loaded for rules without method, path or Host do not read them: userspace decides.
    if (cfg.enabled != 0 && !probes_.can_decide(rules.rules, cfg)) {
        cfg.enabled = 0;
        spdlog::warn(
            "sampling rules match on method, path or Host, which the kernel programs loaded at "
            "start do not read: userspace decides sampling until a restart");
    }
    auto set = probes_.set_sampling(rules.rules, rules.default_rule, cfg);
    if (set && on_names_) on_names_(rules.names);
    return set;
}

Result<bool> ProbesSamplingSink::set_process_rules(uint32_t tgid, uint32_t mask) {
    const std::lock_guard lock(mutex_);
    return probes_.set_process_rules(tgid, mask);
}

Result<bool> ProbesSamplingSink::clear_process_rules(uint32_t tgid) {
    const std::lock_guard lock(mutex_);
    probes_.clear_process_rules(tgid);
    return true;
}

Result<std::vector<pp_sample_stat>> ProbesSamplingSink::read_sampling_stats() {
    const std::lock_guard lock(mutex_);
    const BpfProbes::SamplingStats stats = probes_.read_sampling_stats();
    return std::vector<pp_sample_stat>(stats.begin(), stats.end());
}

CentralizedSampling::CentralizedSampling(CentralizedSamplingOptions options)
    : options_(std::move(options)),
      sampler_(std::make_shared<sample::CentralizedSampler>(options_.local)),
      transport_(options_.tcp) {}

CentralizedSampling::~CentralizedSampling() { stop(); }

std::unique_ptr<sample::Sampler> CentralizedSampling::pipeline_sampler() {
    return std::make_unique<ForwardingSampler>(sampler_);
}

void CentralizedSampling::start(BpfProbes& probes, correlate::IdentityProvider* identity,
                                ProbesSamplingSink::OnNames on_names) {
    identity_ = identity;
    sink_ = std::make_unique<ProbesSamplingSink>(probes, std::move(on_names));
    sample::PollerOptions po;
    po.kernel_decides = options_.kernel_decides;
    poller_ = std::make_unique<sample::SamplingPoller>(*sampler_, transport_, sink_.get(), po,
                                                       sample::new_client_id(),
                                                       [this] { return processes(); });
    thread_ = std::thread([this] { run(); });
}

void CentralizedSampling::stop() {
    {
        const std::lock_guard lock(wake_mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void CentralizedSampling::run() {
    std::unique_lock wake(wake_mutex_);
    while (!stopping_) {
        wake.unlock();
        int64_t next = 0;
        {
            const std::lock_guard step(step_mutex_);
            next = poller_->step(epoch_seconds());
            if (local_changed_.exchange(false)) {
                poller_->local_rules_changed();
                poller_->flush_kernel();
            }
        }
        wake.lock();
        const auto until = std::chrono::system_clock::time_point(std::chrono::seconds(next));
        wake_.wait_until(wake, until, [this] { return stopping_; });
    }
}

bool CentralizedSampling::set_local_rules(const sample::LocalRules& rules) {
    sampler_->set_local_rules(rules);
    if (!poller_) return true;
    // Never wait for a call to X-Ray in flight (seconds): the sampling thread applies the
    // change right after it, then.
    std::unique_lock step(step_mutex_, std::try_to_lock);
    if (!step.owns_lock()) {
        local_changed_ = true;
        return false;
    }
    poller_->local_rules_changed();
    poller_->flush_kernel();
    return true;
}

std::vector<sample::ProcessFacts> CentralizedSampling::processes() const {
    std::vector<sample::ProcessFacts> out;
    if (identity_ == nullptr) return out;
    for (uint32_t pid : list_pids()) {
        auto id = identity_->cached(pid);
        if (id) out.push_back(sample::ProcessFacts{pid, id->service_name, id->origin});
    }
    return out;
}

void CentralizedSampling::collect(Counters& counters) const {
    if (!poller_) return;
    const sample::PollerStatus s = poller_->status();
    counters.set("sampling.centralized", s.centralized ? 1 : 0);
    counters.set("sampling.centralized_rules", s.rules);
    counters.set("sampling.rules_fetches", s.rules_fetches);
    counters.set("sampling.rules_fetch_failures", s.rules_fetch_failures);
    counters.set("sampling.targets_fetches", s.targets_fetches);
    counters.set("sampling.targets_fetch_failures", s.targets_fetch_failures);
    counters.set("sampling.statistics_reported", s.statistics_reported);
}

bool CentralizedSampling::centralized() const { return sampler_->centralized(epoch_seconds()); }

std::string CentralizedSampling::health_note() const {
    if (!poller_) return {};
    const sample::PollerStatus s = poller_->status();
    if (s.centralized) return "sampling: centralized (" + std::to_string(s.rules) + " X-Ray rules)";
    if (s.rules_fetches == 0) return "sampling: local rules (X-Ray not asked yet)";
    return "sampling: local rules (X-Ray unreachable: " + s.last_error + ")";
}

std::string CentralizedSampling::report_line() const {
    return "centralized: X-Ray's rules through the daemon at tcp " +
           exporter::to_string(options_.tcp) +
           " (rules every 5 min, quotas every 10 s, statistics per rule); the local rules "
           "while X-Ray is unreachable";
}

}  // namespace passport::agent
