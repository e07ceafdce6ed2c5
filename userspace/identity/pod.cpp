#include "userspace/identity/pod.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace passport::identity {
namespace {

using nlohmann::json;

void fill(std::string& field, const std::string& value) {
    if (field.empty()) field = value;
}

// The node's own hostname in either form: the node name, or its first DNS label (a node named
// ip-10-0-1-2.ec2.internal has the hostname ip-10-0-1-2).
bool is_node_hostname(const std::string& hostname, const std::string& node_name) {
    if (node_name.empty()) return false;
    return hostname == node_name || hostname == node_name.substr(0, node_name.find('.'));
}

void apply_api(const k8s::PodMeta& api, const std::string& container_id, PodIdentity& out) {
    out.pod = api.name;
    out.namespace_name = api.namespace_name;
    out.workload_kind = api.workload.kind;
    out.workload_name = api.workload.name;
    out.labels = api.labels;
    if (auto it = api.annotations.find(std::string(kServiceNameAnnotation));
        it != api.annotations.end())
        out.service_name_annotation = it->second;
    if (const auto* c = k8s::container_by_id(api, container_id)) {
        out.container_name = c->name;
        out.image = c->image;
    }
    if (out.node_name.empty()) out.node_name = api.node_name;
    out.source = PodSource::kApiServer;
}

void apply_runtime(const NodePodFacts& node, PodIdentity& out) {
    const bool named_here = out.pod.empty() && !node.pod_name.empty();
    fill(out.pod, node.pod_name);
    fill(out.namespace_name, node.namespace_name);
    fill(out.container_name, node.container_name);
    fill(out.image, node.image);
    if (named_here) out.source = PodSource::kRuntime;
}

void apply_node(const NodePodFacts& node, const std::string& node_name, PodIdentity& out) {
    const bool named_here = out.pod.empty() && !node.uts_hostname.empty() &&
                            !is_node_hostname(node.uts_hostname, node_name);
    if (named_here) {
        out.pod = node.uts_hostname;
        out.source = PodSource::kNode;
    }
    if (is_dns1123_label(node.sa_namespace)) fill(out.namespace_name, node.sa_namespace);
}

// A string-valued member of an object ("" when absent or of another type).
std::string string_member(const json& obj, std::string_view key) {
    auto it = obj.find(std::string(key));
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The kubelet's labels out of a runtime's label object; entries of the wrong type are skipped.
void labels_into(const json& labels, NodePodFacts& out) {
    if (!labels.is_object()) return;
    out.pod_name = string_member(labels, kPodNameLabel);
    out.namespace_name = string_member(labels, kPodNamespaceLabel);
    out.container_name = string_member(labels, kContainerNameLabel);
}

}  // namespace

PodIdentity pod_identity_for(const k8s::PodIdentity& cgroup, const k8s::PodMeta* api,
                             const NodePodFacts* node, const std::string& cluster_name,
                             const std::string& node_name) {
    PodIdentity out;
    out.cluster_name = cluster_name;
    out.node_name = node_name;
    out.pod_uid = cgroup.pod_uid;
    out.container_id = cgroup.container_id;
    out.source = PodSource::kNode;
    if (api != nullptr && (cgroup.pod_uid.empty() || api->uid == cgroup.pod_uid))
        apply_api(*api, cgroup.container_id, out);
    if (node != nullptr && node->from_runtime) apply_runtime(*node, out);
    if (node != nullptr) apply_node(*node, node_name, out);
    return out;
}

bool is_dns1123_label(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    return alnum(s.front()) && alnum(s.back()) &&
           std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

bool runtime_facts_from_docker(const json& inspect, NodePodFacts& out) {
    if (!inspect.is_object()) return false;
    auto config = inspect.find("Config");
    if (config == inspect.end() || !config->is_object()) return false;
    if (auto labels = config->find("Labels"); labels != config->end()) labels_into(*labels, out);
    out.image = string_member(*config, "Image");
    out.from_runtime = true;
    return true;
}

bool runtime_facts_from_crio(const json& inspect, NodePodFacts& out) {
    if (!inspect.is_object()) return false;
    if (auto labels = inspect.find("labels"); labels != inspect.end()) labels_into(*labels, out);
    out.image = string_member(inspect, "image");
    out.from_runtime = true;
    return true;
}

}  // namespace passport::identity
