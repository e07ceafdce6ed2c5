#pragma once
// What the node itself shows of a process's pod, without the API server (docs/identity.md):
//  - the container's hostname, from its UTS namespace (read only when that namespace is not the
//    agent's own: a hostNetwork pod shares the node's): uname() on a short-lived thread that
//    joins it (needs CAP_SYS_ADMIN), else the container's /etc/hostname, which the runtime
//    bind-mounts with the same name;
//  - the service-account namespace file under /proc/<pid>/root;
//  - the container runtime's labels and image, when a runtime socket is reachable: the Docker
//    Engine API (Docker, Podman) or CRI-O's inspect endpoint. containerd speaks only gRPC (the
//    CRI and its own API) and is not asked.
// Every read is bounded; a source that fails leaves its fields empty.
#include <cstdint>
#include <string>
#include <vector>

#include "userspace/identity/pod.hpp"

namespace passport::identity {

// Unix sockets of container runtimes to ask, in order. A socket whose file name starts with
// "crio" is spoken to as CRI-O, any other as the Docker Engine API. Sockets that do not exist
// are skipped.
struct RuntimeSockets {
    std::vector<std::string> paths;
};

// --runtime-socket values, or when none is given the usual places: /run/docker.sock,
// /run/podman/podman.sock, /run/crio/crio.sock, and the same under /host (the host's /run
// mounted at /host/run in the agent's pod).
RuntimeSockets runtime_sockets_from(const std::vector<std::string>& given);

NodePodFacts read_node_pod_facts(uint32_t pid, const std::string& container_id,
                                 const RuntimeSockets& sockets,
                                 const std::string& proc_root = "/proc");

// The parts, each usable alone ("" / false when the source gives nothing).
std::string uts_hostname_of(uint32_t pid, const std::string& proc_root = "/proc");
std::string sa_namespace_of(uint32_t pid, const std::string& proc_root = "/proc");
bool runtime_facts_of(const std::string& container_id, const RuntimeSockets& sockets,
                      NodePodFacts& out);

}  // namespace passport::identity
