#include "userspace/sample/xray_sampling_api.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

namespace passport::sample {
namespace {

using nlohmann::json;

Result<json> parse_object(std::string_view body, const char* what) {
    if (body.size() > kMaxSamplingResponseBytes) {
        return make_error(std::string(what) + ": response larger than " +
                          std::to_string(kMaxSamplingResponseBytes) + " bytes");
    }
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return make_error(std::string(what) + ": not JSON");
    if (!doc.is_object()) return make_error(std::string(what) + ": not a JSON object");
    return doc;
}

bool read_string(const json& o, const char* field, std::string& out) {
    const auto it = o.find(field);
    if (it == o.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
}

// Why the record cannot be used, "" when `rule` was filled.
std::string read_record(const json& record, CentralizedRule& rule) {
    if (!record.is_object()) return "not an object";
    const auto r = record.find("SamplingRule");
    if (r == record.end() || !r->is_object()) return "no SamplingRule object";
    if (!read_string(*r, "RuleName", rule.name) || rule.name.empty()) return "no RuleName";
    const auto version = r->find("Version");
    if (version == r->end() || !version->is_number_integer() || *version != 1)
        return "Version is not 1";
    std::string arn;
    if (!read_string(*r, "ResourceARN", arn) || arn != "*")
        return "ResourceARN is not \"*\" (no resource ARN is known to match)";
    if (const auto a = r->find("Attributes"); a != r->end() && !(a->is_object() && a->empty()))
        return "it requires Attributes (no request attributes are known to match)";
    const auto priority = r->find("Priority");
    if (priority == r->end() || !priority->is_number_integer() || *priority < 1)
        return "Priority is not a positive integer";
    rule.priority = priority->get<int64_t>();
    const auto rate = r->find("FixedRate");
    if (rate == r->end() || !rate->is_number() || !std::isfinite(rate->get<double>()) ||
        rate->get<double>() < 0 || rate->get<double>() > 1)
        return "FixedRate is not a number in [0, 1]";
    rule.fixed_rate = rate->get<double>();
    const auto size = r->find("ReservoirSize");
    if (size == r->end() || !size->is_number_integer() || *size < 0 ||
        *size > std::numeric_limits<uint32_t>::max())
        return "ReservoirSize is not a non-negative integer";
    rule.reservoir_size = size->get<uint32_t>();
    if (!read_string(*r, "ServiceName", rule.service_name) ||
        !read_string(*r, "ServiceType", rule.service_type) || !read_string(*r, "Host", rule.host) ||
        !read_string(*r, "HTTPMethod", rule.http_method) ||
        !read_string(*r, "URLPath", rule.url_path))
        return "ServiceName, ServiceType, Host, HTTPMethod and URLPath must be strings";
    return {};
}

std::optional<int64_t> epoch_seconds(const json& o, const char* field) {
    const auto it = o.find(field);
    if (it == o.end() || !it->is_number()) return std::nullopt;
    const double v = it->get<double>();
    if (!std::isfinite(v) || v < 0 || v > 4e12) return std::nullopt;
    return static_cast<int64_t>(std::floor(v));
}

Result<TargetDocument> read_target(const json& d, size_t index) {
    const std::string where = "SamplingTargetDocuments[" + std::to_string(index) + "]";
    if (!d.is_object()) return make_error(where + " is not an object");
    TargetDocument t;
    if (!read_string(d, "RuleName", t.rule_name)) return make_error(where + ": no RuleName");
    const auto rate = d.find("FixedRate");
    if (rate == d.end() || !rate->is_number() || !std::isfinite(rate->get<double>()) ||
        rate->get<double>() < 0 || rate->get<double>() > 1)
        return make_error(where + ": FixedRate is not a number in [0, 1]");
    t.target.fixed_rate = rate->get<double>();
    if (const auto q = d.find("ReservoirQuota"); q != d.end()) {
        if (!q->is_number_integer() || *q < 0 || *q > std::numeric_limits<uint32_t>::max())
            return make_error(where + ": ReservoirQuota is not a non-negative integer");
        t.target.reservoir_quota = q->get<uint32_t>();
    }
    t.target.reservoir_quota_ttl = epoch_seconds(d, "ReservoirQuotaTTL");
    if (const auto i = d.find("Interval");
        i != d.end() && i->is_number_integer() && *i > 0 && *i <= 24 * 3600)
        t.target.interval = i->get<int64_t>();
    return t;
}

}  // namespace

std::string sampling_rules_request(std::string_view next_token) {
    json body = json::object();
    if (!next_token.empty()) body["NextToken"] = std::string(next_token);
    return body.dump();
}

Result<SamplingRulesPage> parse_sampling_rules(std::string_view body) {
    auto doc = parse_object(body, "GetSamplingRules");
    if (!doc) return make_error(doc.error());
    SamplingRulesPage page;
    const auto records = doc->find("SamplingRuleRecords");
    if (records == doc->end() || !records->is_array())
        return make_error("GetSamplingRules: SamplingRuleRecords is not an array");
    for (size_t i = 0; i < records->size(); i++) {
        CentralizedRule rule;
        std::string why = read_record((*records)[i], rule);
        if (why.empty()) {
            page.rules.push_back(std::move(rule));
        } else {
            page.skipped.push_back(
                (rule.name.empty() ? "record " + std::to_string(i) : "rule " + rule.name) + ": " +
                why);
        }
    }
    if (const auto t = doc->find("NextToken"); t != doc->end() && t->is_string())
        page.next_token = t->get<std::string>();
    return page;
}

void sort_rules(std::vector<CentralizedRule>& rules) {
    std::stable_sort(rules.begin(), rules.end(),
                     [](const CentralizedRule& a, const CentralizedRule& b) {
                         if (a.priority != b.priority) return a.priority < b.priority;
                         return a.name < b.name;
                     });
}

Result<SamplingTargetsResponse> parse_sampling_targets(std::string_view body) {
    auto doc = parse_object(body, "GetSamplingTargets");
    if (!doc) return make_error(doc.error());
    SamplingTargetsResponse out;
    out.last_rule_modification = epoch_seconds(*doc, "LastRuleModification");
    if (const auto docs = doc->find("SamplingTargetDocuments"); docs != doc->end()) {
        if (!docs->is_array())
            return make_error("GetSamplingTargets: SamplingTargetDocuments is not an array");
        for (size_t i = 0; i < docs->size(); i++) {
            auto t = read_target((*docs)[i], i);
            if (!t) return make_error("GetSamplingTargets: " + t.error());
            out.targets.push_back(std::move(*t));
        }
    }
    if (const auto un = doc->find("UnprocessedStatistics"); un != doc->end() && un->is_array()) {
        for (const json& u : *un) {
            if (!u.is_object()) continue;
            std::string rule;
            std::string code;
            std::string message;
            read_string(u, "RuleName", rule);
            read_string(u, "ErrorCode", code);
            read_string(u, "Message", message);
            rule.append(": ").append(code).append(" ").append(message);
            out.unprocessed.push_back(std::move(rule));
        }
    }
    return out;
}

std::string sampling_targets_request(const std::vector<StatisticsDocument>& documents) {
    json list = json::array();
    for (const StatisticsDocument& d : documents) {
        list.push_back({{"RuleName", d.rule_name},
                        {"ClientID", d.client_id},
                        {"RequestCount", d.counts.requests},
                        {"SampledCount", d.counts.sampled},
                        {"BorrowCount", d.counts.borrows},
                        {"Timestamp", d.timestamp}});
    }
    return json{{"SamplingStatisticsDocuments", std::move(list)}}.dump();
}

std::string new_client_id() {
    std::random_device device;
    constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                           '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    std::string id;
    id.reserve(24);
    for (int i = 0; i < 12; i++) {
        const auto byte = static_cast<unsigned>(device() & 0xffu);
        id.push_back(kHex[byte >> 4]);
        id.push_back(kHex[byte & 0xfu]);
    }
    return id;
}

}  // namespace passport::sample
