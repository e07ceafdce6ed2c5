#pragma once
// The Go net/http client handoff as userspace sees it: which thread of a Go process was last
// handed the context of the request it writes (events::GoHandoff, from the uprobes of
// bpf/probes/go_http.bpf.c). A call whose injected context is the one its writing thread was
// handed is linked exactly (LinkRule::kGoHandoff), whatever else that thread serves.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "userspace/events/event.hpp"

namespace passport::correlate {

class GoHandoffs {
  public:
    explicit GoHandoffs(size_t max = 65536) : max_(max) {}
    struct Handed {
        events::ConnKey conn;
        uint64_t request_pos = 0;
    };
    void saw(const events::GoHandoff& h);
    // The request the latest handoff to thread (tgid, tid) named, once: the call that thread
    // writes next takes it.
    std::optional<Handed> take(uint32_t tgid, uint32_t tid);
    void forget_process(uint32_t tgid);
    size_t size() const { return last_.size(); }

  private:
    static uint64_t thread_key(uint32_t tgid, uint32_t tid) { return (uint64_t{tgid} << 32) | tid; }
    size_t max_;
    std::unordered_map<uint64_t, Handed> last_;  // thread → its latest handoff
};

}  // namespace passport::correlate
