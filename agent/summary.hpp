#pragma once
// The periodic summary line (--summary-interval): what the agent did since the previous line,
// from two snapshots of its counters (kernel drop reasons included as "kernel.<reason>").
#include <cstdint>
#include <map>
#include <string>

namespace passport::agent {

using CounterSnapshot = std::map<std::string, uint64_t, std::less<>>;

// Whether a counter counts something lost (a drop reason): the kernel's drop reasons, records
// the decoder rejected, requests the pairing lost or refused, subsegments dropped, connections
// whose buffered bytes were dropped.
bool is_drop_counter(const std::string& name);

// "summary: 60 s: 1200 requests, 1180 documents sent, 0 failed, 12 dropped (kernel.ringbuf_full
// 10, pairing.lost_requests 2)": requests parsed (served and made), documents sent (UDP and
// --output), documents that failed (send errors, documents too large), drops with the three
// largest reasons.
std::string summary_line(const CounterSnapshot& before, const CounterSnapshot& now, double seconds);

}  // namespace passport::agent
