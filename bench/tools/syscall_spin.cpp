// syscall_spin: a busy process that is never selected for tracing. Runs one kind of syscall in a
// loop for S seconds and prints {"mode":M,"ops":N,"seconds":S,"ns_per_op":X} on stdout.
//   devnull     write(64 bytes) to /dev/null: one sys_enter/exit_write pair per op
//   socketpair  write(64) + read(64) on an AF_UNIX socketpair: two traced syscalls per op
// Used to show what an unselected process pays while Passport traces another one.
#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: syscall_spin devnull|socketpair SECONDS\n");
        return 2;
    }
    const bool pair = std::strcmp(argv[1], "socketpair") == 0;
    if (!pair && std::strcmp(argv[1], "devnull") != 0) {
        std::fprintf(stderr, "syscall_spin: unknown mode %s\n", argv[1]);
        return 2;
    }
    const double seconds = std::atof(argv[2]);
    int wfd = -1, rfd = -1;
    if (pair) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
        wfd = sv[0];
        rfd = sv[1];
    } else {
        wfd = open("/dev/null", O_WRONLY);
        if (wfd < 0) return 1;
    }
    char buf[64];
    std::memset(buf, 'x', sizeof(buf));
    unsigned long long ops = 0;
    const double t0 = now();
    double t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < 1000; i++) {
            if (write(wfd, buf, sizeof(buf)) != sizeof(buf)) return 1;
            if (pair && read(rfd, buf, sizeof(buf)) != sizeof(buf)) return 1;
        }
        ops += 1000;
        t = now();
    }
    const double elapsed = t - t0;
    std::printf("{\"mode\":\"%s\",\"ops\":%llu,\"seconds\":%.3f,\"ns_per_op\":%.1f}\n", argv[1], ops, elapsed,
                elapsed * 1e9 / double(ops));
    return 0;
}
