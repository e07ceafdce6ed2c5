#pragma once
// What selection needs of a pod, read from the API server's Pod objects
// (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/), and the
// workload that owns it.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "userspace/common/result.hpp"

namespace passport::k8s {

// The workload that owns a pod: kind as the API names it (Deployment, StatefulSet, DaemonSet,
// Job, ReplicaSet, ...) and its name; empty for a pod nobody owns.
struct Workload {
    std::string kind;
    std::string name;
    bool operator==(const Workload&) const = default;
};

// One container of a pod as its status reports it (status.containerStatuses[] and
// status.initContainerStatuses[]).
struct ContainerMeta {
    std::string name;
    std::string image;         // image as the kubelet reports it (may differ from spec's form)
    std::string container_id;  // hex id: containerID "<runtime>://<hex>" without the prefix
    bool operator==(const ContainerMeta&) const = default;
};

struct PodMeta {
    std::string uid;
    std::string name;
    std::string namespace_name;
    std::string node_name;
    std::string resource_version;
    std::map<std::string, std::string> labels;
    Workload workload;
    std::map<std::string, std::string> annotations;  // metadata.annotations (string values)
    std::string hostname;                            // spec.hostname, "" when not set
    std::vector<ContainerMeta> containers;           // from the status, init containers too
};

// A Pod object as JSON -> PodMeta. Refuses objects without metadata.uid, name or namespace, and
// fields selection reads (metadata.uid/name/namespace/resourceVersion/labels, spec.nodeName) of
// the wrong type, with a message naming the field. The descriptive fields (annotations,
// spec.hostname, container statuses) are best effort: an entry of the wrong type is skipped.
Result<PodMeta> pod_from_json(const nlohmann::json& pod);

// The container of `pod` whose id is `container_id` (hex, no prefix); nullptr when none.
const ContainerMeta* container_by_id(const PodMeta& pod, std::string_view container_id);

// containerID as the kubelet writes it ("containerd://<hex>", "cri-o://<hex>",
// "docker://<hex>") -> the hex id; "" when it has no "://" or the rest is not lower-case hex.
std::string container_id_hex(std::string_view container_id);

// The owning workload from metadata.ownerReferences (the controller reference):
//  - ReplicaSet -> Deployment: a Deployment names its ReplicaSets
//  "<deployment>-<pod-template-hash>"
//    and labels their pods pod-template-hash=<hash>
//    (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label),
//    so a ReplicaSet whose name ends with "-<the pod's pod-template-hash>" is taken as that
//    Deployment's; any other ReplicaSet stays kind ReplicaSet.
//  - StatefulSet, DaemonSet, Job and anything else: the owner as it is. A Job made by a CronJob
//    stays kind Job (its name is "<cronjob>-<scheduled minute>"; workload_matches() accepts it for
//    CronJob/<cronjob>).
Workload workload_of(const nlohmann::json& owner_references,
                     const std::map<std::string, std::string>& labels);

// Whether a pod owned by `w` is matched by a --k8s-workload KIND/NAME rule (kind compared without
// case). CronJob/NAME matches the Jobs it creates, named NAME-<digits>
// (https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#job-creation).
bool workload_matches(const Workload& rule, const Workload& w);

}  // namespace passport::k8s
