#include "userspace/correlate/go_handoff.hpp"

#include <iterator>

namespace passport::correlate {

void GoHandoffs::saw(const events::GoHandoff& h) {
    const uint64_t key = thread_key(h.tgid, h.tid);
    // Bounded: one entry per thread of the probed Go processes; past `max` it starts over (a
    // link then falls back to the thread rules' doubt until the thread is handed a request again).
    if (last_.size() >= max_ && !last_.count(key)) last_.clear();
    last_[key] = Handed{h.ctx_conn, h.ctx_request_pos};
}

bool GoHandoffs::handed(uint32_t tgid, uint32_t tid, const events::ConnKey& conn,
                        uint64_t request_pos) const {
    auto it = last_.find(thread_key(tgid, tid));
    return it != last_.end() && it->second.conn == conn && it->second.request_pos == request_pos;
}

void GoHandoffs::forget_process(uint32_t tgid) {
    for (auto it = last_.begin(); it != last_.end();)
        it = (it->first >> 32) == tgid ? last_.erase(it) : std::next(it);
}

}  // namespace passport::correlate
