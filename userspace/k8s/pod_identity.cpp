#include "userspace/k8s/pod_identity.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace passport::k8s {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> parts;
    while (!path.empty()) {
        const size_t slash = path.find('/');
        std::string_view part = path.substr(0, slash);
        if (!part.empty()) parts.push_back(part);
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool is_hex_id(std::string_view s) {
    return s.size() >= 12 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

// A pod UID as the API server writes it: 36 characters, lowercase hex and dashes at 8-4-4-4-12.
bool is_pod_uid(std::string_view s) {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < s.size(); i++) {
        const bool dash_at = i == 8 || i == 13 || i == 18 || i == 23;
        const char c = s[i];
        if (dash_at ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

// "kubepods…" slices, and those of a kubelet started with a --cgroup-root (kind:
// "kubelet-kubepods…").
bool is_kubepods_slice(std::string_view c) {
    return starts_with(c, "kubepods") || c.find("-kubepods") != std::string_view::npos;
}

QosClass qos_of(std::string_view component) {
    if (component.find("besteffort") != std::string_view::npos) return QosClass::kBestEffort;
    if (component.find("burstable") != std::string_view::npos) return QosClass::kBurstable;
    return QosClass::kGuaranteed;
}

// The pod component: systemd "kubepods[-<qos>]-pod<uid_with_underscores>.slice", cgroupfs
// "pod<uid>". Fills uid and qos.
bool parse_pod_component(std::string_view c, PodIdentity& id) {
    std::string uid;
    if (ends_with(c, ".slice") && is_kubepods_slice(c)) {
        const size_t pod = c.rfind("-pod");
        if (pod == std::string_view::npos) return false;
        uid = std::string(c.substr(pod + 4, c.size() - pod - 4 - 6));
        std::replace(uid.begin(), uid.end(), '_', '-');
        id.qos = qos_of(c.substr(0, pod));
    } else if (starts_with(c, "pod")) {
        uid = std::string(c.substr(3));
    } else {
        return false;
    }
    if (!is_pod_uid(uid)) return false;
    id.pod_uid = std::move(uid);
    return true;
}

struct ScopePrefix {
    std::string_view prefix;
    std::string_view runtime;
    bool monitor;
};
constexpr std::array<ScopePrefix, 4> kScopes{{{"crio-conmon-", "crio", true},
                                              {"cri-containerd-", "containerd", false},
                                              {"crio-", "crio", false},
                                              {"docker-", "docker", false}}};

// The container component: systemd "<runtime>-<id>.scope", cgroupfs "<id>".
bool parse_container_component(std::string_view c, PodIdentity& id) {
    if (ends_with(c, ".scope")) {
        c.remove_suffix(6);
        for (const auto& s : kScopes) {
            if (!starts_with(c, s.prefix) || !is_hex_id(c.substr(s.prefix.size()))) continue;
            id.container_id = std::string(c.substr(s.prefix.size()));
            id.runtime = std::string(s.runtime);
            id.runtime_monitor = s.monitor;
            return true;
        }
        return false;
    }
    if (!is_hex_id(c)) return false;
    id.container_id = std::string(c);
    return true;
}

// Calls fn with the path of each "hierarchy-ID:controllers:path" line of /proc/PID/cgroup.
template <typename Fn>
void for_each_cgroup_path(std::string_view text, Fn&& fn) {
    while (!text.empty()) {
        const size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        const size_t first = line.find(':');
        const size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
        if (second != std::string_view::npos) fn(line.substr(second + 1));
    }
}

}  // namespace

std::optional<PodIdentity> pod_identity_of_path(std::string_view path) {
    const std::vector<std::string_view> parts = split_path(path);
    for (size_t i = 0; i < parts.size(); i++) {
        const std::string_view c = parts[i];
        if (c != "kubepods" && !(ends_with(c, ".slice") && is_kubepods_slice(c))) continue;
        // kubepods[.slice] [/ qos] / pod / container: the pod is at most two components below.
        PodIdentity id;
        if (c == "kubepods" && i + 1 < parts.size()) id.qos = qos_of(parts[i + 1]);
        for (size_t j = i; j < parts.size() && j <= i + 2; j++) {
            if (!parse_pod_component(parts[j], id)) continue;
            if (c == "kubepods" && j == i + 1) id.qos = QosClass::kGuaranteed;
            if (j + 1 < parts.size() && !parse_container_component(parts[j + 1], id))
                return std::nullopt;  // something below the pod that no runtime makes
            return id;
        }
        return std::nullopt;
    }
    return std::nullopt;
}

std::optional<PodIdentity> pod_identity_of_cgroup_file(std::string_view text) {
    std::optional<PodIdentity> found;
    for_each_cgroup_path(text, [&](std::string_view path) {
        if (!found) found = pod_identity_of_path(path);
    });
    return found;
}

bool in_node_service_cgroup(std::string_view text) {
    constexpr std::array<std::string_view, 5> kUnits{"kubelet.service", "containerd.service",
                                                     "crio.service", "docker.service",
                                                     "cri-docker.service"};
    bool found = false;
    for_each_cgroup_path(text, [&](std::string_view path) {
        for (const auto& part : split_path(path))
            found = found || std::find(kUnits.begin(), kUnits.end(), part) != kUnits.end();
    });
    return found;
}

const char* qos_name(QosClass q) {
    switch (q) {
        case QosClass::kGuaranteed:
            return "guaranteed";
        case QosClass::kBurstable:
            return "burstable";
        case QosClass::kBestEffort:
            return "besteffort";
    }
    return "unknown";
}

}  // namespace passport::k8s
