#include "userspace/export/daemon_address.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace passport::exporter {
namespace {

Error address_error(std::string_view value, std::string_view why) {
    std::string message = "invalid ";
    message += kDaemonAddressVariable;
    message += " \"";
    message += value;
    message += "\": ";
    message += why;
    message += R"( (expected "host:port" or "udp:host:port tcp:host:port"))";
    return make_error(std::move(message));
}

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
           c == '.';
}

// Parses "host:port" or "[v6]:port".
Result<HostPort> parse_host_port(std::string_view whole, std::string_view text) {
    HostPort out;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos) return address_error(whole, "missing ']'");
        const std::string_view host = text.substr(1, close - 1);
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_char) ||
            host.find(':') == std::string_view::npos) {
            return address_error(whole, "invalid IPv6 address");
        }
        if (close + 1 >= text.size() || text[close + 1] != ':') {
            return address_error(whole, "missing port");
        }
        out.host = std::string(host);
        port = text.substr(close + 2);
    } else {
        const size_t colon = text.find(':');
        if (colon == std::string_view::npos) return address_error(whole, "missing port");
        const std::string_view host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.find(':') != std::string_view::npos) {
            return address_error(whole, "too many ':' (IPv6 hosts need brackets)");
        }
        if (host.empty()) return address_error(whole, "missing host");
        if (!std::all_of(host.begin(), host.end(), is_host_char)) {
            return address_error(whole, "invalid host");
        }
        out.host = std::string(host);
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535) {
        return address_error(whole, "port must be a number from 1 to 65535");
    }
    out.port = static_cast<uint16_t>(value);
    return out;
}

}  // namespace

DaemonAddress default_daemon_address() {
    return DaemonAddress{{"127.0.0.1", 2000}, {"127.0.0.1", 2000}};
}

Result<DaemonAddress> parse_daemon_address(std::string_view value) {
    if (value.empty()) return address_error(value, "empty");
    const size_t space = value.find(' ');
    if (space == std::string_view::npos) {
        if (value.starts_with("udp:") || value.starts_with("tcp:")) {
            return address_error(value, "both udp: and tcp: addresses are required");
        }
        auto address = parse_host_port(value, value);
        if (!address) return make_error(address.error());
        return DaemonAddress{*address, *address};
    }

    const std::string_view first = value.substr(0, space);
    const std::string_view second = value.substr(space + 1);
    if (first.empty() || second.empty() || second.find(' ') != std::string_view::npos) {
        return address_error(value, "the two addresses must be separated by exactly one space");
    }
    DaemonAddress out;
    bool have_udp = false;
    bool have_tcp = false;
    for (const std::string_view part : {first, second}) {
        const bool udp = part.starts_with("udp:");
        const bool tcp = part.starts_with("tcp:");
        if (!udp && !tcp) return address_error(value, "each address needs a udp: or tcp: prefix");
        if ((udp && have_udp) || (tcp && have_tcp)) {
            return address_error(value, "both udp: and tcp: addresses are required");
        }
        auto address = parse_host_port(value, part.substr(4));
        if (!address) return make_error(address.error());
        (udp ? out.udp : out.tcp) = std::move(*address);
        (udp ? have_udp : have_tcp) = true;
    }
    return out;
}

Result<DaemonAddress> daemon_address_from_environment() {
    const char* value = std::getenv(std::string(kDaemonAddressVariable).c_str());
    if (value == nullptr || *value == '\0') return default_daemon_address();
    return parse_daemon_address(value);
}

std::string to_string(const HostPort& address) {
    const bool v6 = address.host.find(':') != std::string::npos;
    return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

}  // namespace passport::exporter
