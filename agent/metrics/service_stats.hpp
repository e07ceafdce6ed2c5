#pragma once
// ServiceStats: per-service request, error (4xx), fault (5xx) counts and a latency histogram,
// fed by every segment the pipeline emits (sampled requests). Single-threaded: the pipeline
// thread adds, and the same thread copies it into the metrics snapshot.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "userspace/xray/segment.hpp"

namespace passport::agent::metrics {

// Upper bounds of the latency buckets, in seconds (the last one, +Inf, is implicit).
inline constexpr std::array<double, 12> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,   0.25,   0.5,   1,    2.5,   10};

// Past this many distinct names, further services are counted under kOtherService, so a
// process that names its segments from request data cannot grow memory without bound.
inline constexpr size_t kMaxServices = 256;
inline constexpr const char* kOtherService = "other";

struct ServiceCounts {
    uint64_t requests = 0;
    uint64_t errors = 0;  // 4xx, throttles (429) included
    uint64_t faults = 0;  // 5xx and responses that never completed
    // Latency of completed requests: counts per bucket (not cumulative), then +Inf.
    std::array<uint64_t, kLatencyBuckets.size() + 1> buckets{};
    uint64_t latency_count = 0;
    double latency_sum_s = 0;
};

class ServiceStats {
  public:
    void on_segment(const xray::Segment& s);
    const std::map<std::string, ServiceCounts, std::less<>>& services() const { return services_; }

  private:
    ServiceCounts& slot(const std::string& name);

    std::map<std::string, ServiceCounts, std::less<>> services_;
};

}  // namespace passport::agent::metrics
