#pragma once
// Selection of processes by the Kubernetes pod they run in: namespace, label and workload
// include lists, namespace and label exclude lists, and namespaces that are traced but never
// injected. Pure: the agent gathers the facts (agent/process_selector.cpp) and applies the verdict.
//
// Rule (docs/configuration.md, "Kubernetes selection"):
//  - a pod in kube-system is skipped unless kube-system is named in --k8s-namespace;
//  - an excluded namespace or label skips the pod, whatever the include lists say;
//  - each include list given must match (AND across lists); within a list one entry is enough;
//  - labels and workload are known only from the API server: without it, label and workload
//    includes cannot match, and exclude labels cannot be checked, so such pods are skipped;
//  - a traced pod in a --k8s-no-inject-namespace is traced but never injected.
#include <string>
#include <vector>

#include "userspace/common/result.hpp"
#include "userspace/k8s/pod.hpp"

namespace passport::k8s {

inline constexpr const char* kSystemNamespace = "kube-system";

struct LabelRule {
    std::string key;
    std::string value;
    bool operator==(const LabelRule&) const = default;
};

struct Rules {
    std::vector<std::string> namespaces;            // --k8s-namespace
    std::vector<std::string> exclude_namespaces;    // --k8s-exclude-namespace
    std::vector<LabelRule> labels;                  // --k8s-label
    std::vector<LabelRule> exclude_labels;          // --k8s-exclude-label
    std::vector<Workload> workloads;                // --k8s-workload
    std::vector<Workload> exclude_workloads;        // --k8s-exclude-workload
    std::vector<std::string> no_inject_namespaces;  // --k8s-no-inject-namespace

    // Any rule given: selection is then by pod (processes outside pods are not traced).
    bool any() const;
    // Some rule needs labels or the owning workload, which only the API server gives.
    bool needs_api() const {
        return !labels.empty() || !exclude_labels.empty() || !workloads.empty() ||
               !exclude_workloads.empty();
    }
    bool operator==(const Rules&) const = default;
};

// "KEY=VALUE" (KEY non-empty; VALUE may be empty, as a label value may be).
Result<LabelRule> parse_label_rule(const std::string& text);
// "KIND/NAME", e.g. deployment/web, StatefulSet/db, cronjob/report.
Result<Workload> parse_workload_rule(const std::string& text);

// What is known of a process's pod.
struct PodFacts {
    std::string namespace_name;     // "" when unknown
    const PodMeta* meta = nullptr;  // the API server's view; nullptr without it
};

enum class Verdict { kTrace, kSkip };

struct Decision {
    Verdict verdict = Verdict::kSkip;
    bool inject = true;
    const char* reason = "";  // a counter suffix: why skipped, or "selected"
};

Decision decide(const Rules& rules, const PodFacts& facts);

}  // namespace passport::k8s
