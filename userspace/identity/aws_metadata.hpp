#pragma once
// Parsers for what AWS's metadata endpoints answer, into the identity model (identity.hpp). Pure:
// no network, no exceptions out. Untrusted input: every field is checked for its type, every
// string is capped at kMaxFieldBytes, and an error names the field that was wrong.
//
//   EC2: the instance identity document, GET /latest/dynamic/instance-identity/document
//        (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html)
//   ECS: ${ECS_CONTAINER_METADATA_URI_V4} (this container) and ${...}/task (its task)
//        (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4-response.html)
//   EKS: the cluster name from the instance's tags in metadata, /latest/meta-data/tags/instance
//        (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html)
#include <cstddef>
#include <string>
#include <string_view>

#include "userspace/common/result.hpp"
#include "userspace/identity/identity.hpp"

namespace passport::identity {

// Longest string accepted in any field (an ARN is at most 2048 in general, but the ones read
// here — task, container, cluster — stay well below; a longer value is refused, not cut).
constexpr size_t kMaxFieldBytes = 256;

// instanceId, availabilityZone, instanceType and imageId are required; accountId and region are
// read when present (a document without them is still an instance).
Result<Ec2Identity> ec2_from_identity_document(std::string_view json);

// Name, DockerId and ContainerARN from the container document; TaskARN, Family, Cluster from the
// task document (required), LaunchType and AvailabilityZone from it when present (older agents
// and EC2 tasks omit them). The account id is the fifth field of the task ARN,
// arn:aws:ecs:<region>:<account>:task/...; a task ARN that is not one is an error.
Result<EcsIdentity> ecs_from_task_metadata(std::string_view container_json,
                                           std::string_view task_json);

// The account id of an ECS task ARN (arn:<partition>:ecs:<region>:<account>:task/...).
Result<std::string> account_from_task_arn(std::string_view arn);

// What the tag-key listing (one key per line) says of the EKS cluster: `eks_tag_key` is true
// when the listing holds "eks:cluster-name" (whose value is then read separately); otherwise
// `cluster_from_key` is <name> of a "kubernetes.io/cluster/<name>" key, else "".
struct ClusterTagKeys {
    bool eks_tag_key = false;
    std::string cluster_from_key;
};
ClusterTagKeys cluster_tag_keys(std::string_view listing);

// A tag value as IMDS returns it (text/plain): trailing newline trimmed, refused when empty,
// longer than kMaxFieldBytes or holding control characters.
Result<std::string> tag_value(std::string_view body);

}  // namespace passport::identity
