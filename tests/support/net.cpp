#include "tests/support/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <regex>
#include <stdexcept>
#include <thread>

namespace passport::testing {
namespace {

sockaddr_in ipv4(const std::string& host, uint16_t port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        throw std::runtime_error("not an IPv4 address: " + host);
    }
    return addr;
}

uint16_t bound_port(int type) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr = ipv4("127.0.0.1", 0);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        throw std::runtime_error("bind 127.0.0.1:0 failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

int poll_ms(Deadline deadline) {
    return static_cast<int>(std::min<int64_t>(time_left(deadline).count(), int64_t{1000} * 60));
}

}  // namespace

uint16_t free_tcp_port() { return bound_port(SOCK_STREAM); }

uint16_t closed_udp_port() { return bound_port(SOCK_DGRAM); }

bool wait_for_tcp_listen(uint16_t port, Deadline deadline, const std::string& host) {
    return wait_until(
        [&] {
            TcpClient probe;
            return probe.connect(port, deadline_in(std::chrono::milliseconds(500)), host);
        },
        deadline, std::chrono::milliseconds(20));
}

TcpClient::~TcpClient() { close(); }

bool TcpClient::connect(uint16_t port, Deadline deadline, const std::string& host) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return false;
    sockaddr_in addr = ipv4(host, port);
    int r = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (r != 0 && errno != EINPROGRESS) {
        close();
        return false;
    }
    if (r != 0) {
        pollfd p{fd_, POLLOUT, 0};
        if (::poll(&p, 1, poll_ms(deadline)) <= 0) {
            close();
            return false;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            close();
            return false;
        }
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
}

int TcpClient::send_all(std::string_view bytes, Deadline deadline) {
    size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, poll_ms(deadline)) <= 0) return ETIMEDOUT;
            continue;
        }
        return n < 0 ? errno : EPIPE;
    }
    return 0;
}

void TcpClient::read(RawReply& reply, Deadline deadline,
                     const std::function<bool(const std::string&)>& until) {
    char buffer[16384];
    while (true) {
        if (until && until(reply.received)) return;
        pollfd p{fd_, POLLIN, 0};
        int ready = ::poll(&p, 1, poll_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            reply.timed_out = true;
            return;
        }
        ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n > 0) {
            reply.received.append(buffer, static_cast<size_t>(n));
        } else if (n == 0) {
            reply.peer_closed = true;
            return;
        } else if (errno == ECONNRESET) {
            reply.reset = true;
            return;
        } else if (errno != EAGAIN && errno != EINTR) {
            return;
        }
    }
}

void TcpClient::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void TcpClient::abort() {
    if (fd_ < 0) return;
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close();
}

void TcpClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

uint16_t TcpClient::local_port() const {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
    return ntohs(addr.sin_port);
}

RawReply raw_tcp_exchange(uint16_t port, std::string_view bytes, Deadline deadline, bool half_close,
                          const std::function<bool(const std::string&)>& until) {
    RawReply reply;
    TcpClient client;
    reply.connected = client.connect(port, deadline);
    if (!reply.connected) return reply;
    reply.send_errno = client.send_all(bytes, deadline);
    if (reply.send_errno == ECONNRESET) reply.reset = true;
    if (half_close) client.shutdown_write();
    client.read(reply, deadline, until);
    return reply;
}

bool has_http_response_head(const std::string& received) {
    return received.rfind("HTTP/1.", 0) == 0 && received.find("\r\n\r\n") != std::string::npos;
}

int http_status_of(const std::string& received) {
    static const std::regex status_line(R"(^HTTP/1\.[01] (\d{3}))");
    std::smatch match;
    if (std::regex_search(received, match, status_line)) return std::stoi(match[1].str());
    return 0;
}

}  // namespace passport::testing
