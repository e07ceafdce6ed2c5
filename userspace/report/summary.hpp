#pragma once
// Summary: what a user sees at the end of `passport demo` — the X-Ray console's service map as
// a table (requests, average latency, error/fault/throttle rates per service) and one trace's
// waterfall, drawn in the terminal from the documents Passport produced. Pure: takes datagrams.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "userspace/export/emitter.hpp"

namespace passport::report {

// Keeps every datagram in memory: the demo's embedded sink when no X-Ray daemon is around.
class MemoryEmitter : public exporter::Emitter {
  public:
    void emit(std::string datagram) override { datagrams_.push_back(std::move(datagram)); }
    const std::vector<std::string>& datagrams() const { return datagrams_; }

  private:
    std::vector<std::string> datagrams_;
};

// Parses "header\nbody" datagrams; malformed ones are skipped and counted in *rejected.
std::vector<nlohmann::json> parse_datagrams(const std::vector<std::string>& datagrams,
                                            size_t* rejected = nullptr);

struct ServiceRow {
    std::string name;
    size_t requests = 0;
    double avg_latency_ms = 0;
    double error_pct = 0;
    double fault_pct = 0;
    double throttle_pct = 0;
};

std::vector<ServiceRow> service_table(const std::vector<nlohmann::json>& documents);
std::string format_service_table(const std::vector<ServiceRow>& rows);

// The trace with the most documents (ties: the earliest), drawn as a waterfall: one line per
// segment/subsegment, indented under its parent, with a bar scaled to the trace's duration.
std::string format_waterfall(const std::vector<nlohmann::json>& documents, size_t width = 50);

}  // namespace passport::report
