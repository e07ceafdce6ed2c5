#pragma once
// ProcessInfo: what Passport knows about a traced process (executable, command line, the two
// environment variables that name a service), read from /proc once per process and cached until
// it execs or exits. The proc root is configurable so tests can point it at a fake tree.
// Used by the correlator on the pipeline thread.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "userspace/k8s/pod_identity.hpp"

namespace passport::correlate {

struct ProcessInfo {
    uint32_t pid = 0;
    uint32_t ppid = 0;
    std::string exe;  // readlink of /proc/PID/exe, "" if unreadable
    std::string comm;
    std::vector<std::string> cmdline;  // argv
    std::string xray_tracing_name;     // AWS_XRAY_TRACING_NAME from the process environment
    std::string otel_service_name;     // OTEL_SERVICE_NAME from the process environment
    // service.name in OTEL_RESOURCE_ATTRIBUTES (OTEL_SERVICE_NAME wins over it, as the
    // OpenTelemetry SDK configuration spec says).
    std::string otel_resource_service_name;
    std::string ecs_metadata_uri;         // ECS_CONTAINER_METADATA_URI_V4, "" outside ECS
    std::string container_id;             // from /proc/PID/cgroup when it names one, else ""
    std::optional<k8s::PodIdentity> pod;  // the kubelet's pod cgroup layout, when it has one
};

// For interpreters (python, node, ruby, perl, php, bash/sh, java -jar), the script or module the
// interpreter runs; "" when argv names none (e.g. `python3 -c …`).
std::string script_name(const std::vector<std::string>& argv);

// The name the program itself suggests: the script for interpreters, else the executable's
// base name, else argv[0]'s, else comm.
std::string program_name(const ProcessInfo& info);

// service.name from an OTEL_RESOURCE_ATTRIBUTES value ("key1=value1,key2=value2", values
// percent-encoded as the OpenTelemetry resource SDK spec describes); "" when absent.
std::string otel_resource_service_name(std::string_view attributes);

class ProcessInfoCache {
  public:
    explicit ProcessInfoCache(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}

    // Cached info, read on first use; nullopt when the process is gone and was never read.
    const ProcessInfo* get(uint32_t pid);
    void forget(uint32_t pid) { cache_.erase(pid); }
    size_t size() const { return cache_.size(); }
    // Entries dropped to keep the cache within its 16 384 processes.
    uint64_t evicted() const { return evicted_; }

    // Reads /proc/PID now (no cache).
    std::optional<ProcessInfo> read(uint32_t pid) const;

  private:
    std::string proc_root_;
    std::unordered_map<uint32_t, ProcessInfo> cache_;
    uint64_t evicted_ = 0;
};

}  // namespace passport::correlate
