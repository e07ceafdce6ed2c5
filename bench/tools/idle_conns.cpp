// idle_conns: opens N keep-alive HTTP/1.1 connections to HOST:PORT, sends one GET on each and
// reads its response (so a tracer has seen a whole exchange on every one), then holds them all
// open and idle until SIGINT/SIGTERM. Prints {"open":N,"answered":M,"seconds":S} on stdout and
// "idle_conns: ready" on stderr when every connection is idle. Needs `ulimit -n` > N.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// Reads one response: headers plus Content-Length bytes of body. Blocking socket.
bool read_response(int fd) {
    std::string got;
    char buf[4096];
    size_t need = std::string::npos;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) return false;
        got.append(buf, static_cast<size_t>(n));
        if (need == std::string::npos) {
            size_t end = got.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            size_t cl = got.find("Content-Length:");
            if (cl == std::string::npos) cl = got.find("content-length:");
            size_t body =
                cl == std::string::npos ? 0 : std::strtoul(got.c_str() + cl + 15, nullptr, 10);
            need = end + 4 + body;
        }
        if (got.size() >= need) return true;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: idle_conns HOST PORT N\n");
        return 2;
    }
    // A shell starts background jobs with SIGINT ignored; an ignored signal never reaches a
    // signalfd.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);

    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        std::fprintf(stderr, "idle_conns: bad IPv4 address %s\n", argv[1]);
        return 2;
    }
    const long want = std::atol(argv[3]);
    const std::string req =
        std::string("GET /index.html HTTP/1.1\r\nHost: ") + argv[1] +
        "\r\nUser-Agent: passport-bench-idle/1.0\r\nConnection: keep-alive\r\n\r\n";

    auto t0 = std::chrono::steady_clock::now();
    std::vector<int> fds;
    long answered = 0;
    for (long i = 0; i < want; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            std::perror("idle_conns: socket");
            break;
        }
        if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            std::perror("idle_conns: connect");
            close(fd);
            break;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fds.push_back(fd);
        if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()) &&
            read_response(fd))
            answered++;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "idle_conns: ready (%zu open, %ld answered, %.1f s)\n", fds.size(),
                 answered, secs);
    std::fflush(stderr);

    pollfd pfd{sfd, POLLIN, 0};
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    // Count how many the server closed meanwhile (keepalive_timeout): readable with EOF.
    long still_open = 0;
    for (int fd : fds) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 0) == 0) still_open++;
        close(fd);
    }
    std::printf("{\"open\":%zu,\"answered\":%ld,\"still_open_at_end\":%ld,\"seconds\":%.2f}\n",
                fds.size(), answered, still_open, secs);
    return fds.size() == static_cast<size_t>(want) ? 0 : 1;
}
