#pragma once
// Loopback networking helpers for e2e tests: port pickers, "is it listening yet" polling, and a
// raw TCP client that sends exactly the bytes a test gives it (garbage, malformed requests,
// hostile headers) and reads whatever comes back. Only 127.0.0.1 (or an address inside a
// namespace the test made) is ever used. Stateless apart from TcpClient, owned by one test.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "tests/support/wait.hpp"

namespace passport::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
uint16_t free_tcp_port();

// A UDP port on 127.0.0.1 with nobody listening (bound, read and closed again): datagrams sent
// there are answered with ICMP port-unreachable.
uint16_t closed_udp_port();

// Polls connect() to host:port until it succeeds or `deadline` passes.
bool wait_for_tcp_listen(uint16_t port, Deadline deadline, const std::string& host = "127.0.0.1");

// What a raw exchange produced.
struct RawReply {
    bool connected = false;
    std::string received;      // every byte read
    bool peer_closed = false;  // read returned 0 (FIN)
    bool reset = false;        // ECONNRESET while reading or writing
    bool timed_out = false;    // the deadline passed first
    int send_errno = 0;
};

// A blocking-with-deadline TCP client over IPv4.
class TcpClient {
  public:
    TcpClient() = default;
    ~TcpClient();
    TcpClient(const TcpClient&) = delete;
    TcpClient& operator=(const TcpClient&) = delete;

    bool connect(uint16_t port, Deadline deadline, const std::string& host = "127.0.0.1");
    // Sends every byte (looping over partial writes). Returns 0 or the errno that stopped it.
    int send_all(std::string_view bytes, Deadline deadline);
    // Reads until the peer closes, the connection resets, `until` returns true for the bytes so
    // far, or `deadline` passes. Appends into reply.received.
    void read(RawReply& reply, Deadline deadline,
              const std::function<bool(const std::string&)>& until = nullptr);
    void shutdown_write();
    // Closes with SO_LINGER{1,0}: the peer sees a RST instead of a FIN.
    void abort();
    void close();
    uint16_t local_port() const;
    bool is_open() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

// Connects, sends `bytes`, optionally half-closes, and reads until the peer closes or the
// deadline passes (or `until` is satisfied). The deadline bounds a read, it is not a wait for
// correctness: callers check what arrived.
RawReply raw_tcp_exchange(uint16_t port, std::string_view bytes, Deadline deadline,
                          bool half_close = false,
                          const std::function<bool(const std::string&)>& until = nullptr);

// True when `reply` holds a complete HTTP/1.x response head ("HTTP/1.x NNN …\r\n\r\n").
bool has_http_response_head(const std::string& received);
// The status code of the first response in `received`, or 0.
int http_status_of(const std::string& received);

}  // namespace passport::testing
