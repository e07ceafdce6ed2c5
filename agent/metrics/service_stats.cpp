#include "agent/metrics/service_stats.hpp"

#include <algorithm>

namespace passport::agent::metrics {

ServiceCounts& ServiceStats::slot(const std::string& name) {
    if (auto it = services_.find(name); it != services_.end()) return it->second;
    if (services_.size() >= kMaxServices) return services_[kOtherService];
    return services_[name];
}

void ServiceStats::on_segment(const xray::Segment& s) {
    ServiceCounts& c = slot(s.name);
    c.requests++;
    if (s.error || s.throttle) c.errors++;
    if (s.fault) c.faults++;
    if (s.in_progress || s.end_time < s.start_time) return;  // no latency for an open request
    const double seconds = s.end_time - s.start_time;
    const auto bucket = static_cast<size_t>(
        std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), seconds) -
        kLatencyBuckets.begin());
    c.buckets[bucket]++;
    c.latency_count++;
    c.latency_sum_s += seconds;
}

}  // namespace passport::agent::metrics
