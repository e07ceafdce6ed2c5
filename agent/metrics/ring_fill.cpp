#include "agent/metrics/ring_fill.hpp"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace passport::agent::metrics {

Result<RingFillReader> RingFillReader::open(int map_fd) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(map_fd, &info, &len) != 0)
        return make_error(std::string("ring buffer info: ") + std::strerror(errno));
    RingFillReader r;
    r.page_size_ = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    r.size_ = info.max_entries;
    // Page 0 holds the consumer position, page 1 the producer position; the kernel allows a
    // read-only mapping of both.
    void* p = ::mmap(nullptr, 2 * r.page_size_, PROT_READ, MAP_SHARED, map_fd, 0);
    if (p == MAP_FAILED)
        return make_error(std::string("ring buffer mmap: ") + std::strerror(errno));
    r.pages_ = p;
    return r;
}

RingFillReader::RingFillReader(RingFillReader&& o) noexcept
    : pages_(std::exchange(o.pages_, nullptr)), page_size_(o.page_size_), size_(o.size_) {}

RingFillReader& RingFillReader::operator=(RingFillReader&& o) noexcept {
    if (this != &o) {
        if (pages_) ::munmap(pages_, 2 * page_size_);
        pages_ = std::exchange(o.pages_, nullptr);
        page_size_ = o.page_size_;
        size_ = o.size_;
    }
    return *this;
}

RingFillReader::~RingFillReader() {
    if (pages_) ::munmap(pages_, 2 * page_size_);
}

RingFill RingFillReader::read() const {
    if (!pages_) return {};
    const auto* base = static_cast<const unsigned char*>(pages_);
    const auto* consumer = reinterpret_cast<const uint64_t*>(base);
    const auto* producer = reinterpret_cast<const uint64_t*>(base + page_size_);
    const uint64_t cons = __atomic_load_n(consumer, __ATOMIC_ACQUIRE);
    const uint64_t prod = __atomic_load_n(producer, __ATOMIC_ACQUIRE);
    RingFill f;
    f.known = true;
    f.size_bytes = size_;
    f.used_bytes = prod >= cons ? prod - cons : 0;
    return f;
}

}  // namespace passport::agent::metrics
