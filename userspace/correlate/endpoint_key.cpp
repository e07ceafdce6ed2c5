#include "userspace/correlate/endpoint_key.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace passport::correlate {

events::Endpoint comparable_endpoint(const events::Endpoint& e) {
    constexpr size_t kMappedPrefix = 10;  // ten zero bytes, then 0xff 0xff, then the IPv4 address
    const auto& a = e.addr;
    const bool mapped =
        e.family == AF_INET6 &&
        std::all_of(a.begin(), a.begin() + kMappedPrefix, [](uint8_t b) { return b == 0; }) &&
        a[10] == 0xff && a[11] == 0xff;
    if (!mapped) return e;
    events::Endpoint out;
    out.family = AF_INET;
    out.port = e.port;
    std::copy(a.begin() + 12, a.end(), out.addr.begin());
    return out;
}

}  // namespace passport::correlate
