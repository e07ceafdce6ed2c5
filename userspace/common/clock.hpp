#pragma once
// Kernel timestamps are CLOCK_MONOTONIC; X-Ray wants epoch seconds. ClockOffset keeps
// offset = CLOCK_REALTIME - CLOCK_MONOTONIC, measured with the narrowest bracketing read, and is
// refreshed periodically by the agent (NTP slews the wall clock). Tests set the offset directly.
#include <time.h>

#include <cstdint>

namespace passport {

inline uint64_t monotonic_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t realtime_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

class ClockOffset {
  public:
    ClockOffset() { refresh(); }
    explicit ClockOffset(int64_t offset_ns) : offset_ns_(offset_ns) {}

    void refresh() {
        // Take the reading whose monotonic bracket is narrowest, to keep scheduling noise out.
        int64_t best_gap = INT64_MAX;
        for (int i = 0; i < 5; i++) {
            uint64_t m1 = monotonic_now_ns();
            uint64_t r = realtime_now_ns();
            uint64_t m2 = monotonic_now_ns();
            const auto gap = static_cast<int64_t>(m2 - m1);
            if (gap < best_gap) {
                best_gap = gap;
                offset_ns_ = static_cast<int64_t>(r) - static_cast<int64_t>(m1 + (m2 - m1) / 2);
            }
        }
    }
    int64_t offset_ns() const { return offset_ns_; }
    uint64_t to_epoch_ns(uint64_t monotonic_ns) const {
        return static_cast<uint64_t>(static_cast<int64_t>(monotonic_ns) + offset_ns_);
    }
    // Epoch seconds with microsecond resolution, as X-Ray documents carry them.
    double to_epoch_seconds(uint64_t monotonic_ns) const {
        const uint64_t us = to_epoch_ns(monotonic_ns) / 1000;
        const uint64_t whole_seconds = us / 1000000;  // split so the double keeps every microsecond
        return static_cast<double>(whole_seconds) + static_cast<double>(us % 1000000) / 1e6;
    }

  private:
    int64_t offset_ns_ = 0;
};

}  // namespace passport
