#pragma once
// The health and metrics endpoint (--metrics-address): /healthz, /readyz and /metrics over HTTP
// GET, served by civetweb on its own threads. The pipeline thread publishes into MetricsState;
// the server threads only read it under its mutex, so a slow client never holds up the agent.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/metric_family.h>

#include "userspace/common/result.hpp"

class CivetServer;

namespace passport::agent::metrics {

// What the endpoint answers with: written by the agent thread, read by the server threads.
class MetricsState {
  public:
    // A new /metrics snapshot and the exporter's problem ("" when it works).
    void publish(std::vector<prometheus::MetricFamily> families, std::string exporter_problem);
    void set_probes_attached();
    void set_ready(bool ready, std::string why_not);
    // A line added to /healthz and /readyz answers (which sampling rules decide); "" for none.
    void set_note(std::string note);

    // /healthz and /readyz: (HTTP status, plain-text body).
    std::pair<int, std::string> health() const;
    std::pair<int, std::string> readiness() const;
    std::shared_ptr<const std::vector<prometheus::MetricFamily>> families() const;

    // No snapshot for this long means the agent's thread is stuck: /healthz answers 503.
    static constexpr std::chrono::seconds kStale{15};

  private:
    mutable std::mutex mutex_;
    std::shared_ptr<const std::vector<prometheus::MetricFamily>> families_ =
        std::make_shared<const std::vector<prometheus::MetricFamily>>();
    std::string exporter_problem_;
    std::chrono::steady_clock::time_point published_{};
    bool attached_ = false;
    bool ready_ = false;
    std::string not_ready_ = "starting: probes not attached yet";
    std::string note_;
};

class MetricsServer {
  public:
    // Listens on `address` (HOST:PORT; port 0 picks a free one) with a few threads of its own.
    static Result<std::unique_ptr<MetricsServer>> start(const std::string& address,
                                                        const MetricsState& state);
    MetricsServer();  // not listening: use start()
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // Stops listening on a thread of its own (civetweb takes up to 2 s to stop): the agent's
    // shutdown goes on meanwhile; the destructor waits for it.
    void begin_stop();

    // http://HOST:PORT with the port actually bound.
    std::string base_url() const { return base_url_; }

  private:
    struct Handlers;
    std::unique_ptr<Handlers> handlers_;
    std::unique_ptr<CivetServer> server_;
    std::thread stopping_;
    std::string base_url_;
};

}  // namespace passport::agent::metrics
