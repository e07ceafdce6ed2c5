#pragma once
// Deadlines and condition polling for tests that talk to real processes. Tests never sleep for a
// fixed time to "let things settle": they poll a condition until it holds or a deadline passes,
// and report what was seen when it did not. Used from any test thread; no shared state.
#include <chrono>
#include <functional>

namespace passport::testing {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// A deadline `timeout` from now.
Deadline deadline_in(std::chrono::milliseconds timeout);

// Milliseconds left until `deadline`, never negative.
std::chrono::milliseconds time_left(Deadline deadline);

// Calls `condition` every `poll` until it returns true (→ true) or `deadline` passes (→ false).
// The condition is always evaluated at least once, and once more after the deadline, so a
// condition that became true during the last poll interval is not missed.
bool wait_until(const std::function<bool()>& condition, Deadline deadline,
                std::chrono::milliseconds poll = std::chrono::milliseconds(10));

// Wall-clock time as epoch seconds (what X-Ray start_time/end_time use).
double wall_clock_now();

}  // namespace passport::testing
