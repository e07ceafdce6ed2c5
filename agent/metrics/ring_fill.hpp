#pragma once
// RingFillReader: how full the kernel-to-agent ring buffer is. libbpf 1.1 has no
// ring__avail_data_size(), so this maps the map's consumer and producer position pages read-only
// (the layout the kernel documents for BPF_MAP_TYPE_RINGBUF user-space consumers:
// https://docs.kernel.org/bpf/ringbuf.html) and reads the two positions.
#include <cstdint>

#include "agent/metrics/agent_metrics.hpp"
#include "userspace/common/result.hpp"

namespace passport::agent::metrics {

class RingFillReader {
  public:
    // map_fd: the BPF_MAP_TYPE_RINGBUF map; the reader keeps its own mapping, not the fd.
    static Result<RingFillReader> open(int map_fd);
    RingFillReader(RingFillReader&& o) noexcept;
    RingFillReader& operator=(RingFillReader&& o) noexcept;
    RingFillReader(const RingFillReader&) = delete;
    RingFillReader& operator=(const RingFillReader&) = delete;
    ~RingFillReader();

    RingFill read() const;

  private:
    RingFillReader() = default;
    void* pages_ = nullptr;  // consumer page, then producer page
    uint64_t page_size_ = 0;
    uint64_t size_ = 0;
};

}  // namespace passport::agent::metrics
