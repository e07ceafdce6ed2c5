#include "agent/metrics/metrics_publisher.hpp"

#include <spdlog/spdlog.h>

#include "passport/abi.h"

namespace passport::agent::metrics {

MetricsPublisher::MetricsPublisher(PublisherConfig cfg)
    : cfg_(std::move(cfg)), names_(cfg_.kernel_drop_reasons), exporter_(cfg_.destination) {}

Result<std::unique_ptr<MetricsPublisher>> MetricsPublisher::start(PublisherConfig cfg) {
    auto p = std::make_unique<MetricsPublisher>(std::move(cfg));
    auto server = MetricsServer::start(p->cfg_.address, p->state_);
    if (!server) return make_error(server.error());
    p->server_ = std::move(*server);
    p->exporter_.sample(std::chrono::steady_clock::now(), Counters{});
    return p;
}

void MetricsPublisher::watch_ring(int map_fd) {
    auto reader = RingFillReader::open(map_fd);
    if (!reader) {
        spdlog::warn("metrics: ring buffer fill not reported: {}", reader.error());
        return;
    }
    ring_.emplace(std::move(*reader));
}

void MetricsPublisher::publish(const Counters& counters) {
    exporter_.sample(std::chrono::steady_clock::now(), counters);
    SnapshotInput in;
    in.counters = &counters;
    in.names = &names_;
    in.services = &services_;
    if (ring_) in.ring = ring_->read();
    in.process = read_process_usage();
    in.version = PASSPORT_VERSION;
    in.abi_version = PP_ABI_VERSION;
    in.features = cfg_.features;
    state_.publish(build_families(in), exporter_.problem());
}

}  // namespace passport::agent::metrics
