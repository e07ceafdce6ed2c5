#include "agent/metrics/agent_metrics.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace passport::agent::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Exit counters that hold a level, not a running total.
constexpr std::array<std::string_view, 7> kGaugeCounters = {
    "kernel.sampling_rules_deferred", "stream.budget_peak_bytes", "identity.ec2",
    "identity.ecs_endpoints",         "identity.containers",      "sampling.centralized",
    "sampling.centralized_rules"};

// Exit counter groups shown as one family with a label (prefix, family, label, help).
struct LabelledGroup {
    std::string_view prefix;
    const char* family;
    const char* label;
    const char* help;
};
constexpr std::array<LabelledGroup, 6> kLabelledGroups = {{
    {"inject.", "passport_injection_events_total", "event",
     "What header injection did, by event (exit counters inject.<event>)"},
    {"decode.rejected.", "passport_decode_rejected_total", "reason",
     "Ring-buffer records the decoder rejected, by reason (exit counters "
     "decode.rejected.<reason>)"},
    {"identity.missing.", "passport_identity_missing_total", "reason",
     "Segments sent without an identity block, by reason (exit counters "
     "identity.missing.<reason>; docs/identity.md)"},
    {"sampling.rule_requests.", "passport_sampling_rule_requests_total", "rule",
     "Requests the kernel's sampling rules decided, by the rule that matched"},
    {"sampling.rule_sampled.", "passport_sampling_rule_sampled_total", "rule",
     "Of those, requests sampled from the rule's reservoir quota or fixed rate, by rule"},
    {"sampling.rule_borrowed.", "passport_sampling_rule_borrowed_total", "rule",
     "Of those, requests sampled by borrowing (one a second while the rule has no valid quota), "
     "by rule"},
}};

constexpr const char* kDropsFamily = "passport_kernel_drops_total";

// Metric names allow [a-zA-Z0-9_:]; the counters use dots between their parts.
std::string metric_part(std::string_view counter) {
    std::string out;
    out.reserve(counter.size());
    for (char ch : counter) {
        const bool keep = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
        out += keep ? ch : (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : '_';
    }
    return out;
}

std::string help_for(const CounterSeries& s, std::string_view counter) {
    if (s.family == kDropsFamily)
        return "Records the kernel could not capture or copy whole, by reason (exit counters "
               "kernel.<reason>)";
    for (const auto& g : kLabelledGroups)
        if (s.family == g.family) return g.help;
    return "Exit counter " + std::string(counter) + " (docs/configuration.md#counters)";
}

ClientMetric value_metric(MetricType type, double value, std::vector<ClientMetric::Label> labels) {
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter) {
        m.counter.value = value;
    } else {
        m.gauge.value = value;
    }
    return m;
}

MetricFamily family(std::string name, std::string help, MetricType type) {
    return MetricFamily{std::move(name), std::move(help), type, {}};
}

MetricFamily single(std::string name, std::string help, MetricType type, double value) {
    MetricFamily f = family(std::move(name), std::move(help), type);
    f.metric.push_back(value_metric(type, value, {}));
    return f;
}

void add_counters(const SnapshotInput& in, std::vector<MetricFamily>& out) {
    std::map<std::string, MetricFamily> families;
    for (const auto& [name, value] : in.counters->all()) {
        const CounterSeries s = in.names->series(name);
        auto [it, added] = families.try_emplace(s.family);
        if (added) it->second = family(s.family, help_for(s, name), s.type);
        std::vector<ClientMetric::Label> labels;
        if (!s.label.empty()) labels.push_back({s.label, s.label_value});
        it->second.metric.push_back(
            value_metric(s.type, static_cast<double>(value), std::move(labels)));
    }
    for (auto& [name, f] : families) out.push_back(std::move(f));
}

ClientMetric latency_metric(const std::string& service, const ServiceCounts& c) {
    ClientMetric m;
    m.label = {{"service", service}};
    uint64_t cumulative = 0;
    for (size_t b = 0; b < c.buckets.size(); b++) {
        cumulative += c.buckets[b];
        const double bound = b < kLatencyBuckets.size() ? kLatencyBuckets[b]
                                                        : std::numeric_limits<double>::infinity();
        m.histogram.bucket.push_back({cumulative, bound});
    }
    m.histogram.sample_count = c.latency_count;
    m.histogram.sample_sum = c.latency_sum_s;
    return m;
}

void add_services(const ServiceStats& stats, std::vector<MetricFamily>& out) {
    MetricFamily requests =
        family("passport_service_requests_total",
               "Requests recorded as segments (sampled), by service", MetricType::Counter);
    MetricFamily errors =
        family("passport_service_errors_total",
               "Recorded requests answered with a 4xx status, by service", MetricType::Counter);
    MetricFamily faults = family("passport_service_faults_total",
                                 "Recorded requests answered with a 5xx status or never "
                                 "answered, by service",
                                 MetricType::Counter);
    MetricFamily latency = family("passport_service_request_duration_seconds",
                                  "Time from request to complete response of recorded requests, "
                                  "by service",
                                  MetricType::Histogram);
    for (const auto& [name, c] : stats.services()) {
        const std::vector<ClientMetric::Label> label = {{"service", name}};
        requests.metric.push_back(
            value_metric(MetricType::Counter, static_cast<double>(c.requests), label));
        errors.metric.push_back(
            value_metric(MetricType::Counter, static_cast<double>(c.errors), label));
        faults.metric.push_back(
            value_metric(MetricType::Counter, static_cast<double>(c.faults), label));
        latency.metric.push_back(latency_metric(name, c));
    }
    for (auto* f : {&requests, &errors, &faults, &latency}) out.push_back(std::move(*f));
}

void add_agent(const SnapshotInput& in, std::vector<MetricFamily>& out) {
    if (in.ring.known) {
        out.push_back(single("passport_ringbuf_used_bytes",
                             "Bytes the kernel wrote to the ring buffer that the agent has not "
                             "read yet (producer minus consumer position)",
                             MetricType::Gauge, static_cast<double>(in.ring.used_bytes)));
        out.push_back(single("passport_ringbuf_size_bytes", "Size of the ring buffer",
                             MetricType::Gauge, static_cast<double>(in.ring.size_bytes)));
    }
    if (in.process.known) {
        out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes",
                             MetricType::Gauge, static_cast<double>(in.process.resident_bytes)));
        out.push_back(single("process_cpu_seconds_total",
                             "Total user and system CPU time spent in seconds", MetricType::Counter,
                             in.process.cpu_seconds));
    }
    MetricFamily build =
        family("passport_build_info", "Passport's version and kernel/user ABI version, value 1",
               MetricType::Gauge);
    build.metric.push_back(value_metric(
        MetricType::Gauge, 1, {{"abi", std::to_string(in.abi_version)}, {"version", in.version}}));
    out.push_back(std::move(build));
    MetricFamily features =
        family("passport_kernel_feature",
               "Kernel features found at start: 1 available, 0 not (docs/kernel-requirements.md)",
               MetricType::Gauge);
    for (const auto& f : in.features)
        features.metric.push_back(
            value_metric(MetricType::Gauge, f.available ? 1 : 0, {{"feature", f.name}}));
    out.push_back(std::move(features));
}

}  // namespace

CounterSeries CounterNames::series(std::string_view counter) const {
    if (counter.substr(0, 7) == "kernel.") {
        const std::string_view rest = counter.substr(7);
        if (std::find(drop_reasons_.begin(), drop_reasons_.end(), rest) != drop_reasons_.end())
            return {kDropsFamily, MetricType::Counter, "reason", std::string(rest)};
    }
    for (const auto& g : kLabelledGroups)
        if (counter.substr(0, g.prefix.size()) == g.prefix)
            return {g.family, MetricType::Counter, g.label,
                    std::string(counter.substr(g.prefix.size()))};
    if (std::find(kGaugeCounters.begin(), kGaugeCounters.end(), counter) != kGaugeCounters.end())
        return {"passport_" + metric_part(counter), MetricType::Gauge, {}, {}};
    return {"passport_" + metric_part(counter) + "_total", MetricType::Counter, {}, {}};
}

std::vector<MetricFamily> build_families(const SnapshotInput& in) {
    std::vector<MetricFamily> out;
    add_counters(in, out);
    if (in.services) add_services(*in.services, out);
    add_agent(in, out);
    return out;
}

ProcessUsage read_process_usage() {
    ProcessUsage u;
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (!std::getline(stat, line)) return u;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15, in clock ticks.
    const auto close = line.rfind(')');
    if (close == std::string::npos) return u;
    std::istringstream fields(line.substr(close + 2));
    std::string skip;
    for (int field = 3; field < 14; field++) fields >> skip;
    uint64_t utime = 0, stime = 0;
    if (!(fields >> utime >> stime)) return u;
    std::ifstream statm("/proc/self/statm");
    uint64_t size_pages = 0, resident_pages = 0;
    if (!(statm >> size_pages >> resident_pages)) return u;
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (ticks <= 0 || page <= 0) return u;
    u.known = true;
    u.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
    u.resident_bytes = resident_pages * static_cast<uint64_t>(page);
    return u;
}

}  // namespace passport::agent::metrics
