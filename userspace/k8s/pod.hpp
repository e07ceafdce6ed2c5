#pragma once
// What selection needs of a pod, read from the API server's Pod objects
// (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/), and the
// workload that owns it.
#include <map>
#include <string>

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

struct PodMeta {
    std::string uid;
    std::string name;
    std::string namespace_name;
    std::string node_name;
    std::string resource_version;
    std::map<std::string, std::string> labels;
    Workload workload;
};

// A Pod object as JSON -> PodMeta. Refuses objects without metadata.uid, name or namespace, and
// fields of the wrong type, with a message naming the field.
Result<PodMeta> pod_from_json(const nlohmann::json& pod);

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
