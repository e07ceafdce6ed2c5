#pragma once
// `passport demo`: the README's first command ends here. Starts two unmodified services on
// loopback (a Python storefront calling a Node inventory service), traces them with the real
// probes, drives requests with a client, and prints what X-Ray would show: a per-service table
// and one trace's waterfall. Documents also go to a daemon when one is configured.
#include "agent/config.hpp"

namespace passport::agent {

int run_demo(Config cfg, const char* argv0);

}  // namespace passport::agent
