#pragma once
// MetricsPublisher: the agent's side of the health and metrics endpoint. It owns the endpoint,
// gathers what /metrics shows on the agent's thread (counters, per-service statistics, ring
// fill, process usage) and hands a finished snapshot to the server threads once a second.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/metrics/agent_metrics.hpp"
#include "agent/metrics/exporter_health.hpp"
#include "agent/metrics/metrics_server.hpp"
#include "agent/metrics/ring_fill.hpp"
#include "agent/metrics/service_stats.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/common/result.hpp"
#include "userspace/xray/segment.hpp"

namespace passport::agent::metrics {

struct PublisherConfig {
    std::string address;      // HOST:PORT
    std::string destination;  // where documents go, for /healthz reasons
    std::vector<std::string> kernel_drop_reasons;
    std::vector<Feature> features;  // kernel features found at start
};

class MetricsPublisher {
  public:
    // Listens at once (/healthz and /readyz answer 503 until the agent is attached and ready).
    static Result<std::unique_ptr<MetricsPublisher>> start(PublisherConfig cfg);

    std::string metrics_url() const { return server_->base_url() + "/metrics"; }

    void on_segment(const xray::Segment& s) { services_.on_segment(s); }
    // The ring buffer to report the fill of (its map fd); a failure only leaves the fill out.
    void watch_ring(int map_fd);
    void set_attached() { state_.set_probes_attached(); }
    void set_ready() { state_.set_ready(true, {}); }
    void set_note(std::string note) { state_.set_note(std::move(note)); }
    // Not ready any more; the endpoint closes while the agent drains and detaches.
    void set_stopping() {
        state_.set_ready(false, "stopping");
        server_->begin_stop();
    }

    // A new snapshot from the agent's counters (call on the thread that updates them).
    void publish(const Counters& counters);

    explicit MetricsPublisher(PublisherConfig cfg);  // not listening: use start()

  private:
    PublisherConfig cfg_;
    CounterNames names_;
    ServiceStats services_;
    ExporterHealth exporter_;
    std::optional<RingFillReader> ring_;
    MetricsState state_;
    std::unique_ptr<MetricsServer> server_;  // after state_: stopped before it goes
};

}  // namespace passport::agent::metrics
