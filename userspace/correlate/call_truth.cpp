#include "userspace/correlate/call_truth.hpp"

namespace passport::correlate {
namespace {

// 16 hex digits (either case) as a number; nullopt for anything else or all zeros.
std::optional<uint64_t> parse_id(std::string_view hex) {
    if (hex.size() != 16) return std::nullopt;
    uint64_t v = 0;
    for (char c : hex) {
        int d = -1;
        if (c >= '0' && c <= '9') d = c - '0';
        if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        if (d < 0) return std::nullopt;
        v = (v << 4) | static_cast<uint64_t>(d);
    }
    if (v == 0) return std::nullopt;
    return v;
}

}  // namespace

bool response_has_no_body(std::string_view request_method, int status) {
    return request_method == "HEAD" || (status >= 100 && status < 200) || status == 204 ||
           status == 304;
}

std::optional<uint64_t> response_content_length(const pairing::HttpExchange& ex) {
    if (!ex.response) return std::nullopt;
    if (response_has_no_body(ex.request.method, ex.response->status)) return 0;
    if (ex.response->content_length) return ex.response->content_length;
    const bool complete = ex.outcome == pairing::Outcome::kComplete;
    if (complete && ex.response->body_bytes > 0) return ex.response->body_bytes;
    return std::nullopt;
}

uint64_t exchange_start_ns(const pairing::HttpExchange& ex) {
    const bool first_on_opened_conn = ex.role == events::Role::kClient && ex.connect_ns != 0 &&
                                      ex.request_pos == 0 && ex.connect_ns <= ex.request_start_ns;
    return first_on_opened_conn ? ex.connect_ns : ex.request_start_ns;
}

void CalleeParents::note(std::string_view parent_hex) {
    const std::optional<uint64_t> id = parse_id(parent_hex);
    if (!id || !ids_.insert(*id).second) return;
    order_.push_back(*id);
    while (order_.size() > max_) {
        ids_.erase(order_.front());
        order_.pop_front();
    }
}

bool CalleeParents::named(std::string_view subsegment_hex) const {
    const std::optional<uint64_t> id = parse_id(subsegment_hex);
    return id && ids_.count(*id) != 0;
}

}  // namespace passport::correlate
