#pragma once
// SdkDetector: which traced processes report to X-Ray themselves (an X-Ray SDK, or another tracer
// writing X-Ray headers, in the process). Passport leaves the server segments of such a process
// to it (docs/sdk.md). Two signals, either is enough:
//  - the kernel saw the process send a datagram that starts with the X-Ray daemon header
//    (events::SdkDatagram, reported once per process);
//  - an outgoing request of the process carries an X-Amzn-Trace-Id that Passport did not write
//    (the syscall probes capture what the process wrote, before the kernel's injection) and that
//    is not byte-identical to the X-Amzn-Trace-Id of a request the process received recently (a
//    proxy forwards that one unchanged: nginx is not an SDK).
// A process is kUnknown until a signal makes it kSdk; one that has been watched for `watch_ns`
// since its first server exchange without a signal is kPlain (a later signal still makes it
// kSdk). Keyed by tgid; forgotten when the process execs or exits. Bounded.
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/events/event.hpp"
#include "userspace/pairing/http_exchange.hpp"

namespace passport::correlate {

struct SdkDetectorConfig {
    uint64_t watch_ns = 500'000'000;  // kUnknown → kPlain this long after the first exchange
    size_t max_processes = 8192;      // beyond: not watched (kPlain), counted
    size_t headers_per_process = 64;  // incoming X-Amzn-Trace-Id values kept per process
};

class SdkDetector {
  public:
    enum class State : uint8_t { kUnknown, kPlain, kSdk };

    explicit SdkDetector(Counters& counters, SdkDetectorConfig cfg = {});

    // Signal 1. True when it made the process kSdk.
    bool on_datagram(const events::SdkDatagram& d);
    // Every parsed request head: a received X-Amzn-Trace-Id is remembered; a sent one that is
    // none of those is signal 2. True when it made the process kSdk.
    bool on_request_seen(const pairing::HttpRequestSeen& seen);
    // A server exchange of the process ended at `ns` (CLOCK_MONOTONIC): starts its watch, and
    // returns its state then.
    State on_server_exchange(uint32_t tgid, uint64_t ns);
    // The state at `now_ns`: a kUnknown process whose watch has run out becomes kPlain.
    State state(uint32_t tgid, uint64_t now_ns);
    // The process exec'd or exited.
    void forget(uint32_t tgid) { procs_.erase(tgid); }
    size_t tracked() const { return procs_.size(); }

  private:
    struct Proc {
        State state = State::kUnknown;
        uint64_t first_exchange_ns = 0;  // 0: none yet
        std::vector<uint64_t> received;  // hashes of received X-Amzn-Trace-Id values (a ring)
        size_t next = 0;
    };
    Proc* proc(uint32_t tgid);  // found or added; nullptr when the table is full
    bool mark_sdk(uint32_t tgid, std::string_view signal_counter);
    void remember_received(Proc& p, uint64_t hash) const;

    SdkDetectorConfig cfg_;
    Counters& counters_;
    std::unordered_map<uint32_t, Proc> procs_;
};

}  // namespace passport::correlate
