#pragma once
// EventBuilder: hand-built kernel events for one connection, as the BPF side would report them,
// so stream/protocol/pairing tests (and anything downstream) can run without a kernel.
// It tracks the stream position of each direction, so consecutive read()/write() calls produce
// contiguous chunks; like the kernel, a syscall copies at most PP_MAX_CHUNK bytes (the rest of
// Data.len is a gap) unless told otherwise. Timestamps are whatever the test passes.
//
// Test-only; not thread-safe.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/events/event.hpp"

namespace passport::testing {

// 10.0.0.1:8080 (local) and 10.0.0.2:43210 (remote) unless changed.
events::Endpoint ipv4_endpoint(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port);

class EventBuilder {
  public:
    static constexpr uint32_t kDefaultTgid = 4242;
    static constexpr int32_t kDefaultFd = 7;
    static constexpr uint64_t kDefaultGen = 1000;
    static constexpr uint32_t kDefaultTid = 4243;
    static constexpr size_t kCaptureLimit = 4096;  // PP_MAX_CHUNK

    explicit EventBuilder(events::Role role = events::Role::kServer,
                          events::ConnKey key = {kDefaultTgid, kDefaultFd, kDefaultGen});

    const events::ConnKey& key() const { return key_; }
    events::Role role() const { return role_; }
    // Role stamped on Data events (the kernel's knowledge); kUnknown for pre-existing sockets.
    void set_role(events::Role role) { role_ = role; }
    // Thread used when a call passes tid = 0.
    void set_tid(uint32_t tid) { tid_ = tid; }
    void set_endpoints(const events::Endpoint& local, const events::Endpoint& remote);
    // Next stream position of a direction (to join a stream mid-way, or replay a position).
    uint64_t position(events::Direction dir) const;
    void set_position(events::Direction dir, uint64_t pos);

    events::ConnOpen open(uint64_t ts_ns, uint32_t tid = 0) const;

    // One syscall that moved all of `bytes` (captured up to kCaptureLimit).
    events::Data read(std::string_view bytes, uint64_t enter_ns, uint64_t exit_ns,
                      uint32_t tid = 0);
    events::Data write(std::string_view bytes, uint64_t enter_ns, uint64_t exit_ns,
                       uint32_t tid = 0);
    // One syscall that moved `len` bytes of which only the first `captured` were copied
    // (captured.size() <= len). The uncaptured rest is a gap.
    events::Data read_partial(std::string_view captured, uint32_t len, uint64_t enter_ns,
                              uint64_t exit_ns, uint32_t tid = 0);
    events::Data write_partial(std::string_view captured, uint32_t len, uint64_t enter_ns,
                               uint64_t exit_ns, uint32_t tid = 0);

    // `bytes` moved by several syscalls, split at the given offsets (ascending, within bytes).
    // Syscall i enters at start_ns + i * step_ns and exits step_ns / 2 later.
    std::vector<events::Data> reads(std::string_view bytes, const std::vector<size_t>& splits,
                                    uint64_t start_ns, uint64_t step_ns, uint32_t tid = 0);
    std::vector<events::Data> writes(std::string_view bytes, const std::vector<size_t>& splits,
                                     uint64_t start_ns, uint64_t step_ns, uint32_t tid = 0);

    events::ConnClose close(uint64_t ts_ns, uint32_t tid = 0) const;
    events::ProcExit exit(uint64_t ts_ns, int32_t exit_code = 0) const;

  private:
    events::Data data(events::Direction dir, std::string_view captured, uint64_t len,
                      uint64_t enter_ns, uint64_t exit_ns, uint32_t tid);
    std::vector<events::Data> split(events::Direction dir, std::string_view bytes,
                                    const std::vector<size_t>& splits, uint64_t start_ns,
                                    uint64_t step_ns, uint32_t tid);

    events::ConnKey key_;
    events::Role role_;
    uint32_t tid_ = kDefaultTid;
    events::Endpoint local_;
    events::Endpoint remote_;
    uint64_t pos_[2] = {0, 0};
};

// Feeds events to anything with on_event(const events::Event&).
template <typename Sink, typename Events>
void feed(Sink& sink, const Events& events) {
    for (const auto& e : events) sink.on_event(e);
}

}  // namespace passport::testing
