#include "agent/metrics/exporter_health.hpp"

#include <spdlog/fmt/fmt.h>

namespace passport::agent::metrics {

ExporterHealth::Totals ExporterHealth::read(std::chrono::steady_clock::time_point now,
                                            const Counters& c) {
    return Totals{.at = now,
                  .udp_failed = c.get("export.udp_send_failed"),
                  .refused = c.get("export.udp_refused"),
                  .would_block = c.get("export.udp_would_block"),
                  .too_large = c.get("export.udp_too_large"),
                  .file_failed = c.get("export.file_write_failed")};
}

// The reason that grew most between the two samples, in words.
std::string ExporterHealth::cause(const Totals& base, const Totals& now) {
    const uint64_t refused = now.refused - base.refused;
    const uint64_t would_block = now.would_block - base.would_block;
    const uint64_t too_large = now.too_large - base.too_large;
    if (refused >= would_block && refused >= too_large && refused > 0)
        return "connection refused (nothing listens there)";
    if (would_block >= too_large && would_block > 0) return "socket send buffer full";
    if (too_large > 0) return "datagram too large";
    return "send error";
}

void ExporterHealth::sample(std::chrono::steady_clock::time_point now, const Counters& counters) {
    history_.push_back(read(now, counters));
    // Keep the newest sample taken at least kWindow ago as the baseline.
    while (history_.size() > 1 && history_[1].at <= now - kWindow) history_.pop_front();
    const Totals& base = history_.front();
    const Totals& last = history_.back();
    const uint64_t udp = last.udp_failed - base.udp_failed;
    const uint64_t file = last.file_failed - base.file_failed;
    problem_.clear();
    if (udp > 0)
        problem_ = fmt::format("exporter: {} sends failed in the last {} s: {} to {}", udp,
                               kWindow.count(), cause(base, last), destination_);
    if (file > 0) {
        if (!problem_.empty()) problem_ += "; ";
        problem_ += fmt::format("exporter: {} --output writes failed in the last {} s", file,
                                kWindow.count());
    }
}

}  // namespace passport::agent::metrics
