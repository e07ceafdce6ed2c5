// udp_sink: stands in for the X-Ray daemon during benchmarks. Binds 127.0.0.1:PORT, reads
// datagrams in batches (recvmmsg) and counts them; on SIGINT/SIGTERM prints
// {"datagrams":N,"bytes":B} on stdout. Prints "udp_sink: ready" on stderr once bound.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: udp_sink PORT\n");
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

    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int rcvbuf = 8 << 20;
    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[1])));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s < 0 || sfd < 0 || bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        std::perror("udp_sink");
        return 1;
    }
    std::fprintf(stderr, "udp_sink: ready\n");

    constexpr int kBatch = 64;
    constexpr size_t kMax = 65536;
    std::vector<char> buf(kBatch * kMax);
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    for (int i = 0; i < kBatch; i++) {
        iov[i] = {buf.data() + i * kMax, kMax};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    unsigned long long datagrams = 0, bytes = 0;
    pollfd pfds[2] = {{s, POLLIN, 0}, {sfd, POLLIN, 0}};
    for (;;) {
        if (poll(pfds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pfds[1].revents) break;
        for (;;) {
            int n = recvmmsg(s, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
            if (n <= 0) break;
            datagrams += static_cast<unsigned>(n);
            for (int i = 0; i < n; i++) bytes += msgs[i].msg_len;
        }
    }
    std::printf("{\"datagrams\":%llu,\"bytes\":%llu}\n", datagrams, bytes);
    return 0;
}
