#pragma once
// The EC2 instance this node is, from the Instance Metadata Service (IMDS), looked up once at
// start on the identity thread:
//   IMDSv2: PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds), then every GET with
//   X-aws-ec2-metadata-token
//   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html);
//   IMDSv1 (GETs without a token) only when allowed and the token request was refused.
//   GET /latest/dynamic/instance-identity/document: the instance (aws.ec2).
//   GET /latest/meta-data/tags/instance[/eks:cluster-name]: the EKS cluster, when the instance
//   allows tags in metadata
//   (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html).
// The whole lookup, every request together, stays within ImdsOptions::budget: off EC2 (nothing
// answers at the endpoint) the agent knows it within that time, once.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "userspace/identity/identity.hpp"

namespace passport::identity {

struct ImdsOptions {
    std::string endpoint = "http://169.254.169.254";
    bool disabled = false;
    bool allow_v1 = false;                   // IMDSv1 fallback: only when configured
    std::chrono::milliseconds budget{2000};  // whole lookup, all requests together
};

// The AWS SDKs' IMDS settings
// (https://docs.aws.amazon.com/sdkref/latest/guide/feature-imds-credentials.html):
// AWS_EC2_METADATA_DISABLED "true" (any case) disables IMDS; AWS_EC2_METADATA_SERVICE_ENDPOINT,
// when set and not empty, replaces the endpoint. `getenv` is std::getenv in the agent.
ImdsOptions imds_options_from_env(ImdsOptions base,
                                  const std::function<const char*(const char*)>& getenv);

struct Ec2Facts {
    std::optional<Ec2Identity> ec2;
    std::string cluster_name;  // EKS cluster from the instance's tags, "" if not found
    std::string why_not;       // when !ec2: "IMDS disabled", "no IMDS at <endpoint>: ...", ...
    bool used_v1 = false;
};

// Blocking; returns within opt.budget (plus scheduling).
Ec2Facts fetch_ec2_facts(const ImdsOptions& opt);

}  // namespace passport::identity
