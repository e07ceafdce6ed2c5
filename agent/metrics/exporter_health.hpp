#pragma once
// ExporterHealth: whether documents are leaving the agent, judged from the export counters
// sampled once a second. The exporter is failing while any datagram (UDP) or line (--output)
// failed in the last kWindow; the reason names the count, the last cause and the destination.
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "userspace/common/counters.hpp"

namespace passport::agent::metrics {

class ExporterHealth {
  public:
    static constexpr std::chrono::seconds kWindow{10};

    // destination: how documents leave, for the reason text (e.g. "udp 127.0.0.1:2000").
    explicit ExporterHealth(std::string destination) : destination_(std::move(destination)) {}

    // now: a monotonic time; counters: the agent's, read on the thread that updates them.
    void sample(std::chrono::steady_clock::time_point now, const Counters& counters);

    // Empty while the exporter works, else why it does not (plain text for /healthz).
    const std::string& problem() const { return problem_; }

  private:
    struct Totals {
        std::chrono::steady_clock::time_point at;
        uint64_t udp_failed = 0;
        uint64_t refused = 0;
        uint64_t would_block = 0;
        uint64_t too_large = 0;
        uint64_t file_failed = 0;
    };
    static Totals read(std::chrono::steady_clock::time_point now, const Counters& c);
    static std::string cause(const Totals& base, const Totals& now);

    std::string destination_;
    std::deque<Totals> history_;  // one per sample, the oldest kWindow ago or later
    std::string problem_;
};

}  // namespace passport::agent::metrics
