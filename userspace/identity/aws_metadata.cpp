#include "userspace/identity/aws_metadata.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <nlohmann/json.hpp>

namespace passport::identity {
namespace {

using nlohmann::json;

// The endpoints answer a few KiB; anything past this is not a metadata document.
constexpr size_t kMaxDocumentBytes = 1 << 20;

bool has_control_chars(std::string_view s) {
    return std::any_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

Result<json> parse_object(std::string_view text, std::string_view what) {
    if (text.size() > kMaxDocumentBytes) {
        return make_error(std::string(what) + ": larger than " + std::to_string(kMaxDocumentBytes) +
                          " bytes");
    }
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return make_error(std::string(what) + ": not JSON");
    if (!doc.is_object()) return make_error(std::string(what) + ": not a JSON object");
    return doc;
}

// The string at `key`: absent (or null) is an error when `required`, "" otherwise; any other
// type, an over-long value or control characters are always errors.
Result<std::string> field(const json& doc, const char* key, std::string_view what, bool required) {
    const auto it = doc.find(key);
    const std::string where = std::string(what) + " field " + key;
    if (it == doc.end() || it->is_null()) {
        if (required) return make_error(where + ": missing");
        return std::string();
    }
    if (!it->is_string()) return make_error(where + ": not a string (" + it->type_name() + ")");
    const auto& s = it->get_ref<const std::string&>();
    if (s.size() > kMaxFieldBytes) {
        return make_error(where + ": longer than " + std::to_string(kMaxFieldBytes) + " bytes");
    }
    if (has_control_chars(s)) return make_error(where + ": holds control characters");
    if (required && s.empty()) return make_error(where + ": empty");
    return s;
}

// Reads each (key, destination, required) of `doc`; the first failure is the result.
struct FieldSpec {
    const char* key;
    std::string* out;
    bool required;
};

Result<bool> read_fields(const json& doc, std::string_view what,
                         std::initializer_list<FieldSpec> specs) {
    for (const FieldSpec& spec : specs) {
        auto v = field(doc, spec.key, what, spec.required);
        if (!v) return make_error(v.error());
        *spec.out = std::move(v.value());
    }
    return true;
}

}  // namespace

Result<Ec2Identity> ec2_from_identity_document(std::string_view text) {
    constexpr std::string_view kWhat = "instance identity document";
    auto doc = parse_object(text, kWhat);
    if (!doc) return make_error(doc.error());
    Ec2Identity id;
    auto ok = read_fields(*doc, kWhat,
                          {{"instanceId", &id.instance_id, true},
                           {"availabilityZone", &id.availability_zone, true},
                           {"instanceType", &id.instance_size, true},
                           {"imageId", &id.ami_id, true},
                           {"accountId", &id.account_id, false},
                           {"region", &id.region, false}});
    if (!ok) return make_error(ok.error());
    return id;
}

Result<std::string> account_from_task_arn(std::string_view arn) {
    // arn:<partition>:ecs:<region>:<account>:task/<cluster>/<id> (or task/<id>, older ARNs)
    std::array<std::string_view, 6> parts{};
    size_t start = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
        const size_t colon = i + 1 < parts.size() ? arn.find(':', start) : arn.size();
        if (colon == std::string_view::npos) return make_error("task ARN: not an ARN");
        parts[i] = arn.substr(start, colon - start);
        start = colon + 1;
    }
    if (parts[0] != "arn" || parts[2] != "ecs" || parts[5].substr(0, 5) != "task/") {
        return make_error("task ARN: not arn:<partition>:ecs:<region>:<account>:task/...");
    }
    const std::string_view account = parts[4];
    if (account.size() != 12 ||
        !std::all_of(account.begin(), account.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return make_error("task ARN: account id is not 12 digits");
    }
    return std::string(account);
}

Result<EcsIdentity> ecs_from_task_metadata(std::string_view container_json,
                                           std::string_view task_json) {
    constexpr std::string_view kContainer = "container metadata";
    constexpr std::string_view kTask = "task metadata";
    auto container = parse_object(container_json, kContainer);
    if (!container) return make_error(container.error());
    auto task = parse_object(task_json, kTask);
    if (!task) return make_error(task.error());
    EcsIdentity id;
    auto ok = read_fields(*container, kContainer,
                          {{"Name", &id.container, true},
                           {"DockerId", &id.container_id, true},
                           {"ContainerARN", &id.container_arn, false}});
    if (!ok) return make_error(ok.error());
    ok = read_fields(*task, kTask,
                     {{"TaskARN", &id.task_arn, true},
                      {"Family", &id.task_family, true},
                      {"Cluster", &id.cluster_arn, true},
                      {"LaunchType", &id.launch_type, false},
                      {"AvailabilityZone", &id.availability_zone, false}});
    if (!ok) return make_error(ok.error());
    auto account = account_from_task_arn(id.task_arn);
    if (!account) return make_error(std::string(kTask) + " field TaskARN: " + account.error());
    id.account_id = std::move(account.value());
    return id;
}

ClusterTagKeys cluster_tag_keys(std::string_view listing) {
    constexpr std::string_view kEksKey = "eks:cluster-name";
    constexpr std::string_view kK8sPrefix = "kubernetes.io/cluster/";
    ClusterTagKeys out;
    size_t start = 0;
    while (start < listing.size()) {
        size_t end = listing.find('\n', start);
        if (end == std::string_view::npos) end = listing.size();
        std::string_view key = listing.substr(start, end - start);
        if (!key.empty() && key.back() == '\r') key.remove_suffix(1);
        start = end + 1;
        if (key == kEksKey) out.eks_tag_key = true;
        if (out.cluster_from_key.empty() && key.size() > kK8sPrefix.size() &&
            key.size() <= kK8sPrefix.size() + kMaxFieldBytes &&
            key.substr(0, kK8sPrefix.size()) == kK8sPrefix && !has_control_chars(key)) {
            out.cluster_from_key = std::string(key.substr(kK8sPrefix.size()));
        }
    }
    return out;
}

Result<std::string> tag_value(std::string_view body) {
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
    if (body.empty()) return make_error("tag value: empty");
    if (body.size() > kMaxFieldBytes) {
        return make_error("tag value: longer than " + std::to_string(kMaxFieldBytes) + " bytes");
    }
    if (has_control_chars(body)) return make_error("tag value: holds control characters");
    return std::string(body);
}

}  // namespace passport::identity
