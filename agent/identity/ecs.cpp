#include "agent/identity/ecs.hpp"

#include <algorithm>

#include "agent/identity/http_fetch.hpp"
#include "userspace/identity/aws_metadata.hpp"

namespace passport::identity {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBodyCap = size_t{1} << 20;
constexpr size_t kMaxUriBytes = 2048;

// The URI comes from another process's environment: plain http(s), printable, bounded.
Result<std::string> checked_uri(const std::string& uri) {
    if (uri.size() > kMaxUriBytes) return make_error("metadata URI longer than 2048 bytes");
    if (uri.rfind("http://", 0) != 0 && uri.rfind("https://", 0) != 0) {
        return make_error("metadata URI is not http(s)");
    }
    if (std::any_of(uri.begin(), uri.end(),
                    [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
        return make_error("metadata URI holds spaces or control characters");
    }
    std::string base = uri;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
}

Result<std::string> get(const std::string& url, Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto r = http_fetch({"GET", url, {"Accept: application/json"}, left, kBodyCap});
    if (!r) return make_error(url + ": " + r.error());
    if (r->status != 200) return make_error(url + ": HTTP " + std::to_string(r->status));
    return std::move(r->body);
}

}  // namespace

Result<EcsIdentity> fetch_ecs_identity(const std::string& metadata_uri,
                                       std::chrono::milliseconds budget) {
    auto base = checked_uri(metadata_uri);
    if (!base) return make_error(base.error());
    const auto deadline = Clock::now() + budget;
    auto container = get(*base, deadline);
    if (!container) return make_error("container metadata: " + container.error());
    auto task = get(*base + "/task", deadline);
    if (!task) return make_error("task metadata: " + task.error());
    return ecs_from_task_metadata(*container, *task);
}

}  // namespace passport::identity
