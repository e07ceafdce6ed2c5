// Endpoint::ip_string() (declared in userspace/events/event.hpp): printable addresses for
// X-Ray's client_ip and for logs. Lives with the connection table, its main user.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>

#include "userspace/events/event.hpp"

namespace passport::events {
namespace {

// Dotted quad, as inet_ntop writes it. Called for every document (client_ip, connection
// metadata); inet_ntop formats IPv4 through sprintf, several times the cost.
std::string ipv4_text(const uint8_t* a) {
    std::string out;
    out.reserve(15);
    for (int i = 0; i < 4; i++) {
        if (i) out += '.';
        const unsigned v = a[i];
        if (v >= 100) out += static_cast<char>('0' + v / 100);
        if (v >= 10) out += static_cast<char>('0' + v / 10 % 10);
        out += static_cast<char>('0' + v % 10);
    }
    return out;
}

}  // namespace

std::string Endpoint::ip_string() const {
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (family == AF_INET) return ipv4_text(addr.data());
    if (family == AF_INET6) {
        // ::ffff:a.b.c.d is an IPv4 peer on a dual-stack socket: show it the way users know it.
        constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                           0, 0, 0, 0, 0xff, 0xff};
        if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), addr.begin())) {
            return ipv4_text(addr.data() + 12);
        }
        if (inet_ntop(AF_INET6, addr.data(), text.data(), text.size()) == nullptr) return {};
        return text.data();
    }
    return {};
}

}  // namespace passport::events
