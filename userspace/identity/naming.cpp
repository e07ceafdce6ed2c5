#include "userspace/identity/naming.hpp"

#include <algorithm>
#include <array>

#include "userspace/common/text.hpp"
#include "userspace/xray/document.hpp"

namespace passport::identity {
namespace {

// Kinds whose name is the service's name, as the API writes them.
constexpr std::array<std::string_view, 5> kNamingKinds = {"Deployment", "StatefulSet", "DaemonSet",
                                                          "CronJob", "Job"};

bool is_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The workload that names a pod: a Job made by a CronJob is named after the CronJob.
std::pair<std::string_view, std::string> naming_workload(const PodIdentity& pod) {
    if (pod.workload_kind == "Job") {
        std::string cron = cronjob_of_job(pod.workload_name);
        if (!cron.empty()) return {"CronJob", cron};
    }
    return {pod.workload_kind, pod.workload_name};
}

std::string_view label(const PodIdentity& pod, const std::string& key) {
    auto it = pod.labels.find(key);
    return it == pod.labels.end() ? std::string_view() : std::string_view(it->second);
}

// Sanitised `candidate`, or "" when nothing of it is left.
std::string usable(std::string_view candidate) {
    if (candidate.empty()) return "";
    return xray::sanitize_name(candidate, "");
}

// The Kubernetes rules (4 to 7), in order: the first usable name.
ServiceName from_pod(const PodIdentity& pod, const ServiceNameOverrides* overrides) {
    if (overrides != nullptr) {
        if (std::string n = usable(overrides->find(pod)); !n.empty()) return {n, "override"};
    }
    if (std::string n = usable(pod.service_name_annotation); !n.empty()) return {n, "annotation"};
    const auto [kind, name] = naming_workload(pod);
    if (std::find(kNamingKinds.begin(), kNamingKinds.end(), kind) != kNamingKinds.end()) {
        if (std::string n = usable(name); !n.empty()) return {n, "kubernetes.workload"};
    }
    for (const char* key : {"app.kubernetes.io/name", "app"}) {
        if (std::string n = usable(label(pod, key)); !n.empty()) return {n, "kubernetes.label"};
    }
    if (std::string n = usable(pod.pod); !n.empty()) return {n, "kubernetes.pod"};
    return {};
}

}  // namespace

std::string cronjob_of_job(std::string_view job_name) {
    const size_t dash = job_name.rfind('-');
    if (dash == std::string_view::npos || dash == 0) return "";
    if (!is_digits(job_name.substr(dash + 1))) return "";
    return std::string(job_name.substr(0, dash));
}

Result<ServiceNameOverrides> ServiceNameOverrides::parse(const std::vector<std::string>& specs) {
    ServiceNameOverrides out;
    for (const std::string& spec : specs) {
        const size_t eq = spec.find('=');
        const std::string_view target = std::string_view(spec).substr(0, eq);
        const size_t s1 = target.find('/');
        const size_t s2 = s1 == std::string_view::npos ? s1 : target.find('/', s1 + 1);
        if (eq == std::string::npos || s2 == std::string_view::npos ||
            target.find('/', s2 + 1) != std::string_view::npos || s1 == 0 || s2 == s1 + 1 ||
            s2 + 1 == target.size() || eq + 1 == spec.size())
            return make_error("--service-name-override '" + spec +
                              "': expected NAMESPACE/KIND/NAME=SERVICE");
        Entry e{std::string(target.substr(0, s1)), std::string(target.substr(s1 + 1, s2 - s1 - 1)),
                std::string(target.substr(s2 + 1)), spec.substr(eq + 1)};
        if (xray::sanitize_name(e.service, "").empty())
            return make_error("--service-name-override '" + spec +
                              "': SERVICE has no character X-Ray accepts in a name");
        out.entries_.push_back(std::move(e));
    }
    return out;
}

std::string_view ServiceNameOverrides::find(const PodIdentity& pod) const {
    const auto [kind, name] = naming_workload(pod);
    for (const Entry& e : entries_) {
        if (e.namespace_name != pod.namespace_name) continue;
        if (text::iequals(e.kind, kind) && e.name == name) return e.service;
        // The raw owner too: "Job/<name>" or "ReplicaSet/<name>" as the API shows it.
        if (text::iequals(e.kind, pod.workload_kind) && e.name == pod.workload_name)
            return e.service;
    }
    return {};
}

ServiceName choose_service_name(const NameSources& in) {
    if (std::string n = usable(in.xray_tracing_name); !n.empty())
        return {n, "AWS_XRAY_TRACING_NAME"};
    if (std::string n = usable(in.otel_service_name); !n.empty()) return {n, "OTEL_SERVICE_NAME"};
    if (std::string n = usable(in.otel_resource_service_name); !n.empty())
        return {n, "OTEL_SERVICE_NAME"};
    if (in.pod != nullptr) {
        ServiceName s = from_pod(*in.pod, in.overrides);
        if (!s.name.empty()) return s;
    }
    if (in.ecs != nullptr) {
        if (std::string n = usable(in.ecs->container); !n.empty()) return {n, "ecs.container"};
    }
    if (std::string n = usable(in.configured); !n.empty()) return {n, "configured"};
    return {xray::sanitize_name(in.program), "program"};
}

}  // namespace passport::identity
