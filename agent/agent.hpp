#pragma once
// run_agent: the passport main job. Probes the kernel, loads and attaches the BPF programs,
// selects processes, drains the ring buffer into the pipeline on one Boost.Asio io_context, and
// on SIGINT/SIGTERM (or --duration) drains, flushes open requests, detaches and prints counters.
// Diagnostics go through spdlog.
#include <functional>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "userspace/export/emitter.hpp"

namespace passport::agent {

// spdlog logger for the start report (the `[yes]/[no]` lines) and the exit counters: user-facing
// lines printed as they are, next to the diagnostics of the default logger. main() creates it.
inline constexpr const char* kReportLogger = "report";

// What SIGHUP reads again: the options as given at start (`settings`, by config-file key) and
// how to read them now (the command line again, with its --config file).
struct ReloadSource {
    Settings settings;
    std::function<Result<Config>(Settings&)> read;
};

// Keys a reload applies in place; a change to any other key is reported as needing a restart.
// Selection keys belong here.
inline const std::vector<std::string> kReloadableKeys = {"sampling_rules",
                                                         "pid",
                                                         "exe",
                                                         "port",
                                                         "verbose",
                                                         "k8s_namespace",
                                                         "k8s_exclude_namespace",
                                                         "k8s_label",
                                                         "k8s_exclude_label",
                                                         "k8s_workload",
                                                         "k8s_exclude_workload",
                                                         "k8s_no_inject_namespace",
                                                         "service_name_override",
                                                         "service_name",
                                                         "cluster_name"};

// extra_emitter, when set, receives every datagram too (the demo's embedded sink).
// on_ready runs once probes are attached and events flow. Without `reload`, SIGHUP re-reads
// only the sampling rules file.
int run_agent(const Config& cfg, exporter::Emitter* extra_emitter = nullptr,
              const std::function<void()>& on_ready = nullptr, ReloadSource reload = {});

}  // namespace passport::agent
