#pragma once
// Where a process runs, as X-Ray's SDK plugins describe it in a segment: the EC2 instance
// (aws.ec2, from the instance identity document), the ECS task and container (aws.ecs, from the
// task metadata endpoint), the Kubernetes pod (aws.eks plus pod metadata). Plain data: the agent
// fills it from IMDS, the ECS endpoint, the API server and what the node shows
// (docs/identity.md); the correlator copies it into every segment of the process.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace passport::identity {

// From the instance identity document
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html).
struct Ec2Identity {
    std::string instance_id;        // instanceId
    std::string availability_zone;  // availabilityZone
    std::string instance_size;      // instanceType (the SDKs' EC2 plugins call it instance_size)
    std::string ami_id;             // imageId
    std::string account_id;         // accountId
    std::string region;             // region
    bool operator==(const Ec2Identity&) const = default;
};

// From the task metadata endpoint v4
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4.html):
// ${ECS_CONTAINER_METADATA_URI_V4} (this container) and ${ECS_CONTAINER_METADATA_URI_V4}/task.
struct EcsIdentity {
    std::string container;          // container Name
    std::string container_id;       // DockerId
    std::string container_arn;      // ContainerARN
    std::string task_arn;           // TaskARN
    std::string task_family;        // Family
    std::string cluster_arn;        // Cluster (an ARN, or a name on older agents)
    std::string launch_type;        // LaunchType: EC2, FARGATE, EXTERNAL
    std::string availability_zone;  // AvailabilityZone
    std::string account_id;         // from the task ARN
    bool operator==(const EcsIdentity&) const = default;
};

// Where a pod fact came from, best first.
enum class PodSource { kApiServer, kRuntime, kNode };

// A process in a Kubernetes pod.
struct PodIdentity {
    std::string cluster_name;  // --cluster-name, else the EKS node's instance tags; else ""
    std::string pod;           // pod name
    std::string pod_uid;       // from the cgroup path
    std::string namespace_name;
    std::string container_id;  // hex id without the runtime's prefix
    std::string container_name;
    std::string image;
    std::string node_name;
    std::string workload_kind;  // Deployment, StatefulSet, DaemonSet, Job, ReplicaSet, ... or ""
    std::string workload_name;
    std::map<std::string, std::string> labels;  // API server only
    std::string service_name_annotation;        // passport.io/service-name, API server only
    PodSource source = PodSource::kNode;
};

}  // namespace passport::identity
