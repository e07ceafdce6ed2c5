#pragma once
// The processes visible in /proc, for the scans that look at every process (selection by
// executable, TLS library discovery).
#include <cstdint>
#include <vector>

namespace passport::agent {

// Every numeric entry of /proc, in directory order; empty when /proc cannot be read.
std::vector<uint32_t> list_pids();

}  // namespace passport::agent
