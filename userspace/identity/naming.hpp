#pragma once
// The segment name of a process, chosen by the first rule that gives one (docs/identity.md):
//   1. AWS_XRAY_TRACING_NAME in the process's environment      rule "AWS_XRAY_TRACING_NAME"
//   2. OTEL_SERVICE_NAME, then service.name of OTEL_RESOURCE_ATTRIBUTES   "OTEL_SERVICE_NAME"
//   3. a configured per-workload override (--service-name-override)      "override"
//   4. the pod's passport.io/service-name annotation                      "annotation"
//   5. the workload owning the pod: Deployment, StatefulSet, DaemonSet, CronJob, Job
//                                                                         "kubernetes.workload"
//   6. the pod's app.kubernetes.io/name label, then its app label         "kubernetes.label"
//   7. the pod's name                                                     "kubernetes.pod"
//   8. the ECS container's name                                           "ecs.container"
//   9. --service-name                                                     "configured"
//  10. the program: the script an interpreter runs, else the executable   "program"
// The chosen name is sanitised to what X-Ray accepts (xray::sanitize_name); a name that
// sanitises to nothing falls through to the next rule.
#include <string>
#include <string_view>
#include <vector>

#include "userspace/common/result.hpp"
#include "userspace/identity/identity.hpp"

namespace passport::identity {

struct ServiceName {
    std::string name;
    std::string_view rule;  // one of the rule names above (static storage)
};

// --service-name-override NAMESPACE/KIND/NAME=SERVICE: the pods of that workload are named
// SERVICE. KIND is compared without case; CronJob/NAME also names the Jobs it creates.
class ServiceNameOverrides {
  public:
    struct Entry {
        std::string namespace_name;
        std::string kind;
        std::string name;
        std::string service;
        bool operator==(const Entry&) const = default;
    };

    // Parses every entry; the first malformed one is the error, naming it.
    static Result<ServiceNameOverrides> parse(const std::vector<std::string>& specs);

    // The override for a pod, "" when none names its workload.
    std::string_view find(const PodIdentity& pod) const;
    bool empty() const { return entries_.empty(); }
    bool operator==(const ServiceNameOverrides&) const = default;

  private:
    std::vector<Entry> entries_;
};

struct NameSources {
    std::string_view xray_tracing_name;
    std::string_view otel_service_name;
    std::string_view otel_resource_service_name;
    const PodIdentity* pod = nullptr;
    const EcsIdentity* ecs = nullptr;
    const ServiceNameOverrides* overrides = nullptr;
    std::string_view configured;  // --service-name
    std::string_view program;     // script or executable name
};

ServiceName choose_service_name(const NameSources& in);

// The CronJob that made a Job, from the Job's name "<cronjob>-<scheduled time in minutes>"
// (https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#job-creation); "" when
// the name does not have that form.
std::string cronjob_of_job(std::string_view job_name);

}  // namespace passport::identity
