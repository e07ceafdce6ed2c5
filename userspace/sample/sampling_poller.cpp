#include "userspace/sample/sampling_poller.hpp"

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "userspace/sample/centralized_kernel_rules.hpp"

namespace passport::sample {
namespace {

pp_sample_stat minus(const pp_sample_stat& now, const pp_sample_stat& before) {
    // Counters that went down were reset (new programs): all of `now` is new.
    if (now.requests < before.requests) return now;
    return pp_sample_stat{now.requests - before.requests,
                          now.sampled >= before.sampled ? now.sampled - before.sampled : 0,
                          now.borrowed >= before.borrowed ? now.borrowed - before.borrowed : 0};
}

}  // namespace

SamplingPoller::SamplingPoller(CentralizedSampler& sampler, SamplingTransport& transport,
                               KernelSamplingSink* kernel, PollerOptions options,
                               std::string client_id, Processes processes)
    : sampler_(sampler),
      transport_(transport),
      kernel_(kernel),
      options_(options),
      client_id_(std::move(client_id)),
      processes_(std::move(processes)) {}

int64_t SamplingPoller::step(int64_t now_s) {
    if (now_s >= next_rules_) {
        if (fetch_rules(now_s)) {
            next_rules_ = now_s + options_.rules_interval_s;
        } else {
            next_rules_ = now_s + options_.retry_interval_s;
        }
    }
    if (centralized_ && now_s >= next_targets_) {
        if (!report_and_fetch_targets(now_s)) next_rules_ = now_s + options_.retry_interval_s;
        const int64_t due = std::max(sampler_.next_report_due(), now_s + 1);
        next_targets_ = std::min(now_s + options_.targets_interval_s, due);
    }
    if (kernel_dirty_) push_kernel(now_s);
    if (centralized_ && options_.kernel_decides) update_process_masks();
    {
        const std::lock_guard lock(status_mutex_);
        status_.centralized = sampler_.centralized(now_s);
        status_.rules = sampler_.rule_count();
    }
    int64_t next = next_rules_;
    if (centralized_) next = std::min(next, next_targets_);
    return std::max(next, now_s + 1);
}

void SamplingPoller::local_rules_changed() {
    if (!centralized_) kernel_dirty_ = true;
}

void SamplingPoller::flush_kernel() {
    if (kernel_dirty_) push_kernel(0);
}

bool SamplingPoller::fetch_rules(int64_t now_s) {
    std::vector<CentralizedRule> rules;
    size_t skipped = 0;
    std::string token;
    for (size_t page = 0; page < options_.max_rule_pages; page++) {
        {
            const std::lock_guard lock(status_mutex_);
            status_.rules_fetches++;
        }
        auto body = transport_.post(kGetSamplingRulesPath, sampling_rules_request(token));
        if (!body) return fall_back("GetSamplingRules: " + body.error());
        auto parsed = parse_sampling_rules(*body);
        if (!parsed) return fall_back(parsed.error());
        for (const std::string& why : parsed->skipped)
            spdlog::debug("X-Ray sampling: {}: skipped", why);  // said once below
        if (page == 0 && !parsed->skipped.empty() && !centralized_)
            spdlog::info(
                "X-Ray sampling: not applied, as the X-Ray SDKs do not apply them: {}",
                parsed->skipped.front() + (parsed->skipped.size() > 1 ? " (and others)" : ""));
        skipped += parsed->skipped.size();
        for (auto& r : parsed->rules) rules.push_back(std::move(r));
        token = parsed->next_token;
        if (token.empty()) break;
    }
    if (rules.empty()) return fall_back("GetSamplingRules: no rule usable by this agent");
    const bool was = centralized_;
    sampler_.set_rules(std::move(rules), now_s);
    sampler_.set_centralized(true);
    centralized_ = true;
    kernel_dirty_ = true;
    if (!was) {
        warned_ = false;
        next_targets_ = now_s + options_.targets_interval_s;
        spdlog::info("X-Ray sampling: {} centralized rule(s) in force ({} skipped)",
                     sampler_.rule_count(), skipped);
    }
    const std::lock_guard lock(status_mutex_);
    status_.skipped_rules = skipped;
    return true;
}

bool SamplingPoller::report_and_fetch_targets(int64_t now_s) {
    if (options_.kernel_decides) collect_kernel_statistics();
    const auto docs = sampler_.take_due_statistics(now_s, client_id_);
    if (docs.empty()) return true;  // no rule matched anything since its last report
    {
        const std::lock_guard lock(status_mutex_);
        status_.targets_fetches++;
    }
    auto body = transport_.post(kSamplingTargetsPath, sampling_targets_request(docs));
    if (!body) return fall_back("GetSamplingTargets: " + body.error());
    auto parsed = parse_sampling_targets(*body);
    if (!parsed) return fall_back(parsed.error());
    {
        const std::lock_guard lock(status_mutex_);
        status_.statistics_reported += docs.size();
    }
    for (const std::string& u : parsed->unprocessed)
        spdlog::warn("X-Ray sampling: statistics not processed: {}", u);
    sampler_.apply_targets(parsed->targets, now_s);
    if (!parsed->targets.empty()) kernel_dirty_ = true;
    if (parsed->last_rule_modification &&
        *parsed->last_rule_modification > sampler_.rules_fetched_at())
        next_rules_ = now_s;  // the rules changed: fetch them at the next step
    return true;
}

bool SamplingPoller::fall_back(const std::string& why) {
    note_error(why);
    if (centralized_ || !warned_) {
        spdlog::warn("X-Ray sampling: {}; the local sampling rules decide until X-Ray answers",
                     why);
    } else {
        spdlog::debug("X-Ray sampling: {}", why);
    }
    warned_ = true;
    if (centralized_) kernel_dirty_ = true;
    centralized_ = false;
    sampler_.set_centralized(false);
    return false;
}

void SamplingPoller::note_error(const std::string& why) {
    const std::lock_guard lock(status_mutex_);
    status_.last_error = why;
    if (why.rfind("GetSamplingTargets", 0) == 0) {
        status_.targets_fetch_failures++;
    } else {
        status_.rules_fetch_failures++;
    }
}

void SamplingPoller::push_kernel(int64_t /*now_s*/) {
    kernel_dirty_ = false;
    if (kernel_ == nullptr) return;
    if (centralized_ && options_.kernel_decides) collect_kernel_statistics();
    KernelRules compiled;
    if (centralized_) {
        mask_rules_ = sampler_.rule_states();
        compiled = compile_centralized_kernel_rules(mask_rules_, options_.kernel_decides);
    } else {
        compiled = compile_kernel_rules(sampler_.local_rules());
        for (const auto& [tgid, mask] : masks_) (void)kernel_->clear_process_rules(tgid);
        masks_.clear();
    }
    if (auto set = kernel_->set_sampling(compiled); !set) {
        spdlog::warn("X-Ray sampling: kernel rules: {}", set.error());
        const std::lock_guard lock(status_mutex_);
        status_.kernel_errors++;
        return;
    }
    kernel_rules_ = std::move(compiled);
    kernel_stat_names_.clear();
    if (centralized_ && options_.kernel_decides) {
        kernel_stat_names_ = kernel_rules_.names;
        auto base = kernel_->read_sampling_stats();
        kernel_base_ = base ? std::move(*base) : std::vector<pp_sample_stat>{};
    }
}

void SamplingPoller::collect_kernel_statistics() {
    if (kernel_ == nullptr || kernel_stat_names_.empty()) return;
    auto stats = kernel_->read_sampling_stats();
    if (!stats) {
        const std::lock_guard lock(status_mutex_);
        status_.kernel_errors++;
        return;
    }
    for (size_t i = 0; i < stats->size() && i < kernel_stat_names_.size(); i++) {
        const pp_sample_stat base = i < kernel_base_.size() ? kernel_base_[i] : pp_sample_stat{};
        const pp_sample_stat d = minus((*stats)[i], base);
        if (kernel_stat_names_[i].empty() || d.requests == 0) continue;
        sampler_.add_statistics(kernel_stat_names_[i],
                                RuleStatistics{d.requests, d.sampled, d.borrowed});
    }
    kernel_base_ = std::move(*stats);
}

void SamplingPoller::update_process_masks() {
    if (kernel_ == nullptr || !processes_) return;
    std::set<uint32_t> seen;
    for (const ProcessFacts& p : processes_()) {
        seen.insert(p.tgid);
        const uint32_t mask =
            process_rule_mask(mask_rules_, kernel_rules_, p.service_name, p.service_type);
        auto it = masks_.find(p.tgid);
        if (it != masks_.end() && it->second == mask) continue;
        if (kernel_->set_process_rules(p.tgid, mask)) masks_[p.tgid] = mask;
    }
    for (auto it = masks_.begin(); it != masks_.end();) {
        if (seen.count(it->first) != 0) {
            ++it;
            continue;
        }
        (void)kernel_->clear_process_rules(it->first);
        it = masks_.erase(it);
    }
}

PollerStatus SamplingPoller::status() const {
    const std::lock_guard lock(status_mutex_);
    return status_;
}

}  // namespace passport::sample
