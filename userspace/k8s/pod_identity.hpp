#pragma once
// Which pod and container a process belongs to, read from its cgroup path as the kubelet and the
// container runtimes lay it out. Pure parsing: the caller reads /proc/PID/cgroup.
//
// Layouts (https://kubernetes.io/docs/concepts/architecture/cgroups/ and
// https://kubernetes.io/docs/setup/production-environment/container-runtimes/#cgroup-drivers;
// pod-level cgroups per QoS class as in the kubelet's pod resource management design,
// https://github.com/kubernetes/design-proposals-archive/blob/main/node/pod-resource-management.md):
//   systemd driver  /kubepods.slice/kubepods-burstable.slice/
//                     kubepods-burstable-pod<uid, '-' written '_'>.slice/<runtime>-<id>.scope
//                   (guaranteed pods directly under kubepods.slice: kubepods-pod<uid>.slice;
//                    <runtime> is cri-containerd, crio or docker; CRI-O's monitor runs in
//                    crio-conmon-<id>.scope)
//   cgroupfs driver /kubepods/burstable/pod<uid>/<id>   (guaranteed: /kubepods/pod<uid>/<id>)
// Any prefix before the kubepods component is accepted (nested cgroup namespaces), and slices of
// a kubelet run with --cgroup-root (kind nodes: kubelet-kubepods-…-pod<uid>.slice).
#include <optional>
#include <string>
#include <string_view>

namespace passport::k8s {

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };

struct PodIdentity {
    std::string pod_uid;       // with dashes, as the API server writes metadata.uid
    std::string container_id;  // hex id without runtime prefix; empty for the pod cgroup itself
    std::string runtime;       // "containerd", "crio", "docker" (systemd scopes); "" for cgroupfs
    QosClass qos = QosClass::kBestEffort;
    bool runtime_monitor = false;  // crio-conmon-<id>.scope: CRI-O's monitor, not the workload
};

// Pod identity of one cgroup path (the part after the second ':' of a /proc/PID/cgroup line).
std::optional<PodIdentity> pod_identity_of_path(std::string_view path);

// Pod identity from the whole text of /proc/PID/cgroup (cgroup v2 "0::/path" and v1
// "N:controllers:/path" lines alike): the first line whose path has a pod layout.
std::optional<PodIdentity> pod_identity_of_cgroup_file(std::string_view text);

// True when the text of /proc/PID/cgroup puts the process in the kubelet's or a container
// runtime's own service cgroup (systemd: kubelet.service, containerd.service, crio.service,
// docker.service, cri-docker.service; cgroupfs drivers run them in the same units).
bool in_node_service_cgroup(std::string_view text);

const char* qos_name(QosClass q);

}  // namespace passport::k8s
