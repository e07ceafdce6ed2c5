#pragma once
// The Go net/http client handoff as userspace sees it: which thread of a Go process was last
// handed the context of the request it writes (events::GoHandoff, from the uprobes of
// bpf/probes/go_http.bpf.c). A call whose injected context is the one its writing thread was
// handed is linked exactly (LinkRule::kGoHandoff), whatever else that thread serves.
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "userspace/events/event.hpp"

namespace passport::correlate {

class GoHandoffs {
  public:
    explicit GoHandoffs(size_t max = 65536) : max_(max) {}
    void saw(const events::GoHandoff& h);
    // Whether the latest handoff to thread (tgid, tid) named the request (conn, request_pos).
    bool handed(uint32_t tgid, uint32_t tid, const events::ConnKey& conn,
                uint64_t request_pos) const;
    void forget_process(uint32_t tgid);
    size_t size() const { return last_.size(); }

  private:
    struct Handed {
        events::ConnKey conn;
        uint64_t request_pos = 0;
    };
    static uint64_t thread_key(uint32_t tgid, uint32_t tid) { return (uint64_t{tgid} << 32) | tid; }
    size_t max_;
    std::unordered_map<uint64_t, Handed> last_;  // thread → its latest handoff
};

}  // namespace passport::correlate
