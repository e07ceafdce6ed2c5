#pragma once
// A process's pod identity merged from what each source knows, best source first
// (docs/identity.md):
//   1. the API server's Pod object (pod and namespace names, owning workload, labels, the
//      passport.io/service-name annotation, each container's name and image by container id);
//   2. the container runtime's labels, which the kubelet writes on every container it creates
//      (io.kubernetes.pod.name, io.kubernetes.pod.namespace, io.kubernetes.container.name) and
//      the image the runtime reports;
//   3. what the node itself shows: the container's hostname (its UTS namespace; the pod name
//      unless the pod sets spec.hostname) and the service-account namespace file.
// The cgroup path always gives the pod uid and the container id. Pure: the agent reads the
// sources (agent/identity/pod_facts.hpp) and calls pod_identity_for.
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "userspace/identity/identity.hpp"
#include "userspace/k8s/pod.hpp"
#include "userspace/k8s/pod_identity.hpp"

namespace passport::identity {

// What the node itself shows for one process.
struct NodePodFacts {
    std::string uts_hostname;  // the container's hostname (pod name unless spec.hostname)
    std::string sa_namespace;  // service-account namespace file
    std::string pod_name, namespace_name, container_name, image;  // runtime labels
    bool from_runtime = false;  // a container runtime answered for the container
};

// The label keys the kubelet sets on the containers it creates through the CRI.
inline constexpr std::string_view kPodNameLabel = "io.kubernetes.pod.name";
inline constexpr std::string_view kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr std::string_view kContainerNameLabel = "io.kubernetes.container.name";
// The per-pod service name override.
inline constexpr std::string_view kServiceNameAnnotation = "passport.io/service-name";

// The merge. `api`: the pod as the API server describes it (nullptr: not known; ignored when its
// uid is not the cgroup's pod uid). `node`: what the node shows (nullptr: not read). A hostname
// equal to the node's own (a hostNetwork pod shares the node's UTS namespace) is not taken as
// the pod name. `source` is the best source that gave the pod's name.
PodIdentity pod_identity_for(const k8s::PodIdentity& cgroup, const k8s::PodMeta* api,
                             const NodePodFacts* node, const std::string& cluster_name,
                             const std::string& node_name);

// A DNS-1123 label (RFC 1123 as Kubernetes uses it for namespace names): 1 to 63 characters of
// a-z, 0-9 and '-', starting and ending with a letter or digit.
bool is_dns1123_label(std::string_view s);

// The runtime's answer for one container -> the runtime fields of NodePodFacts (from_runtime
// set); false when the body is not a JSON object of the documented shape.
//  Docker Engine API (also served by Podman), GET /containers/{id}/json: Config.Labels,
//  Config.Image
//  (https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Container/operation/ContainerInspect).
//  CRI-O, GET /containers/{id} on its socket: "labels", "image" (the container information
//  crio-status prints, https://github.com/cri-o/cri-o/blob/main/docs/crio-status.8.md; its
//  fields are ContainerInfo in https://github.com/cri-o/cri-o/blob/main/pkg/types/types.go).
// Labels and image of the wrong type are skipped.
bool runtime_facts_from_docker(const nlohmann::json& inspect, NodePodFacts& out);
bool runtime_facts_from_crio(const nlohmann::json& inspect, NodePodFacts& out);

}  // namespace passport::identity
