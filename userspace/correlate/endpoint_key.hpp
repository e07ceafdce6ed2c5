#pragma once
// Endpoints as connection tuples are compared (same-node stitching, injection reports): a
// dual-stack listener (Go's net.Listen(":port"), Java, nginx `listen [::]:80 ipv6only=off`) sees
// an IPv4 peer as IPv4-mapped IPv6 (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2) while the peer's
// own socket is IPv4: both ends must compare equal.
#include "userspace/events/event.hpp"

namespace passport::correlate {

// `e` with an IPv4-mapped IPv6 address rewritten as the IPv4 endpoint it carries (family
// AF_INET, address in addr[0..3], the rest zero, port kept); any other endpoint unchanged.
events::Endpoint comparable_endpoint(const events::Endpoint& e);

}  // namespace passport::correlate
