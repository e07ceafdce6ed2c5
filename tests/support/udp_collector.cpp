#include "tests/support/udp_collector.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <gtest/gtest.h>

namespace passport::testing {
namespace {

constexpr std::string_view kSyncMarker = "\x01passport-collector-sync ";

std::string excerpt(std::string_view text, size_t max = 300) {
    std::string out(text.substr(0, max));
    if (text.size() > max) out += "…(" + std::to_string(text.size()) + " bytes)";
    return out;
}

}  // namespace

ReceivedDatagram parse_datagram(std::string raw) {
    ReceivedDatagram d;
    d.raw = std::move(raw);
    size_t newline = d.raw.find('\n');
    if (newline == std::string::npos) {
        d.problem = "no header line (no '\\n'): " + excerpt(d.raw);
        return d;
    }
    d.header = d.raw.substr(0, newline);
    d.body = d.raw.substr(newline + 1);
    if (d.header != kXrayHeader) {
        d.problem =
            "header is '" + excerpt(d.header) + "', want '" + std::string(kXrayHeader) + "'";
        return d;
    }
    if (d.body.empty()) {
        d.problem = "empty body";
        return d;
    }
    try {
        d.document = nlohmann::json::parse(d.body);
    } catch (const nlohmann::json::exception& e) {
        d.problem = std::string("body is not JSON (") + e.what() + "): " + excerpt(d.body);
        d.document = nullptr;
        return d;
    }
    if (!d.document.is_object()) {
        d.problem = "body is not a JSON object: " + excerpt(d.body);
    }
    return d;
}

UdpCollector::UdpCollector() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    // A large receive queue: a burst of documents must not be dropped by the collector itself.
    int size = 8 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        ::close(fd_);
        throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + std::strerror(err));
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { receive_loop(); });
}

UdpCollector::~UdpCollector() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    ::close(wake_fd_);
}

std::string UdpCollector::address() const { return "127.0.0.1:" + std::to_string(port_); }

void UdpCollector::receive_loop() {
    // 64 KiB is the most the daemon reads; one byte more lets MSG_TRUNC tell us about bigger ones.
    std::vector<char> buffer(65536 + 1);
    while (true) {
        pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0) continue;
        double now = wall_clock_now();
        size_t kept = std::min(static_cast<size_t>(n), buffer.size());
        std::string raw(buffer.data(), kept);
        if (raw.rfind(kSyncMarker, 0) == 0) {
            std::lock_guard lock(mutex_);
            syncs_seen_ =
                std::max<uint64_t>(syncs_seen_, std::stoull(raw.substr(kSyncMarker.size())));
            changed_.notify_all();
            continue;
        }
        ReceivedDatagram d = parse_datagram(std::move(raw));
        d.received_at = now;
        if (static_cast<size_t>(n) > 65536 && d.problem.empty()) {
            d.problem = "datagram of " + std::to_string(n) + " bytes exceeds the daemon's 64 KiB";
        }
        std::lock_guard lock(mutex_);
        received_.push_back(std::move(d));
        reported_.push_back(false);
        changed_.notify_all();
    }
}

std::vector<ReceivedDatagram> UdpCollector::datagrams() const {
    std::lock_guard lock(mutex_);
    return received_;
}

size_t UdpCollector::count() const {
    std::lock_guard lock(mutex_);
    return received_.size();
}

std::vector<nlohmann::json> UdpCollector::documents() const {
    std::vector<nlohmann::json> docs;
    std::vector<std::string> failures;
    {
        std::lock_guard lock(mutex_);
        for (size_t i = 0; i < received_.size(); ++i) {
            if (received_[i].problem.empty()) {
                docs.push_back(received_[i].document);
            } else if (!reported_[i]) {
                reported_[i] = true;
                failures.push_back("datagram #" + std::to_string(i) + ": " + received_[i].problem);
            }
        }
    }
    for (const auto& failure : failures) ADD_FAILURE() << "malformed X-Ray datagram: " << failure;
    return docs;
}

std::vector<std::string> UdpCollector::problems() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (size_t i = 0; i < received_.size(); ++i) {
        if (!received_[i].problem.empty()) {
            out.push_back("datagram #" + std::to_string(i) + ": " + received_[i].problem);
        }
    }
    return out;
}

std::optional<nlohmann::json> UdpCollector::wait_for(
    const std::function<bool(const nlohmann::json&)>& predicate, Deadline deadline) const {
    auto found = wait_for_count(predicate, 1, deadline);
    if (found.empty()) return std::nullopt;
    return found.front();
}

std::vector<nlohmann::json> UdpCollector::wait_for_count(
    const std::function<bool(const nlohmann::json&)>& predicate, size_t n,
    Deadline deadline) const {
    std::vector<nlohmann::json> matching;
    size_t scanned = 0;
    std::unique_lock lock(mutex_);
    while (true) {
        for (; scanned < received_.size(); ++scanned) {
            const ReceivedDatagram& d = received_[scanned];
            if (d.problem.empty() && predicate(d.document)) matching.push_back(d.document);
        }
        if (matching.size() >= n) return matching;
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout &&
            scanned == received_.size()) {
            return matching;
        }
    }
}

bool UdpCollector::sync(Deadline deadline) {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    uint64_t token;
    {
        std::lock_guard lock(mutex_);
        token = ++syncs_sent_;
    }
    std::string marker = std::string(kSyncMarker) + std::to_string(token);
    ssize_t sent = ::sendto(fd, marker.data(), marker.size(), 0, reinterpret_cast<sockaddr*>(&addr),
                            sizeof addr);
    ::close(fd);
    if (sent != static_cast<ssize_t>(marker.size())) return false;
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return syncs_seen_ >= token; });
}

}  // namespace passport::testing
