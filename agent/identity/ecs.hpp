#pragma once
// The ECS task and container a process runs in, from the task metadata endpoint v4 its
// environment names (ECS_CONTAINER_METADATA_URI_V4):
// GET ${ECS_CONTAINER_METADATA_URI_V4} (this container) and ${...}/task (its task)
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4.html).
// Blocking, bounded: both requests together within `budget`, each answer at most 1 MiB.
#include <chrono>
#include <string>

#include "userspace/common/result.hpp"
#include "userspace/identity/identity.hpp"

namespace passport::identity {

Result<EcsIdentity> fetch_ecs_identity(const std::string& metadata_uri,
                                       std::chrono::milliseconds budget);

}  // namespace passport::identity
