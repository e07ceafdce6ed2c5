#pragma once
// SdkGate: the server segments of processes that report to X-Ray themselves
// (correlate::SdkDetector) are not sent: the SDK's segment is the one in the trace (docs/sdk.md).
// The SDK's datagram usually leaves just after the response Passport has already turned into a
// segment, so the segments of a process the detector does not know yet are held until it
// decides: sent when the process turns out plain (or execs, exits, or the agent stops), dropped
// when it turns out to have an SDK. Independent subsegments under a held segment wait with it;
// under a dropped one they are dropped too. With suppression off (--sdk-segments keep) the
// gate only counts. Bounded: past max_held, the oldest held segment is sent at once.
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/correlate/sdk_detector.hpp"
#include "userspace/xray/segment.hpp"

namespace passport::pipeline {

class SdkGate {
  public:
    using SegmentOut = std::function<void(xray::Segment&&)>;
    using SubsegmentOut = std::function<void(xray::Subsegment&&, const std::string& trace_id,
                                             const std::string& parent_id)>;

    SdkGate(correlate::SdkDetector& detector, bool suppress, Counters& counters, SegmentOut out,
            SubsegmentOut sub_out, size_t max_held = 1024);

    // A server segment of process `tgid` whose exchange ended at `ns` (CLOCK_MONOTONIC).
    void server_segment(uint32_t tgid, uint64_t ns, xray::Segment&& s);
    // An independent subsegment (its parent segment already finished).
    void subsegment(xray::Subsegment&& sub, const std::string& trace_id,
                    const std::string& parent_id);
    // The detector found an SDK in the process: its held segments are dropped.
    void on_sdk(uint32_t tgid);
    // The process exec'd or exited: whatever it still holds is sent.
    void on_forget(uint32_t tgid);
    // Sends what processes whose watch ended by `now_ns` hold.
    void tick(uint64_t now_ns);
    // The agent stops: everything held is sent.
    void flush();
    size_t held() const { return held_.size(); }

  private:
    struct Late {
        xray::Subsegment sub;
        std::string trace_id;
    };
    struct Held {
        uint32_t tgid = 0;
        xray::Segment segment;
        std::vector<Late> late;
    };
    void send(Held&& h);
    void drop(Held&& h);
    // The held segments of `tgid` (of every process when tgid is 0) are taken out, in order, and
    // sent (send_them) or dropped.
    void take(uint32_t tgid, bool send_them);
    void remember_suppressed(const std::string& id);

    correlate::SdkDetector& detector_;
    bool suppress_;
    Counters& counters_;
    SegmentOut out_;
    SubsegmentOut sub_out_;
    size_t max_held_;
    std::deque<Held> held_;
    std::unordered_map<uint32_t, size_t> held_per_tgid_;
    // Ids of segments not sent (bounded), so late subsegments under them are not sent either.
    std::unordered_set<std::string> suppressed_ids_;
    std::deque<std::string> suppressed_order_;
};

}  // namespace passport::pipeline
