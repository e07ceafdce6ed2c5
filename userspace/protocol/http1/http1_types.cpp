#include "userspace/protocol/http1/http1_types.hpp"

#include "userspace/common/text.hpp"

namespace passport::protocol::http1 {

const std::string* find_header(const Headers& headers, std::string_view name) {
    for (const auto& header : headers) {
        if (text::iequals(header.first, name)) return &header.second;
    }
    return nullptr;
}

}  // namespace passport::protocol::http1
