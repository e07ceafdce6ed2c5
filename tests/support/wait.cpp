#include "tests/support/wait.hpp"

#include <thread>

namespace passport::testing {

Deadline deadline_in(std::chrono::milliseconds timeout) { return SteadyClock::now() + timeout; }

std::chrono::milliseconds time_left(Deadline deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    return left.count() > 0 ? left : std::chrono::milliseconds(0);
}

bool wait_until(const std::function<bool()>& condition, Deadline deadline,
                std::chrono::milliseconds poll) {
    while (true) {
        if (condition()) return true;
        if (SteadyClock::now() >= deadline) return condition();
        std::this_thread::sleep_for(std::min(poll, time_left(deadline)));
    }
}

double wall_clock_now() {
    auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration<double>(since_epoch).count();
}

}  // namespace passport::testing
