#include "agent/summary.hpp"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/fmt/fmt.h>

namespace passport::agent {
namespace {

constexpr std::array<std::string_view, 5> kDropCounters = {
    "pairing.lost_requests", "pairing.pending_overflow", "correlate.subsegments_dropped",
    "stream.budget_dropped_heads", "stream.reorder_overflow"};

// Counters the kernel reports that are not drops (the kernel.ctx_* ones are not either).
constexpr std::array<std::string_view, 1> kKernelNotDrops = {"kernel.sampling_rules_deferred"};

uint64_t delta(const CounterSnapshot& before, const CounterSnapshot& now, std::string_view name) {
    auto n = now.find(name);
    if (n == now.end()) return 0;
    auto b = before.find(name);
    const uint64_t was = b == before.end() ? 0 : b->second;
    return n->second > was ? n->second - was : 0;
}

template <size_t N>
uint64_t sum(const CounterSnapshot& before, const CounterSnapshot& now,
             const std::array<std::string_view, N>& names) {
    uint64_t total = 0;
    for (auto name : names) total += delta(before, now, name);
    return total;
}

}  // namespace

bool is_drop_counter(const std::string& name) {
    if (std::find(kKernelNotDrops.begin(), kKernelNotDrops.end(), name) != kKernelNotDrops.end() ||
        name.rfind("kernel.ctx_", 0) == 0)
        return false;
    if (name.rfind("kernel.", 0) == 0 || name.rfind("decode.rejected.", 0) == 0) return true;
    return std::find(kDropCounters.begin(), kDropCounters.end(), name) != kDropCounters.end();
}

std::string summary_line(const CounterSnapshot& before, const CounterSnapshot& now,
                         double seconds) {
    std::vector<std::pair<uint64_t, std::string>> drops;
    uint64_t dropped = 0;
    for (const auto& [name, value] : now) {
        if (!is_drop_counter(name)) continue;
        const uint64_t d = delta(before, now, name);
        if (d == 0) continue;
        dropped += d;
        drops.emplace_back(d, name);
    }
    std::sort(drops.begin(), drops.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string top;
    for (size_t i = 0; i < drops.size() && i < 3; i++)
        top += fmt::format("{}{} {}", i ? ", " : " (", drops[i].second, drops[i].first);
    if (!top.empty()) top += ")";
    const uint64_t sent = sum(
        before, now,
        std::array<std::string_view, 2>{"export.documents_sent", "export.file_documents_written"});
    const uint64_t failed =
        sum(before, now,
            std::array<std::string_view, 3>{"export.udp_send_failed", "export.file_write_failed",
                                            "xray.document_dropped"});
    return fmt::format("summary: {:g} s: {} requests, {} documents sent, {} failed, {} dropped{}",
                       seconds, delta(before, now, "http.requests"), sent, failed, dropped, top);
}

}  // namespace passport::agent
