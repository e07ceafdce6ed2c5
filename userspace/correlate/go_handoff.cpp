#include "userspace/correlate/go_handoff.hpp"

#include <iterator>

namespace passport::correlate {

void GoHandoffs::saw(const events::GoHandoff& h) {
    const uint64_t key = thread_key(h.tgid, h.tid);
    if (h.ctx_conn.tgid == 0) {  // the thread's next call was handed nothing
        last_.erase(key);
        return;
    }
    // Bounded: one entry per thread of the probed Go processes; past `max` it starts over (a
    // link then falls back to the thread rules' doubt until the thread is handed a request again).
    if (last_.size() >= max_ && !last_.count(key)) last_.clear();
    last_[key] = Handed{h.ctx_conn, h.ctx_request_pos};
}

std::optional<GoHandoffs::Handed> GoHandoffs::take(uint32_t tgid, uint32_t tid) {
    auto it = last_.find(thread_key(tgid, tid));
    if (it == last_.end()) return std::nullopt;
    Handed h = it->second;
    last_.erase(it);
    return h;
}

void GoHandoffs::forget_process(uint32_t tgid) {
    for (auto it = last_.begin(); it != last_.end();)
        it = (it->first >> 32) == tgid ? last_.erase(it) : std::next(it);
}

}  // namespace passport::correlate
