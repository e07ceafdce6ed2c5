#pragma once
// Field checks for X-Ray segment documents (AWS X-Ray Developer Guide, "AWS X-Ray segment
// documents"), shared by every e2e test. They return ::testing::AssertionResult so a failure names
// the field, what arrived and the whole document: EXPECT_TRUE(is_valid_segment(doc)).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace passport::testing {

// The incoming header used across tests and its parts.
inline constexpr std::string_view kIncomingRoot = "1-5759e988-bd862e3fe1be46a994272793";
inline constexpr std::string_view kIncomingParent = "53995c3f42cd8ad8";
inline constexpr std::string_view kIncomingTraceHeader =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

bool is_segment_id(std::string_view text);  // 16 lower-case hex digits
bool is_trace_id(std::string_view text);    // 1-[0-9a-f]{8}-[0-9a-f]{24}
// The epoch seconds in a trace id, or nullopt when it is not a trace id.
std::optional<uint32_t> trace_id_epoch(std::string_view trace_id);

// Every document field the schema requires of a complete segment: string `name` (1–200
// characters), `id`, `trace_id`, numeric start_time ≤ end_time, no `in_progress`, a
// well-formed `parent_id` when present, aws.xray.sdk == "Passport", and flags that are booleans.
::testing::AssertionResult is_valid_segment(const nlohmann::json& doc);

// start_time/end_time inside [started_at − slack, finished_at + slack].
::testing::AssertionResult times_within(const nlohmann::json& doc, double started_at,
                                        double finished_at, double slack = 0.05);

// A trace started by the agent: well-formed, no parent_id, epoch prefix inside the window
// (± 1 s, the prefix is whole seconds).
::testing::AssertionResult is_new_trace(const nlohmann::json& doc, double started_at,
                                        double finished_at);

// Continues the incoming header: trace_id == root, parent_id == parent.
::testing::AssertionResult continues_trace(const nlohmann::json& doc, std::string_view root,
                                           std::string_view parent);

// error/throttle/fault exactly as the status implies (absent counts as false):
// 4xx → error; 429 → error + throttle; 5xx → fault; otherwise none.
::testing::AssertionResult has_status_flags(const nlohmann::json& doc, int status);

// http.request.method/url and http.response.status (and content_length when given).
::testing::AssertionResult has_http(const nlohmann::json& doc, std::string_view method,
                                    std::string_view url, int status,
                                    std::optional<uint64_t> content_length = std::nullopt);

// Reads a nested field ("http.request.url"); null when absent.
nlohmann::json field(const nlohmann::json& doc, std::string_view dotted_path);

// Predicates for UdpCollector::wait_for.
bool url_ends_with(const nlohmann::json& doc, std::string_view suffix);
bool url_contains(const nlohmann::json& doc, std::string_view part);

// Documents whose http.request.url contains `part` / ends with `suffix`.
std::vector<nlohmann::json> with_url_containing(const std::vector<nlohmann::json>& docs,
                                                std::string_view part);
std::vector<nlohmann::json> with_url_ending(const std::vector<nlohmann::json>& docs,
                                            std::string_view suffix);

// Short text of a document for failure messages.
std::string brief(const nlohmann::json& doc);

}  // namespace passport::testing
