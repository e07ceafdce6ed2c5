// passport_floor: attaches the benchmark's "floor" programs (bpf/bench/floor.bpf.c) — every
// tracepoint Passport uses, each program returning at once — and holds them until SIGINT or
// SIGTERM. Prints "passport_floor: ready" on stderr once attached, like the agent, so the
// benchmark driver can wait for it. Needs root.
#include <bpf/libbpf.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "passport_floor.skel.h"

namespace {

int quiet_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    return std::vfprintf(stderr, fmt, args);
}

}  // namespace

int main() {
    libbpf_set_print(quiet_libbpf);

    // Block the stop signals first and wait for them on a signalfd: no handler races.
    // A shell starts background jobs with SIGINT ignored; an ignored signal never reaches a
    // signalfd.
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) {
        std::perror("passport_floor: sigprocmask");
        return 1;
    }
    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);
    if (sfd < 0) {
        std::perror("passport_floor: signalfd");
        return 1;
    }

    passport_floor* skel = passport_floor__open_and_load();
    if (!skel) {
        std::fprintf(stderr, "passport_floor: loading the floor programs failed: %s\n",
                     std::strerror(errno));
        return 1;
    }

    // Attach one by one, so a kernel that refuses tp_btf (the agent falls back there too) still
    // gets every syscall tracepoint.
    std::vector<bpf_link*> links;
    int failed = 0;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, skel->obj) {
        bpf_link* link = bpf_program__attach(prog);
        if (!link) {
            std::fprintf(stderr, "passport_floor: attach %s failed: %s\n", bpf_program__name(prog),
                         std::strerror(errno));
            failed++;
            continue;
        }
        links.push_back(link);
    }
    std::fprintf(stderr, "passport_floor: %zu programs attached (%d refused)\n", links.size(),
                 failed);
    std::fprintf(stderr, "passport_floor: ready\n");
    std::fflush(stderr);

    pollfd pfd{sfd, POLLIN, 0};
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }

    for (bpf_link* l : links) bpf_link__destroy(l);
    passport_floor__destroy(skel);
    close(sfd);
    std::fprintf(stderr, "passport_floor: detached\n");
    return failed == 0 ? 0 : 3;
}
