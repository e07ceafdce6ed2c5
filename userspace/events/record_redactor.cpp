#include "userspace/events/record_redactor.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "userspace/common/text.hpp"

namespace passport::events {
namespace {

constexpr size_t kMaxHead = 128;  // longer header names / parameter names are not looked at
constexpr size_t kMaxStreams = 65536;
constexpr std::array<std::string_view, 6> kHeaders = {
    "authorization", "proxy-authorization",  "cookie",
    "set-cookie",    "x-amz-security-token", "x-api-key"};

bool is_tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_method(const std::string& s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace

void RecordRedactor::forget(const ConnKey& conn) {
    for (Direction dir : {Direction::kIngress, Direction::kEgress}) {
        for (DataSource source : {DataSource::kSocket, DataSource::kTls})
            streams_.erase(Key{conn, dir, source});
    }
}

void RecordRedactor::redact(Data& d) {
    if (streams_.size() >= kMaxStreams) streams_.clear();
    Stream& s = streams_[Key{d.conn, d.direction, d.source}];
    if (s.started && d.pos != s.next_pos && s.mode != Mode::kMaskLine) {
        s.mode = Mode::kSkip;  // a gap: whatever line this is, it was not classified
        s.head.clear();
    }
    s.started = true;
    s.next_pos = d.pos + d.bytes.size();  // an uncaptured tail (len > size) is the next gap
    for (char& c : d.bytes) step(s, c);
}

void RecordRedactor::step(Stream& s, char& c) const {
    if (c == '\n') {
        s.mode = Mode::kLineStart;
        s.head.clear();
        s.in_query = s.in_value = s.mask_value = false;
        return;
    }
    switch (s.mode) {
        case Mode::kSkip:
            return;
        case Mode::kMaskLine:
            if (c != '\r' && c != ' ' && c != '\t') c = '*';
            return;
        case Mode::kTarget:
            target_step(s, c);
            return;
        case Mode::kLineStart:
            classify(s, c);
            return;
    }
}

// The first token of a line decides: "Name:" a header, "METHOD " a request line.
void RecordRedactor::classify(Stream& s, char c) const {
    if (c == ':' && !s.head.empty()) {
        s.mode = sensitive_header(s.head) ? Mode::kMaskLine : Mode::kSkip;
        s.head.clear();
    } else if (c == ' ' && is_method(s.head)) {
        s.mode = Mode::kTarget;
        s.head.clear();
    } else if (is_tchar(c) && s.head.size() < kMaxHead) {
        s.head += c;
    } else {
        s.mode = Mode::kSkip;
        s.head.clear();
    }
}

// Inside a request target: credential query (and fragment) values are masked.
void RecordRedactor::target_step(Stream& s, char& c) const {
    if (c == ' ' || c == '\r') {
        s.mode = Mode::kSkip;
    } else if (!s.in_query) {
        if (c == '?' || c == '#') s.in_query = true;
    } else if (c == '&' || c == ';' || c == '#') {
        s.head.clear();
        s.in_value = s.mask_value = false;
    } else if (s.in_value) {
        if (s.mask_value) c = '*';
    } else if (c == '=') {
        s.in_value = true;
        s.mask_value = redact::is_credential_name(s.head, policy_);
    } else if (s.head.size() < kMaxHead) {
        s.head += c;
    }
}

bool RecordRedactor::sensitive_header(const std::string& name) const {
    const std::string lower = text::to_lower(name);
    if (std::find(kHeaders.begin(), kHeaders.end(), lower) != kHeaders.end()) return true;
    if (lower.rfind("x-amz-", 0) == 0) return false;
    return redact::is_credential_name(name, redact::Policy{true, {}});
}

}  // namespace passport::events
