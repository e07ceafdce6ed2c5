#include "userspace/correlate/sdk_detector.hpp"

#include <algorithm>
#include <functional>
#include <string_view>

namespace passport::correlate {
namespace {

const std::string* trace_header_of(const pairing::HttpRequestSeen& seen) {
    return seen.request ? protocol::http1::find_header(seen.request->headers, "X-Amzn-Trace-Id")
                        : nullptr;
}

}  // namespace

SdkDetector::SdkDetector(Counters& counters, SdkDetectorConfig cfg)
    : cfg_(cfg), counters_(counters) {}

SdkDetector::Proc* SdkDetector::proc(uint32_t tgid) {
    auto it = procs_.find(tgid);
    if (it != procs_.end()) return &it->second;
    if (procs_.size() >= cfg_.max_processes) {
        counters_.add("correlate.sdk_detector_full");
        return nullptr;
    }
    return &procs_[tgid];
}

bool SdkDetector::mark_sdk(uint32_t tgid, std::string_view signal_counter) {
    Proc* p = proc(tgid);
    if (!p || p->state == State::kSdk) return false;
    p->state = State::kSdk;
    p->received = {};  // no longer needed
    counters_.add("correlate.sdk_processes");
    counters_.add(signal_counter);
    return true;
}

bool SdkDetector::on_datagram(const events::SdkDatagram& d) {
    return mark_sdk(d.tgid, "correlate.sdk_by_datagram");
}

void SdkDetector::remember_received(Proc& p, uint64_t hash) const {
    if (cfg_.headers_per_process == 0) return;
    if (p.received.size() < cfg_.headers_per_process) {
        p.received.push_back(hash);
        return;
    }
    p.received[p.next] = hash;
    p.next = (p.next + 1) % p.received.size();
}

bool SdkDetector::on_request_seen(const pairing::HttpRequestSeen& seen) {
    const std::string* header = trace_header_of(seen);
    if (!header) return false;
    auto existing = procs_.find(seen.tgid);
    if (existing != procs_.end() && existing->second.state == State::kSdk) return false;
    const uint64_t hash = std::hash<std::string_view>{}(*header);
    if (seen.role != events::Role::kClient) {
        if (Proc* p = proc(seen.tgid)) remember_received(*p, hash);
        return false;
    }
    if (existing != procs_.end()) {
        const auto& got = existing->second.received;
        if (std::find(got.begin(), got.end(), hash) != got.end()) {
            counters_.add("correlate.sdk_headers_forwarded");  // a proxy's, not a tracer's
            return false;
        }
    }
    return mark_sdk(seen.tgid, "correlate.sdk_by_header");
}

SdkDetector::State SdkDetector::on_server_exchange(uint32_t tgid, uint64_t ns) {
    Proc* p = proc(tgid);
    if (!p) return State::kPlain;
    if (p->state == State::kUnknown && p->first_exchange_ns == 0) p->first_exchange_ns = ns;
    return state(tgid, ns);
}

SdkDetector::State SdkDetector::state(uint32_t tgid, uint64_t now_ns) {
    auto it = procs_.find(tgid);
    if (it == procs_.end()) return State::kPlain;  // not watched: nothing to wait for
    Proc& p = it->second;
    if (p.state == State::kUnknown && p.first_exchange_ns != 0 &&
        now_ns >= p.first_exchange_ns + cfg_.watch_ns) {
        p.state = State::kPlain;
        counters_.add("correlate.sdk_watch_ended");
    }
    return p.state;
}

}  // namespace passport::correlate
