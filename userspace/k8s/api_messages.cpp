#include "userspace/k8s/api_messages.hpp"

#include <array>
#include <utility>

#include <nlohmann/json.hpp>

namespace passport::k8s {
namespace {

using nlohmann::json;

std::string string_at(const json& obj, const char* key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& metadata_of(const json& obj) {
    static const json kEmpty = json::object();
    auto it = obj.find("metadata");
    return it != obj.end() && it->is_object() ? *it : kEmpty;
}

Result<WatchEventType> event_type(const std::string& name) {
    constexpr std::array<std::pair<const char*, WatchEventType>, 5> kTypes{{
        {"ADDED", WatchEventType::kAdded},
        {"MODIFIED", WatchEventType::kModified},
        {"DELETED", WatchEventType::kDeleted},
        {"BOOKMARK", WatchEventType::kBookmark},
        {"ERROR", WatchEventType::kError},
    }};
    for (const auto& [text, type] : kTypes) {
        if (name == text) return type;
    }
    return make_error("unknown watch event type '" + name.substr(0, 40) + "'");
}

}  // namespace

Result<PodList> parse_pod_list(std::string_view body) {
    json doc = json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return make_error("pod list is not a JSON object");
    if (auto kind = string_at(doc, "kind"); !kind.empty() && kind != "PodList")
        return make_error("expected kind PodList, got '" + kind.substr(0, 40) + "'");
    auto items = doc.find("items");
    if (items == doc.end() || !(items->is_array() || items->is_null()))
        return make_error("pod list has no items array");
    PodList list;
    list.resource_version = string_at(metadata_of(doc), "resourceVersion");
    list.continue_token = string_at(metadata_of(doc), "continue");
    if (list.resource_version.empty()) return make_error("pod list has no resourceVersion");
    if (items->is_null()) return list;
    for (const auto& item : *items) {
        auto pod = pod_from_json(item);
        if (pod) {
            list.pods.push_back(std::move(*pod));
        } else {
            list.rejected_items++;
        }
    }
    return list;
}

Result<WatchEvent> parse_watch_event(std::string_view line) {
    json doc = json::parse(line, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return make_error("watch event is not JSON");
    auto type = event_type(string_at(doc, "type"));
    if (!type) return make_error(type.error());
    auto obj = doc.find("object");
    if (obj == doc.end() || !obj->is_object()) return make_error("watch event has no object");
    WatchEvent ev;
    ev.type = *type;
    if (ev.type == WatchEventType::kError) {
        auto code = obj->find("code");
        ev.status_code = code != obj->end() && code->is_number_integer() ? code->get<int>() : 0;
        ev.message = string_at(*obj, "message").substr(0, 500);
        return ev;
    }
    ev.resource_version = string_at(metadata_of(*obj), "resourceVersion");
    if (ev.type == WatchEventType::kBookmark) {
        if (ev.resource_version.empty()) return make_error("bookmark without resourceVersion");
        return ev;
    }
    auto pod = pod_from_json(*obj);
    if (!pod) return make_error("watch event: " + pod.error());
    ev.pod = std::move(*pod);
    return ev;
}

Result<bool> WatchStreamParser::feed(std::string_view bytes, std::vector<WatchEvent>& out) {
    while (!bytes.empty()) {
        const size_t nl = bytes.find('\n');
        const std::string_view piece = bytes.substr(0, nl);
        if (partial_.size() + piece.size() > max_line_)
            return make_error("watch event longer than " + std::to_string(max_line_) + " bytes");
        if (nl == std::string_view::npos) {
            partial_.append(piece);
            return true;
        }
        bytes.remove_prefix(nl + 1);
        Result<bool> ok = true;
        if (partial_.empty()) {
            ok = parse_line(piece, out);
        } else {
            partial_.append(piece);
            ok = parse_line(partial_, out);
            partial_.clear();
        }
        if (!ok) return ok;
    }
    return true;
}

Result<bool> WatchStreamParser::parse_line(std::string_view line, std::vector<WatchEvent>& out) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return true;  // blank line
    auto ev = parse_watch_event(line);
    if (!ev) return make_error(ev.error());
    out.push_back(std::move(*ev));
    return true;
}

}  // namespace passport::k8s
