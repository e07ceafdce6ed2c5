// Endpoint::ip_string() (declared in userspace/events/event.hpp): printable addresses for
// X-Ray's client_ip and for logs. Lives with the connection table, its main user.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

#include "userspace/events/event.hpp"

namespace passport::events {

std::string Endpoint::ip_string() const {
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (family == AF_INET) {
        if (inet_ntop(AF_INET, addr.data(), text.data(), text.size()) == nullptr) return {};
        return text.data();
    }
    if (family == AF_INET6) {
        // ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket: show it the way users know it.
        constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                           0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), addr.begin())) {
            if (inet_ntop(AF_INET, addr.data() + 12, text.data(), text.size()) == nullptr) {
                return {};
            }
            return text.data();
        }
        if (inet_ntop(AF_INET6, addr.data(), text.data(), text.size()) == nullptr) return {};
        return text.data();
    }
    return {};
}

}  // namespace passport::events
