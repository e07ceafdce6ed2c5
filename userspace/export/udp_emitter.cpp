#include "userspace/export/udp_emitter.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/udp.hpp>

namespace passport::exporter {

namespace asio = boost::asio;
using asio::ip::udp;

Result<std::unique_ptr<UdpEmitter>> UdpEmitter::create(asio::io_context& io,
                                                       const HostPort& address,
                                                       Counters& counters) {
    boost::system::error_code ec;
    udp::resolver resolver(io);
    const auto results = resolver.resolve(address.host, std::to_string(address.port), ec);
    if (ec || results.empty()) {
        return make_error("cannot resolve X-Ray daemon address " + to_string(address) + ": " +
                          (ec ? ec.message() : "no addresses"));
    }
    udp::endpoint remote = results.begin()->endpoint();
    for (const auto& entry : results) {
        if (entry.endpoint().address().is_v4()) {
            remote = entry.endpoint();
            break;
        }
    }

    udp::socket socket(io);
    if (socket.open(remote.protocol(), ec); ec) {
        return make_error("cannot open UDP socket: " + ec.message());
    }
    // Connected: the kernel filters replies and reports ICMP errors (ECONNREFUSED) to us.
    if (socket.connect(remote, ec); ec) {
        return make_error("cannot connect UDP socket to " + to_string(address) + ": " +
                          ec.message());
    }
    if (socket.non_blocking(true, ec); ec) {
        return make_error("cannot make UDP socket non-blocking: " + ec.message());
    }
    return std::unique_ptr<UdpEmitter>(new UdpEmitter(std::move(socket), remote, counters));
}

UdpEmitter::UdpEmitter(udp::socket socket, udp::endpoint remote, Counters& counters)
    : socket_(std::move(socket)), remote_(remote), counters_(counters) {}

void UdpEmitter::emit(std::string datagram) {
    if (datagram.size() > kMaxUdpPayload) {
        count_failure(kCounterUdpTooLarge);
        return;
    }
    boost::system::error_code ec;
    const size_t sent = socket_.send(asio::buffer(datagram), 0, ec);
    if (!ec) {
        counters_.add(kCounterDocumentsSent);
        counters_.add(kCounterBytesSent, sent);
        return;
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again ||
        ec == asio::error::no_buffer_space) {
        count_failure(kCounterUdpWouldBlock);
    } else if (ec == asio::error::connection_refused) {
        count_failure(kCounterUdpRefused);
    } else if (ec == asio::error::message_size) {
        count_failure(kCounterUdpTooLarge);
    } else {
        count_failure({});
    }
}

void UdpEmitter::count_failure(std::string_view reason) {
    counters_.add(kCounterUdpSendFailed);
    if (!reason.empty()) counters_.add(reason);
}

}  // namespace passport::exporter
