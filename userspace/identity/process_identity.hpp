#pragma once
// What every segment of one process carries about where it runs, composed once per process
// (and again when a source changes) and copied into segments as text: the name and the rule
// that chose it, origin, the aws.ec2/aws.ecs/aws.eks blocks with aws.account_id, and the pod
// in metadata.passport.kubernetes. Field by field in docs/identity.md.
#include <string>
#include <vector>

#include "userspace/identity/identity.hpp"
#include "userspace/identity/naming.hpp"

namespace passport::identity {

struct ProcessIdentity {
    std::string service_name;
    std::string name_rule;
    std::string origin;  // "AWS::EKS::Container", "AWS::ECS::Container", "AWS::EC2::Instance", ""
    // Members of the segment's "aws" object, serialised without braces ("" none):
    // "account_id":"…","ec2":{…},"ecs":{…},"eks":{…}. All sort before "xray".
    std::string aws_members;
    // Members of metadata.passport, serialised without braces, leading comma included (""
    // none): ,"name_rule":"…","kubernetes":{…}.
    std::string metadata_members;
    // Counter names, one per block this process should have and does not have yet (a lookup
    // still running or failed): counted for each segment that goes out without it.
    std::vector<std::string> missing;
};

struct IdentityFacts {
    const Ec2Identity* ec2 = nullptr;  // the node is this EC2 instance
    const EcsIdentity* ecs = nullptr;
    const PodIdentity* pod = nullptr;
};

// origin: the most specific environment, EKS before ECS before EC2 (the order the X-Ray SDK for
// Java gives its plugins).
ProcessIdentity compose_identity(const IdentityFacts& facts, ServiceName name);

}  // namespace passport::identity
