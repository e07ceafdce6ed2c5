#include "userspace/pipeline/sdk_gate.hpp"

#include <utility>

namespace passport::pipeline {
namespace {

constexpr size_t kMaxSuppressedIds = 4096;

}  // namespace

using State = correlate::SdkDetector::State;

SdkGate::SdkGate(correlate::SdkDetector& detector, bool suppress, Counters& counters,
                 SegmentOut out, SubsegmentOut sub_out, size_t max_held)
    : detector_(detector),
      suppress_(suppress),
      counters_(counters),
      out_(std::move(out)),
      sub_out_(std::move(sub_out)),
      max_held_(max_held) {}

void SdkGate::server_segment(uint32_t tgid, uint64_t ns, xray::Segment&& s) {
    const State state = detector_.on_server_exchange(tgid, ns);
    if (state == State::kSdk) {
        if (!suppress_) {
            counters_.add("correlate.sdk_segments_kept");
            out_(std::move(s));
            return;
        }
        counters_.add("correlate.sdk_segments_suppressed");
        counters_.add("correlate.sdk_subsegments_suppressed", s.subsegments.size());
        remember_suppressed(s.id);
        return;
    }
    if (state == State::kPlain || !suppress_) {
        if (held_per_tgid_.count(tgid)) take(tgid, /*send_them=*/true);  // keep their order
        out_(std::move(s));
        return;
    }
    counters_.add("correlate.sdk_segments_held");
    held_.push_back(Held{tgid, std::move(s), {}});
    held_per_tgid_[tgid]++;
    while (held_.size() > max_held_) {
        counters_.add("correlate.sdk_hold_overflow");  // sent before the detector could decide
        Held h = std::move(held_.front());
        held_.pop_front();
        if (--held_per_tgid_[h.tgid] == 0) held_per_tgid_.erase(h.tgid);
        send(std::move(h));
    }
}

void SdkGate::subsegment(xray::Subsegment&& sub, const std::string& trace_id,
                         const std::string& parent_id) {
    if (suppressed_ids_.count(parent_id)) {
        counters_.add("correlate.sdk_subsegments_suppressed");
        return;
    }
    for (Held& h : held_) {
        if (h.segment.id == parent_id) {
            h.late.push_back(Late{std::move(sub), trace_id});
            return;
        }
    }
    sub_out_(std::move(sub), trace_id, parent_id);
}

void SdkGate::send(Held&& h) {
    const std::string parent_id = h.segment.id;
    out_(std::move(h.segment));
    for (Late& l : h.late) sub_out_(std::move(l.sub), l.trace_id, parent_id);
}

void SdkGate::drop(Held&& h) {
    counters_.add("correlate.sdk_segments_suppressed");
    counters_.add("correlate.sdk_subsegments_suppressed",
                  h.segment.subsegments.size() + h.late.size());
    remember_suppressed(h.segment.id);
}

void SdkGate::take(uint32_t tgid, bool send_them) {
    std::deque<Held> keep;
    for (Held& h : held_) {
        if (tgid != 0 && h.tgid != tgid) {
            keep.push_back(std::move(h));
            continue;
        }
        if (send_them) {
            send(std::move(h));
        } else {
            drop(std::move(h));
        }
    }
    held_ = std::move(keep);
    if (tgid == 0) {
        held_per_tgid_.clear();
    } else {
        held_per_tgid_.erase(tgid);
    }
}

void SdkGate::on_sdk(uint32_t tgid) {
    if (held_per_tgid_.count(tgid)) take(tgid, /*send_them=*/false);
}

void SdkGate::on_forget(uint32_t tgid) {
    if (held_per_tgid_.count(tgid)) take(tgid, /*send_them=*/true);
}

void SdkGate::tick(uint64_t now_ns) {
    if (held_.empty()) return;
    std::vector<std::pair<uint32_t, State>> decided;
    for (const auto& [tgid, n] : held_per_tgid_) {
        const State st = detector_.state(tgid, now_ns);
        if (st != State::kUnknown) decided.emplace_back(tgid, st);
    }
    for (const auto& [tgid, st] : decided) take(tgid, /*send_them=*/st == State::kPlain);
}

void SdkGate::flush() {
    if (!held_.empty()) take(0, /*send_them=*/true);
}

void SdkGate::remember_suppressed(const std::string& id) {
    if (id.empty() || !suppressed_ids_.insert(id).second) return;
    suppressed_order_.push_back(id);
    while (suppressed_order_.size() > kMaxSuppressedIds) {
        suppressed_ids_.erase(suppressed_order_.front());
        suppressed_order_.pop_front();
    }
}

}  // namespace passport::pipeline
