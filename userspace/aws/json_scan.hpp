#pragma once
// A bounded, allocation-light look at the top level of a JSON object: which members it has, the
// scalar values, the member names of nested objects and the element counts of arrays. Built for
// AWS JSON-protocol bodies, of which Passport only ever holds a prefix (aws::kBodyPrefixBytes):
// a body cut short yields the members that ended before the cut, the cut member marked
// incomplete, and never an error. Malformed input stops the scan where it breaks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace passport::aws {

enum class JsonKind : uint8_t { kString, kNumber, kBool, kNull, kObject, kArray };

struct JsonMember {
    std::string name;
    JsonKind kind = JsonKind::kNull;
    std::string_view raw;           // the value's text (complete values only; views the body)
    std::string text;               // kString: the decoded value (at most kMaxJsonString bytes)
    std::vector<std::string> keys;  // kObject: its own member names in order (at most kMaxJsonKeys)
    size_t count = 0;               // kArray: elements seen
    bool complete = false;          // the value ended inside the scanned text
};

inline constexpr size_t kMaxJsonMembers = 64;
inline constexpr size_t kMaxJsonKeys = 100;
inline constexpr size_t kMaxJsonString = 2048;
inline constexpr int kMaxJsonDepth = 32;

// Top-level members of `body` if it starts (after white space) with an object; else none.
std::vector<JsonMember> scan_json_object(std::string_view body);

// The member named `name`, or nullptr.
const JsonMember* find_member(const std::vector<JsonMember>& members, std::string_view name);

}  // namespace passport::aws
