#pragma once
// AWS_XRAY_DAEMON_ADDRESS parsing (its forms: AWS X-Ray Developer Guide, "AWS X-Ray daemon"). The
// agent reads the variable (or its own flag) once at startup; UdpEmitter sends to `udp`, the future
// sampling poller talks HTTP to `tcp`. Accepted forms:
//   host:port                          same address for UDP and TCP
//   udp:host:port tcp:host:port        either order, exactly one space, both required
// Hosts may be names or IPv4; IPv6 is accepted in brackets ("[::1]:2000") as an extension the
// SDKs do not offer. Errors say what was expected.
#include <cstdint>
#include <string>
#include <string_view>

#include "userspace/common/result.hpp"

namespace passport::exporter {

struct HostPort {
    std::string host;  // name, IPv4, or IPv6 without brackets
    uint16_t port = 0;
};

struct DaemonAddress {
    HostPort udp;
    HostPort tcp;
};

inline constexpr std::string_view kDaemonAddressVariable = "AWS_XRAY_DAEMON_ADDRESS";
inline constexpr std::string_view kDefaultDaemonAddress = "127.0.0.1:2000";

DaemonAddress default_daemon_address();

Result<DaemonAddress> parse_daemon_address(std::string_view value);

// The value of the environment variable if set and non-empty, else the default.
Result<DaemonAddress> daemon_address_from_environment();

// "host:port", with brackets around IPv6 hosts.
std::string to_string(const HostPort& address);

}  // namespace passport::exporter
