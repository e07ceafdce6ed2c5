#pragma once
#include <vector>
// UdpEmitter: sends datagrams to the X-Ray daemon over a connected, non-blocking UDP socket
// (AWS X-Ray Developer Guide, "Sending segment documents to the X-Ray daemon"). Created by the
// agent at startup on the pipeline's io_context; emit() is called on that thread. The daemon host
// is resolved once, in create(). A send never blocks and never throws: would-block, refused (no
// daemon listening, reported by ICMP on a later send), too large and other errors are counted and
// the datagram is dropped, as the SDKs do.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "userspace/common/counters.hpp"
#include "userspace/common/result.hpp"
#include "userspace/export/daemon_address.hpp"
#include "userspace/export/emitter.hpp"

namespace passport::exporter {

inline constexpr std::string_view kCounterDocumentsSent = "export.documents_sent";
inline constexpr std::string_view kCounterBytesSent = "export.bytes_sent";
// Every dropped datagram counts here, plus in one of the reason counters below when known.
inline constexpr std::string_view kCounterUdpSendFailed = "export.udp_send_failed";
inline constexpr std::string_view kCounterUdpRefused = "export.udp_refused";
inline constexpr std::string_view kCounterUdpWouldBlock = "export.udp_would_block";
inline constexpr std::string_view kCounterUdpTooLarge = "export.udp_too_large";

// The largest IPv4 UDP payload; larger datagrams are dropped without a send.
inline constexpr size_t kMaxUdpPayload = 65507;

class UdpEmitter : public Emitter {
  public:
    // Resolves address (IPv4 results preferred: the daemon binds 127.0.0.1 by default), opens and
    // connects the socket. Fails on resolution or socket errors.
    static Result<std::unique_ptr<UdpEmitter>> create(boost::asio::io_context& io,
                                                      const HostPort& address, Counters& counters);

    void emit(std::string datagram) override;
    std::string spare() override;
    // Sends what emit() queued (batching only). The agent calls it on its drain timer.
    void flush() override;
    // Queue up to max_batch datagrams and send them with one sendmmsg(2); 1 (the default)
    // sends each datagram at once.
    void set_batch_size(size_t max_batch);
    ~UdpEmitter() override { flush(); }

    const boost::asio::ip::udp::endpoint& remote() const { return remote_; }

  private:
    UdpEmitter(boost::asio::ip::udp::socket socket, boost::asio::ip::udp::endpoint remote,
               Counters& counters);

    void count_failure(std::string_view reason);
    void send_one(const std::string& datagram);
    // Keeps a sent datagram's buffer for spare().
    void recycle(std::string& datagram);

    static constexpr size_t kMaxBatch = 64;
    size_t max_batch_ = 1;
    std::vector<std::string> pending_;
    std::vector<std::string> spare_;  // sent datagrams' buffers, emptied, for spare()

    boost::asio::ip::udp::socket socket_;
    boost::asio::ip::udp::endpoint remote_;
    Counters& counters_;
};

}  // namespace passport::exporter
