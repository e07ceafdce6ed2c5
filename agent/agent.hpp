#pragma once
// run_agent: the passport main job. Probes the kernel, loads and attaches the BPF programs,
// selects processes, drains the ring buffer into the pipeline on one Boost.Asio io_context, and
// on SIGINT/SIGTERM (or --duration) drains, flushes open requests, detaches and prints counters.
// Diagnostics go through spdlog.
#include <functional>

#include "agent/config.hpp"
#include "userspace/export/emitter.hpp"

namespace passport::agent {

// spdlog logger for the start report (the `[yes]/[no]` lines) and the exit counters: user-facing
// lines printed as they are, next to the diagnostics of the default logger. main() creates it.
inline constexpr const char* kReportLogger = "report";

// extra_emitter, when set, receives every datagram too (the demo's embedded sink).
// on_ready runs once probes are attached and events flow.
int run_agent(const Config& cfg, exporter::Emitter* extra_emitter = nullptr,
              const std::function<void()>& on_ready = nullptr);

}  // namespace passport::agent
