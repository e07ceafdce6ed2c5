#include "userspace/protocol/http1/http1_types.hpp"

namespace passport::protocol::http1 {

namespace {
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
}  // namespace

const std::string* find_header(const Headers& headers, std::string_view name) {
    for (const auto& header : headers) {
        const std::string& n = header.first;
        if (n.size() != name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < n.size() && same; ++i) same = lower(n[i]) == lower(name[i]);
        if (same) return &header.second;
    }
    return nullptr;
}

}  // namespace passport::protocol::http1
