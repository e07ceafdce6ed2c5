#include "userspace/correlate/keys.hpp"

#include "userspace/correlate/endpoint_key.hpp"

#include <cstring>

namespace passport::correlate {

TupleKey tuple_of(const events::Endpoint& local, const events::Endpoint& remote) {
    // IPv4-mapped IPv6 as IPv4: a dual-stack server's side of an IPv4 connection matches its
    // caller's (endpoint_key.hpp).
    const events::Endpoint l = comparable_endpoint(local);
    const events::Endpoint r = comparable_endpoint(remote);
    TupleKey k;
    k.local_addr = l.addr;
    k.remote_addr = r.addr;
    k.local_port = l.port;
    k.remote_port = r.port;
    return k;
}

size_t TupleKeyHash::operator()(const TupleKey& k) const {
    size_t h = (size_t{k.local_port} << 16) | k.remote_port;
    for (const auto* addr : {&k.local_addr, &k.remote_addr}) {
        uint64_t lo = 0;
        uint64_t hi = 0;
        std::memcpy(&lo, addr->data(), sizeof lo);
        std::memcpy(&hi, addr->data() + sizeof lo, sizeof hi);
        h = hash_mix(hash_mix(h, lo), hi);
    }
    return h;
}

std::string hex16(uint64_t v) {
    static constexpr std::string_view kDigits = "0123456789abcdef";
    std::string out(16, '0');
    for (size_t i = 16; i-- > 0; v >>= 4) out[i] = kDigits[v & 15];
    return out;
}

std::optional<uint64_t> parse_hex16(std::string_view hex) {
    if (hex.size() != 16) return std::nullopt;
    uint64_t v = 0;
    for (char c : hex) {
        uint64_t d = 0;
        if (c >= '0' && c <= '9') {
            d = static_cast<uint64_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = static_cast<uint64_t>(c - 'a') + 10;
        } else {
            return std::nullopt;
        }
        v = (v << 4) | d;
    }
    return v;
}

}  // namespace passport::correlate
