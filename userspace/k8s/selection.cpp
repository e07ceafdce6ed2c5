#include "userspace/k8s/selection.hpp"

#include <algorithm>

namespace passport::k8s {
namespace {

bool contains(const std::vector<std::string>& list, const std::string& v) {
    return std::find(list.begin(), list.end(), v) != list.end();
}

bool any_label(const std::vector<LabelRule>& rules, const PodMeta& pod) {
    return std::any_of(rules.begin(), rules.end(), [&](const LabelRule& r) {
        auto it = pod.labels.find(r.key);
        return it != pod.labels.end() && it->second == r.value;
    });
}

bool any_workload(const std::vector<Workload>& rules, const Workload& w) {
    return std::any_of(rules.begin(), rules.end(),
                       [&](const Workload& rule) { return workload_matches(rule, w); });
}

Decision skip(const char* reason) { return Decision{Verdict::kSkip, false, reason}; }

// The exclusions, checked before any include: a reason, or nullptr when none applies.
const char* excluded(const Rules& r, const PodFacts& f) {
    if (f.namespace_name == kSystemNamespace && !contains(r.namespaces, kSystemNamespace))
        return "kube_system";
    if (contains(r.exclude_namespaces, f.namespace_name)) return "excluded_namespace";
    if (!r.exclude_labels.empty()) {
        if (!f.meta) return "exclude_label_unknown";
        if (any_label(r.exclude_labels, *f.meta)) return "excluded_label";
    }
    if (!r.exclude_workloads.empty()) {
        if (!f.meta) return "exclude_workload_unknown";
        if (any_workload(r.exclude_workloads, f.meta->workload)) return "excluded_workload";
    }
    return nullptr;
}

// The include lists: a reason, or nullptr when every list given matches.
const char* not_included(const Rules& r, const PodFacts& f) {
    if (!r.namespaces.empty() && !contains(r.namespaces, f.namespace_name))
        return "namespace_not_selected";
    if (!r.labels.empty()) {
        if (!f.meta) return "labels_unknown";
        if (!any_label(r.labels, *f.meta)) return "label_not_selected";
    }
    if (!r.workloads.empty()) {
        if (!f.meta) return "workload_unknown";
        if (!any_workload(r.workloads, f.meta->workload)) return "workload_not_selected";
    }
    return nullptr;
}

}  // namespace

bool Rules::any() const {
    return !namespaces.empty() || !exclude_namespaces.empty() || !labels.empty() ||
           !exclude_labels.empty() || !workloads.empty() || !exclude_workloads.empty() ||
           !no_inject_namespaces.empty();
}

Result<LabelRule> parse_label_rule(const std::string& text) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
        return make_error("expected KEY=VALUE, got '" + text + "'");
    return LabelRule{text.substr(0, eq), text.substr(eq + 1)};
}

Result<Workload> parse_workload_rule(const std::string& text) {
    const size_t slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
        text.find('/', slash + 1) != std::string::npos)
        return make_error("expected KIND/NAME (e.g. deployment/web), got '" + text + "'");
    return Workload{text.substr(0, slash), text.substr(slash + 1)};
}

Decision decide(const Rules& rules, const PodFacts& facts) {
    if (facts.namespace_name.empty()) return skip("namespace_unknown");
    if (const char* why = excluded(rules, facts)) return skip(why);
    if (const char* why = not_included(rules, facts)) return skip(why);
    return Decision{Verdict::kTrace, !contains(rules.no_inject_namespaces, facts.namespace_name),
                    "selected"};
}

}  // namespace passport::k8s
