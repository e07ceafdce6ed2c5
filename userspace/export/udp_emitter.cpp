#include "userspace/export/udp_emitter.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/udp.hpp>
#include <utility>

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
    : socket_(std::move(socket)), remote_(std::move(remote)), counters_(counters) {}

void UdpEmitter::set_batch_size(size_t max_batch) {
    flush();
    max_batch_ = std::max<size_t>(1, std::min<size_t>(max_batch, kMaxBatch));
}

void UdpEmitter::emit(std::string datagram) {
    if (datagram.size() > kMaxUdpPayload) {
        count_failure(kCounterUdpTooLarge);
        return;
    }
    if (max_batch_ > 1) {
        pending_.push_back(std::move(datagram));
        if (pending_.size() >= max_batch_) flush();
        return;
    }
    send_one(datagram);
    recycle(datagram);
}

std::string UdpEmitter::spare() {
    if (spare_.empty()) return {};
    std::string out = std::move(spare_.back());
    spare_.pop_back();
    return out;
}

void UdpEmitter::recycle(std::string& datagram) {
    // Bounded: at most a batch of ordinary-sized buffers is kept (an oversized one is freed).
    constexpr size_t kMaxKeptCapacity = size_t{16} * 1024;
    if (spare_.size() >= kMaxBatch || datagram.capacity() > kMaxKeptCapacity) return;
    datagram.clear();
    spare_.push_back(std::move(datagram));
}

// Sends the queued datagrams, up to kMaxBatch per sendmmsg(2): one syscall instead of one per
// document, which is most of the exporter's cost where syscalls are expensive.
void UdpEmitter::flush() {
    size_t i = 0;
    std::array<mmsghdr, kMaxBatch> msgs{};
    std::array<iovec, kMaxBatch> iov{};
    while (i < pending_.size()) {
        const size_t n = std::min(pending_.size() - i, kMaxBatch);
        for (size_t k = 0; k < n; k++) {
            iov[k] = {pending_[i + k].data(), pending_[i + k].size()};
            msgs[k] = {};
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        const int r = ::sendmmsg(socket_.native_handle(), msgs.data(), static_cast<unsigned>(n),
                                 MSG_DONTWAIT);
        if (r > 0) {
            for (int k = 0; k < r; k++) {
                counters_.add(kCounterDocumentsSent);
                counters_.add(kCounterBytesSent, msgs[static_cast<size_t>(k)].msg_len);
            }
            i += static_cast<size_t>(r);
            continue;
        }
        // The error belongs to the first unsent datagram: count it and go on with the rest.
        const int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) {
            count_failure(kCounterUdpWouldBlock);
        } else if (err == ECONNREFUSED) {
            count_failure(kCounterUdpRefused);
        } else if (err == EMSGSIZE) {
            count_failure(kCounterUdpTooLarge);
        } else {
            count_failure({});
        }
        i++;
    }
    for (std::string& datagram : pending_) recycle(datagram);
    pending_.clear();
}

void UdpEmitter::send_one(const std::string& datagram) {
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
