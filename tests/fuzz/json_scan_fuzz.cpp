// libFuzzer target: the bounded JSON scanner (userspace/aws/json_scan.*) that reads AWS
// JSON-protocol body prefixes. Checked: the documented bounds hold, raw values are views into
// the body, and a prefix of the body never yields a complete member the whole body lacks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "userspace/aws/json_scan.hpp"

namespace {

using namespace passport::aws;

void check(bool ok) {
    if (!ok) std::abort();
}

void check_bounds(std::string_view body, const std::vector<JsonMember>& members) {
    check(members.size() <= kMaxJsonMembers);
    for (const auto& m : members) {
        check(m.text.size() <= kMaxJsonString);
        check(m.keys.size() <= kMaxJsonKeys);
        if (!m.raw.empty()) {
            check(m.raw.data() >= body.data() &&
                  m.raw.data() + m.raw.size() <= body.data() + body.size());
        }
        if (m.kind != JsonKind::kString) check(m.text.empty());
        if (m.kind != JsonKind::kObject) check(m.keys.empty());
        (void)find_member(members, m.name);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const auto members = scan_json_object(body);
    check_bounds(body, members);

    // A body cut short (as kept prefixes are): members that completed there complete here too,
    // with the same value.
    const std::string_view prefix = body.substr(0, body.size() / 2);
    const auto cut = scan_json_object(prefix);
    check_bounds(prefix, cut);
    for (size_t i = 0; i < cut.size(); ++i) {
        if (!cut[i].complete) continue;
        check(i < members.size() && members[i].name == cut[i].name && members[i].complete);
        check(members[i].raw == cut[i].raw && members[i].text == cut[i].text);
    }
    return 0;
}
