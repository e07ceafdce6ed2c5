#pragma once
// UdpCollector: a stand-in for the X-Ray daemon's UDP ingest. It binds 127.0.0.1:0, records
// every datagram on a background thread, and gives tests the documents inside them.
//
// Every datagram must be `{"format":"json","version":1}` + "\n" + one JSON document. The daemon
// itself accepts any spacing in the header, but Passport promises this exact header, so the
// collector holds it to that, byte for byte, and reports every datagram that is not.
//
// sync() is the barrier for "nothing else arrived": it sends a marker datagram to itself and
// waits until the thread has read it. On loopback a datagram is queued on the receiving socket
// before the sender's sendto() returns (the softirq runs when the sender re-enables BHs), and
// the queue is FIFO, so once the marker is seen every datagram sent before the call (e.g. by an
// agent that has already exited) has been recorded.
//
// Owned by one test; accessors are thread-safe (the receiver thread appends under a mutex).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/wait.hpp"

namespace passport::testing {

// The one header line Passport writes (the spelling the X-Ray SDKs for Node.js and Python send).
inline constexpr std::string_view kXrayHeader = R"({"format":"json","version":1})";

// One received datagram, split and parsed. `problem` is empty when the datagram is well formed.
struct ReceivedDatagram {
    std::string raw;
    double received_at = 0;   // wall clock, epoch seconds
    std::string header;       // text before the first '\n'
    std::string body;         // text after it
    nlohmann::json document;  // parsed body (discarded when `problem` is set)
    std::string problem;      // why the datagram is not a valid X-Ray datagram
};

// Splits and checks one datagram (pure; also usable without a socket).
ReceivedDatagram parse_datagram(std::string raw);

class UdpCollector {
  public:
    UdpCollector();  // throws std::runtime_error if the socket cannot be bound
    ~UdpCollector();
    UdpCollector(const UdpCollector&) = delete;
    UdpCollector& operator=(const UdpCollector&) = delete;

    uint16_t port() const { return port_; }
    std::string address() const;  // "127.0.0.1:<port>", the value for --daemon-address

    // Every datagram so far, in arrival order.
    std::vector<ReceivedDatagram> datagrams() const;
    size_t count() const;

    // Documents of the well-formed datagrams. Each malformed datagram is reported as a gtest
    // failure (once per datagram) and skipped.
    std::vector<nlohmann::json> documents() const;
    // Descriptions of malformed datagrams ("#3: header is '…'"), for explicit assertions.
    std::vector<std::string> problems() const;

    // Waits until some document satisfies `predicate` and returns it.
    std::optional<nlohmann::json> wait_for(
        const std::function<bool(const nlohmann::json&)>& predicate, Deadline deadline) const;
    // Waits until at least `n` documents satisfy `predicate`; returns all that do (possibly
    // fewer than n at the deadline).
    std::vector<nlohmann::json> wait_for_count(
        const std::function<bool(const nlohmann::json&)>& predicate, size_t n,
        Deadline deadline) const;

    // Barrier: true once every datagram sent to port() before this call has been recorded.
    bool sync(Deadline deadline);

  private:
    void receive_loop();

    int fd_ = -1;
    int wake_fd_ = -1;
    uint16_t port_ = 0;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<ReceivedDatagram> received_;
    mutable std::vector<bool> reported_;
    uint64_t syncs_seen_ = 0;
    uint64_t syncs_sent_ = 0;
    std::thread thread_;
};

}  // namespace passport::testing
