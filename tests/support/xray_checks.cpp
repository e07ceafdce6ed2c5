#include "tests/support/xray_checks.hpp"

#include <cmath>
#include <regex>

namespace passport::testing {
namespace {

using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

bool all_hex(std::string_view text) {
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

bool flag(const nlohmann::json& doc, const char* name) {
    auto it = doc.find(name);
    return it != doc.end() && it->is_boolean() && it->get<bool>();
}

AssertionResult fail(const nlohmann::json& doc, const std::string& what) {
    return AssertionFailure() << what << "\n  document: " << brief(doc);
}

}  // namespace

std::string brief(const nlohmann::json& doc) {
    std::string text = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return text.size() > 1500 ? text.substr(0, 1500) + "…" : text;
}

bool is_segment_id(std::string_view text) { return text.size() == 16 && all_hex(text); }

bool is_trace_id(std::string_view text) {
    return text.size() == 35 && text.substr(0, 2) == "1-" && text[10] == '-' &&
           all_hex(text.substr(2, 8)) && all_hex(text.substr(11));
}

std::optional<uint32_t> trace_id_epoch(std::string_view trace_id) {
    if (!is_trace_id(trace_id)) return std::nullopt;
    return static_cast<uint32_t>(std::stoul(std::string(trace_id.substr(2, 8)), nullptr, 16));
}

nlohmann::json field(const nlohmann::json& doc, std::string_view dotted_path) {
    const nlohmann::json* node = &doc;
    size_t start = 0;
    while (start <= dotted_path.size()) {
        size_t dot = dotted_path.find('.', start);
        std::string key(dotted_path.substr(
            start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
        if (!node->is_object()) return nullptr;
        auto it = node->find(key);
        if (it == node->end()) return nullptr;
        node = &*it;
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return *node;
}

AssertionResult is_valid_segment(const nlohmann::json& doc) {
    if (!doc.is_object()) return fail(doc, "document is not an object");
    auto name = field(doc, "name");
    if (!name.is_string()) return fail(doc, "name missing or not a string");
    auto name_text = name.get<std::string>();
    if (name_text.empty() || name_text.size() > 200) {
        return fail(doc, "name length " + std::to_string(name_text.size()) + " not in 1..200");
    }
    auto id = field(doc, "id");
    if (!id.is_string() || !is_segment_id(id.get<std::string>())) {
        return fail(doc, "id is not 16 lower-case hex digits: " + id.dump());
    }
    auto trace_id = field(doc, "trace_id");
    if (!trace_id.is_string() || !is_trace_id(trace_id.get<std::string>())) {
        return fail(doc, "trace_id is not 1-<8 hex>-<24 hex>: " + trace_id.dump());
    }
    auto parent = field(doc, "parent_id");
    if (!parent.is_null() && (!parent.is_string() || !is_segment_id(parent.get<std::string>()))) {
        return fail(doc, "parent_id present but not 16 hex digits: " + parent.dump());
    }
    auto start = field(doc, "start_time");
    auto end = field(doc, "end_time");
    if (!start.is_number() || !end.is_number()) {
        return fail(
            doc, "start_time/end_time missing or not numbers: " + start.dump() + ", " + end.dump());
    }
    if (start.get<double>() > end.get<double>()) {
        return fail(doc, "start_time > end_time");
    }
    if (doc.contains("in_progress")) return fail(doc, "complete segment carries in_progress");
    if (doc.contains("type")) return fail(doc, "segment carries `type` (subsegments only)");
    for (const char* name_of_flag : {"error", "throttle", "fault"}) {
        if (doc.contains(name_of_flag) && !doc[name_of_flag].is_boolean()) {
            return fail(doc, std::string(name_of_flag) + " is not a boolean");
        }
    }
    auto sdk = field(doc, "aws.xray.sdk");
    if (sdk != "Passport")
        return fail(doc, "aws.xray.sdk is " + sdk.dump() + ", want \"Passport\"");
    return AssertionSuccess();
}

AssertionResult times_within(const nlohmann::json& doc, double started_at, double finished_at,
                             double slack) {
    auto start = field(doc, "start_time");
    auto end = field(doc, "end_time");
    if (!start.is_number() || !end.is_number()) return fail(doc, "no start_time/end_time");
    double s = start.get<double>();
    double e = end.get<double>();
    if (s < started_at - slack || e > finished_at + slack || s > e) {
        char text[256];
        std::snprintf(text, sizeof text,
                      "times [%.6f, %.6f] outside the request window [%.6f, %.6f] ± %.3f", s, e,
                      started_at, finished_at, slack);
        return fail(doc, text);
    }
    return AssertionSuccess();
}

AssertionResult is_new_trace(const nlohmann::json& doc, double started_at, double finished_at) {
    auto trace_id = field(doc, "trace_id");
    if (!trace_id.is_string()) return fail(doc, "no trace_id");
    auto epoch = trace_id_epoch(trace_id.get<std::string>());
    if (!epoch) return fail(doc, "malformed trace_id " + trace_id.dump());
    if (*epoch + 1.0 < started_at || *epoch > finished_at + 1.0) {
        return fail(doc, "trace_id epoch prefix " + std::to_string(*epoch) +
                             " is not the time of the request (" + std::to_string(started_at) +
                             ")");
    }
    if (doc.contains("parent_id")) return fail(doc, "a new trace has a parent_id");
    return AssertionSuccess();
}

AssertionResult continues_trace(const nlohmann::json& doc, std::string_view root,
                                std::string_view parent) {
    auto trace_id = field(doc, "trace_id");
    if (trace_id != std::string(root)) {
        return fail(doc,
                    "trace_id is " + trace_id.dump() + ", want the incoming " + std::string(root));
    }
    auto parent_id = field(doc, "parent_id");
    if (parent_id != std::string(parent)) {
        return fail(
            doc, "parent_id is " + parent_id.dump() + ", want the incoming " + std::string(parent));
    }
    return AssertionSuccess();
}

AssertionResult has_status_flags(const nlohmann::json& doc, int status) {
    bool want_error = status >= 400 && status < 500;
    bool want_throttle = status == 429;
    bool want_fault = status >= 500 && status < 600;
    bool error = flag(doc, "error");
    bool throttle = flag(doc, "throttle");
    bool fault = flag(doc, "fault");
    if (error != want_error || throttle != want_throttle || fault != want_fault) {
        return fail(
            doc, "flags for status " + std::to_string(status) + ": error=" + std::to_string(error) +
                     " throttle=" + std::to_string(throttle) + " fault=" + std::to_string(fault) +
                     ", want error=" + std::to_string(want_error) + " throttle=" +
                     std::to_string(want_throttle) + " fault=" + std::to_string(want_fault));
    }
    return AssertionSuccess();
}

AssertionResult has_http(const nlohmann::json& doc, std::string_view method, std::string_view url,
                         int status, std::optional<uint64_t> content_length) {
    auto m = field(doc, "http.request.method");
    if (m != std::string(method)) {
        return fail(doc, "http.request.method is " + m.dump() + ", want " + std::string(method));
    }
    auto u = field(doc, "http.request.url");
    if (u != std::string(url)) {
        return fail(doc, "http.request.url is " + u.dump() + ", want " + std::string(url));
    }
    auto s = field(doc, "http.response.status");
    if (s != status) {
        return fail(doc,
                    "http.response.status is " + s.dump() + ", want " + std::to_string(status));
    }
    if (content_length) {
        auto cl = field(doc, "http.response.content_length");
        if (cl != *content_length) {
            return fail(doc, "http.response.content_length is " + cl.dump() + ", want " +
                                 std::to_string(*content_length));
        }
    }
    return AssertionSuccess();
}

bool url_ends_with(const nlohmann::json& doc, std::string_view suffix) {
    auto url = field(doc, "http.request.url");
    if (!url.is_string()) return false;
    const auto& text = url.get_ref<const std::string&>();
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool url_contains(const nlohmann::json& doc, std::string_view part) {
    auto url = field(doc, "http.request.url");
    return url.is_string() && url.get_ref<const std::string&>().find(part) != std::string::npos;
}

std::vector<nlohmann::json> with_url_containing(const std::vector<nlohmann::json>& docs,
                                                std::string_view part) {
    std::vector<nlohmann::json> out;
    for (const auto& doc : docs) {
        if (url_contains(doc, part)) out.push_back(doc);
    }
    return out;
}

std::vector<nlohmann::json> with_url_ending(const std::vector<nlohmann::json>& docs,
                                            std::string_view suffix) {
    std::vector<nlohmann::json> out;
    for (const auto& doc : docs) {
        if (url_ends_with(doc, suffix)) out.push_back(doc);
    }
    return out;
}

}  // namespace passport::testing
