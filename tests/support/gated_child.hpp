#pragma once
// A forked child that runs `body` only when told to, so a test can select it (or set up probes
// for its pid) before it does anything. Header-only.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <functional>

namespace passport::testing {

// A child process that runs `body` when told to, so the parent can select it first.
class GatedChild {
  public:
    explicit GatedChild(const std::function<void()>& body) {
        int go[2];
        if (::pipe(go) != 0) std::abort();
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(go[1]);
            char c;
            if (::read(go[0], &c, 1) == 1) body();
            ::_exit(0);
        }
        ::close(go[0]);
        go_ = go[1];
    }
    ~GatedChild() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (go_ >= 0) ::close(go_);
    }
    pid_t pid() const { return pid_; }
    // Lets the child run `body`; false when the child is gone.
    bool start() {
        char c = 'g';
        return ::write(go_, &c, 1) == 1;
    }
    int wait() {
        int st = 0;
        ::waitpid(pid_, &st, 0);
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    // start() then wait(); -1 when the child could not be started.
    int run() { return start() ? wait() : -1; }

  private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    int go_ = -1;
};

}  // namespace passport::testing
