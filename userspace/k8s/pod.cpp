#include "userspace/k8s/pod.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace passport::k8s {
namespace {

using nlohmann::json;

// metadata.<key> as a string: "" when absent, an error when of another type.
Result<std::string> string_field(const json& obj, const char* key, const char* where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::string();
    if (!it->is_string()) return make_error(std::string(where) + "." + key + " is not a string");
    return it->get<std::string>();
}

Result<std::map<std::string, std::string>> labels_of(const json& meta) {
    std::map<std::string, std::string> out;
    auto it = meta.find("labels");
    if (it == meta.end() || it->is_null()) return out;
    if (!it->is_object()) return make_error("metadata.labels is not an object");
    for (const auto& [k, v] : it->items()) {
        if (!v.is_string()) return make_error("metadata.labels." + k + " is not a string");
        out.emplace(k, v.get<std::string>());
    }
    return out;
}

// metadata.annotations: entries with a value that is not a string are skipped.
std::map<std::string, std::string> annotations_of(const json& meta) {
    std::map<std::string, std::string> out;
    auto it = meta.find("annotations");
    if (it == meta.end() || !it->is_object()) return out;
    for (const auto& [k, v] : it->items()) {
        if (v.is_string()) out.emplace(k, v.get<std::string>());
    }
    return out;
}

std::string string_or_empty(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// status.<key>[]: {name, image, containerID}; entries that are not objects are skipped.
void add_container_statuses(const json& status, const char* key, std::vector<ContainerMeta>& out) {
    auto list = status.find(key);
    if (list == status.end() || !list->is_array()) return;
    for (const auto& c : *list) {
        if (!c.is_object()) continue;
        ContainerMeta m{string_or_empty(c, "name"), string_or_empty(c, "image"),
                        container_id_hex(string_or_empty(c, "containerID"))};
        if (!m.name.empty() || !m.container_id.empty()) out.push_back(std::move(m));
    }
}

// The descriptive fields: best effort, never a reason to refuse the pod.
void add_descriptive_fields(const json& pod, const json& meta, PodMeta& p) {
    p.annotations = annotations_of(meta);
    if (auto spec = pod.find("spec"); spec != pod.end() && spec->is_object())
        p.hostname = string_or_empty(*spec, "hostname");
    if (auto status = pod.find("status"); status != pod.end() && status->is_object()) {
        add_container_statuses(*status, "containerStatuses", p.containers);
        add_container_statuses(*status, "initContainerStatuses", p.containers);
    }
}

bool iequals(const std::string& a, const std::string& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

Workload workload_of(const json& owner_references,
                     const std::map<std::string, std::string>& labels) {
    if (!owner_references.is_array()) return {};
    const json* owner = nullptr;
    for (const auto& ref : owner_references) {
        if (!ref.is_object()) continue;
        if (ref.value("controller", false) || owner == nullptr) owner = &ref;
    }
    if (owner == nullptr || !(*owner)["kind"].is_string() || !(*owner)["name"].is_string())
        return {};
    Workload w{(*owner)["kind"].get<std::string>(), (*owner)["name"].get<std::string>()};
    if (w.kind == "ReplicaSet") {
        auto hash = labels.find("pod-template-hash");
        if (hash != labels.end() && !hash->second.empty() &&
            w.name.size() > hash->second.size() + 1 &&
            w.name.compare(w.name.size() - hash->second.size() - 1, std::string::npos,
                           "-" + hash->second) == 0) {
            w = {"Deployment", w.name.substr(0, w.name.size() - hash->second.size() - 1)};
        }
    }
    return w;
}

bool workload_matches(const Workload& rule, const Workload& w) {
    if (iequals(rule.kind, w.kind)) return rule.name == w.name;
    if (iequals(rule.kind, "CronJob") && w.kind == "Job") {
        const std::string prefix = rule.name + "-";
        if (w.name.size() <= prefix.size() || w.name.compare(0, prefix.size(), prefix) != 0)
            return false;
        return std::all_of(w.name.begin() + static_cast<std::ptrdiff_t>(prefix.size()),
                           w.name.end(), [](char c) { return c >= '0' && c <= '9'; });
    }
    return false;
}

Result<PodMeta> pod_from_json(const json& pod) {
    if (!pod.is_object()) return make_error("pod is not an object");
    auto meta = pod.find("metadata");
    if (meta == pod.end() || !meta->is_object()) return make_error("pod has no metadata");
    PodMeta p;
    for (auto [key, field] : {std::pair{"uid", &p.uid}, std::pair{"name", &p.name},
                              std::pair{"namespace", &p.namespace_name},
                              std::pair{"resourceVersion", &p.resource_version}}) {
        auto v = string_field(*meta, key, "metadata");
        if (!v) return make_error(v.error());
        *field = std::move(*v);
    }
    if (p.uid.empty() || p.name.empty() || p.namespace_name.empty())
        return make_error("pod without metadata.uid, name or namespace");
    auto labels = labels_of(*meta);
    if (!labels) return make_error(labels.error());
    p.labels = std::move(*labels);
    if (auto refs = meta->find("ownerReferences"); refs != meta->end())
        p.workload = workload_of(*refs, p.labels);
    if (auto spec = pod.find("spec"); spec != pod.end() && spec->is_object()) {
        auto node = string_field(*spec, "nodeName", "spec");
        if (!node) return make_error(node.error());
        p.node_name = std::move(*node);
    }
    add_descriptive_fields(pod, *meta, p);
    return p;
}

std::string container_id_hex(std::string_view container_id) {
    const size_t sep = container_id.find("://");
    if (sep == std::string_view::npos) return {};
    std::string_view hex = container_id.substr(sep + 3);
    if (hex.empty() || hex.size() > 128) return {};
    const bool ok = std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    return ok ? std::string(hex) : std::string();
}

const ContainerMeta* container_by_id(const PodMeta& pod, std::string_view container_id) {
    if (container_id.empty()) return nullptr;
    for (const auto& c : pod.containers) {
        if (c.container_id == container_id) return &c;
    }
    return nullptr;
}

}  // namespace passport::k8s
