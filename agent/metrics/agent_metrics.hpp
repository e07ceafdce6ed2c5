#pragma once
// The agent's state as Prometheus metric families (docs/deploy.md, "Health and metrics"): every
// exit counter, the per-service request statistics, ring-buffer fill, the agent's own memory and
// CPU, and build and kernel-feature info. Built on the pipeline thread from a consistent view;
// the HTTP server only serialises what it was handed.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "agent/metrics/service_stats.hpp"
#include "userspace/common/counters.hpp"

namespace passport::agent::metrics {

// Where one exit counter appears: family name, its type, and the label that carries the part of
// the counter's name the family groups by (empty: no label).
struct CounterSeries {
    std::string family;
    prometheus::MetricType type = prometheus::MetricType::Counter;
    std::string label;
    std::string label_value;
};

// The mapping from exit counter names (`counter <name> <value>`) to metric series.
// `kernel_drop_reasons`: the names of the kernel's drop reasons (kernel.<reason> counters).
class CounterNames {
  public:
    explicit CounterNames(std::vector<std::string> kernel_drop_reasons)
        : drop_reasons_(std::move(kernel_drop_reasons)) {}
    CounterSeries series(std::string_view counter) const;

  private:
    std::vector<std::string> drop_reasons_;
};

struct RingFill {
    bool known = false;
    uint64_t used_bytes = 0;  // written by the kernel, not yet read by the agent
    uint64_t size_bytes = 0;
};

struct ProcessUsage {
    bool known = false;
    uint64_t resident_bytes = 0;
    double cpu_seconds = 0;  // user + system
};

struct Feature {
    std::string name;
    bool available = false;
};

struct SnapshotInput {
    const Counters* counters = nullptr;
    const CounterNames* names = nullptr;
    const ServiceStats* services = nullptr;
    RingFill ring;
    ProcessUsage process;
    std::string version;
    int abi_version = 0;
    std::vector<Feature> features;
};

std::vector<prometheus::MetricFamily> build_families(const SnapshotInput& in);

// The agent's resident memory and CPU time from /proc/self (known = false if unreadable).
ProcessUsage read_process_usage();

}  // namespace passport::agent::metrics
