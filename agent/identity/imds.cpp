#include "agent/identity/imds.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "agent/identity/http_fetch.hpp"
#include "userspace/identity/aws_metadata.hpp"

namespace passport::identity {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kTokenPath = "/latest/api/token";
constexpr std::string_view kDocumentPath = "/latest/dynamic/instance-identity/document";
constexpr std::string_view kTagsPath = "/latest/meta-data/tags/instance";
constexpr std::string_view kEksTagKey = "eks:cluster-name";
// The token lives for 6 hours (the longest IMDS allows); one lookup needs it for seconds.
constexpr std::string_view kTokenTtlHeader = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
constexpr std::string_view kTokenHeader = "X-aws-ec2-metadata-token: ";
constexpr size_t kTokenCap = 4096;
constexpr size_t kDocumentCap = size_t{64} << 10;
constexpr size_t kTagListCap = size_t{64} << 10;

// The budget's deadline, shared by every request of one lookup.
struct Lookup {
    const ImdsOptions& opt;
    std::string base;  // endpoint without a trailing '/'
    Clock::time_point deadline;
    std::string token;  // "" with IMDSv1

    Result<HttpResponse> request(const std::string& method, std::string_view path, size_t cap,
                                 std::vector<std::string> headers = {}) const {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (!token.empty()) headers.push_back(std::string(kTokenHeader) + token);
        return http_fetch({method, base + std::string(path), std::move(headers), left, cap});
    }
};

bool token_acceptable(std::string_view token) {
    return !token.empty() && std::all_of(token.begin(), token.end(), [](char c) {
        return std::isgraph(static_cast<unsigned char>(c)) != 0;
    });
}

std::string http_status_text(const HttpResponse& r) { return "HTTP " + std::to_string(r.status); }

// The token (IMDSv2), or "" with used_v1 set when IMDSv1 may and must be used; an error when
// nothing answers or v1 is not allowed.
Result<std::string> get_token(const Lookup& lk, Ec2Facts& facts) {
    auto r = lk.request("PUT", kTokenPath, kTokenCap, {std::string(kTokenTtlHeader)});
    if (!r) return make_error("no IMDS at " + lk.base + ": " + r.error());
    if (r->status == 200) {
        std::string token = r->body;
        if (!token_acceptable(token)) return make_error("IMDS token at " + lk.base + " malformed");
        return token;
    }
    if (!lk.opt.allow_v1) {
        return make_error("IMDSv2 token request refused (" + http_status_text(*r) +
                          ") and IMDSv1 fallback not allowed");
    }
    facts.used_v1 = true;
    return std::string();
}

Result<Ec2Identity> get_document(const Lookup& lk) {
    auto r = lk.request("GET", kDocumentPath, kDocumentCap);
    if (!r) return make_error("identity document: " + r.error());
    if (r->status != 200) return make_error("identity document: " + http_status_text(*r));
    return ec2_from_identity_document(r->body);
}

// The EKS cluster from the instance's tags; "" when tags are not in metadata or name none.
std::string get_cluster_name(const Lookup& lk) {
    auto list = lk.request("GET", kTagsPath, kTagListCap);
    if (!list || list->status != 200) {
        spdlog::debug("IMDS: no instance tags in metadata ({})",
                      list ? http_status_text(*list) : list.error());
        return "";
    }
    const ClusterTagKeys keys = cluster_tag_keys(list->body);
    if (!keys.eks_tag_key) return keys.cluster_from_key;
    auto value = lk.request("GET", std::string(kTagsPath) + "/" + std::string(kEksTagKey),
                            kMaxFieldBytes + 2);
    if (!value || value->status != 200) {
        spdlog::debug("IMDS: tag {} unreadable ({})", kEksTagKey,
                      value ? http_status_text(*value) : value.error());
        return keys.cluster_from_key;
    }
    auto name = tag_value(value->body);
    if (!name) spdlog::warn("IMDS: tag {}: {}", kEksTagKey, name.error());
    return name ? name.value() : keys.cluster_from_key;
}

std::string without_trailing_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

ImdsOptions imds_options_from_env(ImdsOptions base,
                                  const std::function<const char*(const char*)>& getenv) {
    if (const char* v = getenv("AWS_EC2_METADATA_DISABLED"); v && equals_ignore_case(v, "true")) {
        base.disabled = true;
    }
    if (const char* v = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"); v && *v) base.endpoint = v;
    return base;
}

Ec2Facts fetch_ec2_facts(const ImdsOptions& opt) {
    Ec2Facts facts;
    if (opt.disabled) {
        facts.why_not = "IMDS disabled";
        return facts;
    }
    Lookup lk{opt, without_trailing_slash(opt.endpoint), Clock::now() + opt.budget, ""};
    auto token = get_token(lk, facts);
    if (!token) {
        facts.why_not = token.error();
        return facts;
    }
    lk.token = std::move(token.value());
    auto doc = get_document(lk);
    if (!doc) {
        facts.why_not = doc.error();
        return facts;
    }
    facts.ec2 = std::move(doc.value());
    facts.cluster_name = get_cluster_name(lk);
    return facts;
}

}  // namespace passport::identity
