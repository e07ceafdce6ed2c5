// syscall_spin: a busy process issuing one kind of syscall in a loop, to measure what probes cost
// per syscall. For each MODE it runs for SECONDS and prints one line
// {"mode":M,"ops":N,"seconds":S,"ns_per_op":X} on stdout.
//   devnull     write(64 bytes) to /dev/null: one sys_enter/exit_write pair per op
//   socketpair  write(64) + read(64) on an AF_UNIX socketpair: two probed syscalls per op
//   tcp         write(64) + read(64) over a TCP loopback connection inside this process: two
//               probed syscalls per op; when this process is selected, both are captured
// --wait-signal: block until SIGUSR1 before starting (so a tracer can select this pid first);
// sockets are opened after the signal, as they would be by a process started under tracing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// A connected TCP pair on 127.0.0.1 (ephemeral listener, closed afterwards).
bool tcp_pair(int& a, int& b) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(l, 1) != 0 || getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return false;
    a = socket(AF_INET, SOCK_STREAM, 0);
    if (a < 0 || connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return false;
    b = accept(l, nullptr, nullptr);
    close(l);
    int one = 1;
    setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return b >= 0;
}

bool run(const std::string& mode, double seconds) {
    int wfd = -1, rfd = -1;
    if (mode == "devnull") {
        wfd = open("/dev/null", O_WRONLY);
    } else if (mode == "socketpair") {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
            wfd = sv[0];
            rfd = sv[1];
        }
    } else if (mode == "tcp") {
        if (!tcp_pair(wfd, rfd)) wfd = -1;
    } else {
        std::fprintf(stderr, "syscall_spin: unknown mode %s\n", mode.c_str());
        return false;
    }
    if (wfd < 0) {
        std::perror("syscall_spin: setup");
        return false;
    }
    char buf[64];
    std::memset(buf, 'x', sizeof(buf));
    unsigned long long ops = 0;
    const double t0 = now();
    double t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 1000; i++) {
            if (write(wfd, buf, sizeof(buf)) != sizeof(buf)) return false;
            if (rfd >= 0) {
                size_t got = 0;
                while (got < sizeof(buf)) {
                    ssize_t n = read(rfd, buf + got, sizeof(buf) - got);
                    if (n <= 0) return false;
                    got += static_cast<size_t>(n);
                }
            }
        }
        ops += 1000;
        t = now();
    }
    const double elapsed = t - t0;
    std::printf("{\"mode\":\"%s\",\"ops\":%llu,\"seconds\":%.3f,\"ns_per_op\":%.1f}\n",
                mode.c_str(), ops, elapsed, elapsed * 1e9 / double(ops));
    std::fflush(stdout);
    close(wfd);
    if (rfd >= 0) close(rfd);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    bool wait_signal = false;
    std::vector<std::string> modes;
    double seconds = -1;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--wait-signal")
            wait_signal = true;
        else if (seconds < 0)
            seconds = std::atof(a.c_str());
        else
            modes.push_back(a);
    }
    if (seconds <= 0 || modes.empty()) {
        std::fprintf(stderr,
                     "usage: syscall_spin [--wait-signal] SECONDS devnull|socketpair|tcp...\n");
        return 2;
    }
    if (wait_signal) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigprocmask(SIG_BLOCK, &set, nullptr);
        std::fprintf(stderr, "syscall_spin: waiting\n");
        std::fflush(stderr);
        int sig = 0;
        sigwait(&set, &sig);
    }
    for (const auto& m : modes)
        if (!run(m, seconds)) return 1;
    return 0;
}
