#include "tests/support/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace passport::testing {
namespace {

std::string errno_text(const std::string& what, int err) {
    return what + ": " + std::strerror(err);
}

ExitStatus decode_wait_status(int status) {
    ExitStatus result;
    if (WIFEXITED(status)) {
        result.exited = true;
        result.code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.exited = false;
        result.signal = WTERMSIG(status);
    }
    return result;
}

std::vector<std::string> build_environment(const ChildOptions& options) {
    std::vector<std::string> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        std::string item(*entry);
        std::string name = item.substr(0, item.find('='));
        bool drop = options.env.count(name) > 0;
        for (const auto& removed : options.env_remove) drop = drop || removed == name;
        if (!drop) env.push_back(std::move(item));
    }
    for (const auto& [name, value] : options.env) env.emplace_back(name).append("=").append(value);
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    pointers.reserve(strings.size() + 1);
    for (auto& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
    return pointers;
}

// Reports errno to the parent through the close-on-exec error pipe, then exits.
[[noreturn]] void report_errno_and_exit(int error_fd) {
    int err = errno;
    ssize_t ignored = ::write(error_fd, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
}

// Child side of fork(): async-signal-safe calls only. Reports an exec failure's errno through
// `error_fd` and exits 127.
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp,
                             const char* cwd, bool new_group, int out_fd, int err_fd,
                             int error_fd) {
    auto fail = [error_fd]() { report_errno_and_exit(error_fd); };
    if (new_group && ::setpgid(0, 0) != 0) fail();
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2}) {
        ::sigaction(sig, &dfl, nullptr);
    }
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0) fail();
    if (::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) fail();
    if (cwd != nullptr && ::chdir(cwd) != 0) fail();
    ::execve(path, argv, envp);
    report_errno_and_exit(error_fd);
}

}  // namespace

std::string ExitStatus::describe() const {
    if (exited) return "exit " + std::to_string(code);
    if (signal == 0) return "unknown";
    return "signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
}

std::string find_executable(const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/";
        candidate += name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return {};
}

ChildProcess::ChildProcess(ChildOptions options) : options_(std::move(options)) {
    if (options_.argv.empty()) throw std::runtime_error("ChildProcess: empty argv");
    std::string path = find_executable(options_.argv[0]);
    if (path.empty())
        throw std::runtime_error("ChildProcess: not found in PATH: " + options_.argv[0]);

    // Everything the child needs is prepared before fork(): the test binary has other threads.
    std::vector<std::string> argv_copy = options_.argv;
    std::vector<std::string> env = build_environment(options_);
    std::vector<char*> argv_ptrs = c_strings(argv_copy);
    std::vector<char*> env_ptrs = c_strings(env);
    std::string cwd = options_.cwd ? options_.cwd->string() : std::string();

    int out_pipe[2];
    int err_pipe[2];
    int error_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2", errno));
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        int err = errno;
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        throw std::runtime_error(errno_text("pipe2", err));
    }
    if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
        int err = errno;
        for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
        throw std::runtime_error(errno_text("pipe2", err));
    }

    pid_t pid = ::fork();
    if (pid == 0) {
        exec_child(path.c_str(), argv_ptrs.data(), env_ptrs.data(),
                   cwd.empty() ? nullptr : cwd.c_str(), options_.new_process_group, out_pipe[1],
                   err_pipe[1], error_pipe[1]);
    }
    int fork_errno = errno;
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    ::close(error_pipe[1]);
    if (pid < 0) {
        for (int fd : {out_pipe[0], err_pipe[0], error_pipe[0]}) ::close(fd);
        throw std::runtime_error(errno_text("fork", fork_errno));
    }
    pid_ = pid;
    if (options_.new_process_group) ::setpgid(pid_, pid_);  // closes the race with the child

    int exec_errno = 0;
    ssize_t n;
    do {
        n = ::read(error_pipe[0], &exec_errno, sizeof exec_errno);
    } while (n < 0 && errno == EINTR);
    ::close(error_pipe[0]);
    if (n > 0) {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        ::close(out_pipe[0]);
        ::close(err_pipe[0]);
        throw std::runtime_error(errno_text("cannot execute " + path, exec_errno));
    }

    out_.fd = out_pipe[0];
    err_.fd = err_pipe[0];
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    reader_ = std::thread([this] { reader_loop(); });
}

ChildProcess::~ChildProcess() {
    stop();
    if (wake_fd_ >= 0) {
        uint64_t one = 1;
        ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
        (void)ignored;
    }
    if (reader_.joinable()) reader_.join();
    for (int fd : {out_.fd, err_.fd, wake_fd_}) {
        if (fd >= 0) ::close(fd);
    }
}

void ChildProcess::absorb(Capture& capture, const char* data, size_t n) {
    capture.raw.append(data, n);
    capture.partial.append(data, n);
    size_t start = 0;
    size_t newline;
    while ((newline = capture.partial.find('\n', start)) != std::string::npos) {
        std::string line = capture.partial.substr(start, newline - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        capture.lines.push_back(std::move(line));
        start = newline + 1;
    }
    capture.partial.erase(0, start);
}

void ChildProcess::reader_loop() {
    char buffer[8192];
    while (true) {
        pollfd fds[3];
        nfds_t count = 0;
        Capture* owners[2] = {nullptr, nullptr};
        {
            std::lock_guard lock(mutex_);
            for (Capture* c : {&out_, &err_}) {
                if (!c->eof) {
                    owners[count] = c;
                    fds[count++] = pollfd{c->fd, POLLIN, 0};
                }
            }
        }
        if (count == 0) return;
        fds[count] = pollfd{wake_fd_, POLLIN, 0};
        int ready = ::poll(fds, count + 1, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[count].revents != 0) return;  // destructor asked us to stop
        for (nfds_t i = 0; i < count; ++i) {
            if (fds[i].revents == 0) continue;
            ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            std::lock_guard lock(mutex_);
            if (n <= 0) {
                Capture& c = *owners[i];
                c.eof = true;
                if (!c.partial.empty()) {
                    c.lines.push_back(c.partial);
                    c.partial.clear();
                }
            } else {
                absorb(*owners[i], buffer, static_cast<size_t>(n));
            }
        }
        changed_.notify_all();
    }
}

bool ChildProcess::reap(bool block) {
    {
        std::lock_guard lock(mutex_);
        if (status_) return true;
    }
    int status = 0;
    pid_t r;
    do {
        r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
        std::lock_guard lock(mutex_);
        status_ = decode_wait_status(status);
        changed_.notify_all();
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        // Someone else reaped it (should not happen): record an unknown status.
        std::lock_guard lock(mutex_);
        status_ = ExitStatus{};
        return true;
    }
    return false;
}

bool ChildProcess::running() { return !reap(/*block=*/false); }

std::optional<ExitStatus> ChildProcess::exit_status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

std::optional<ExitStatus> ChildProcess::wait_exit(Deadline deadline) {
    wait_until([this] { return !running(); }, deadline, std::chrono::milliseconds(5));
    return exit_status();
}

bool ChildProcess::send_signal(int sig) {
    if (!running()) return false;
    return ::kill(pid_, sig) == 0;
}

void ChildProcess::signal_group(int sig) {
    // The group id is our child's pid; the kernel keeps that number reserved while any member
    // of the group lives, so this can only reach processes descended from our child.
    if (options_.new_process_group) ::kill(-pid_, sig);
}

ExitStatus ChildProcess::stop(std::chrono::milliseconds grace, int first_signal) {
    if (running()) {
        ::kill(pid_, first_signal);
        signal_group(first_signal);
        if (!wait_exit(deadline_in(grace))) {
            ::kill(pid_, SIGKILL);
            signal_group(SIGKILL);
            reap(/*block=*/true);
        }
    }
    // Leftover members of the group (e.g. workers of a server whose master died) are ours too.
    if (options_.new_process_group && ::kill(-pid_, 0) == 0) signal_group(SIGKILL);
    return exit_status().value_or(ExitStatus{});
}

std::optional<LineMatch> ChildProcess::wait_for_line(Stream stream, const std::regex& pattern,
                                                     Deadline deadline) {
    std::unique_lock lock(mutex_);
    size_t checked = 0;
    while (true) {
        const Capture& c = capture(stream);
        for (; checked < c.lines.size(); ++checked) {
            std::smatch match;
            if (std::regex_search(c.lines[checked], match, pattern)) {
                LineMatch result{c.lines[checked], {}};
                for (const auto& group : match) result.groups.push_back(group.str());
                return result;
            }
        }
        if (c.eof) return std::nullopt;
        if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) {
            // One last look at lines that arrived together with the timeout.
            if (checked == capture(stream).lines.size()) return std::nullopt;
        }
    }
}

std::vector<std::string> ChildProcess::lines(Stream stream) const {
    std::lock_guard lock(mutex_);
    return capture(stream).lines;
}

std::string ChildProcess::text(Stream stream) const {
    std::lock_guard lock(mutex_);
    return capture(stream).raw;
}

bool ChildProcess::at_eof(Stream stream) const {
    std::lock_guard lock(mutex_);
    return capture(stream).eof;
}

std::string ChildProcess::describe(size_t tail_bytes) const {
    std::ostringstream text;
    for (const auto& arg : options_.argv) text << arg << ' ';
    text << "(pid " << pid_ << "): ";
    std::lock_guard lock(mutex_);
    text << (status_ ? status_->describe() : std::string("running"));
    for (const Capture* c : {&out_, &err_}) {
        const std::string& raw = c->raw;
        text << (c == &out_ ? "\n--- stdout tail ---\n" : "\n--- stderr tail ---\n");
        text << (raw.size() > tail_bytes ? raw.substr(raw.size() - tail_bytes) : raw);
    }
    return text.str();
}

CommandResult run_command(ChildOptions options, Deadline deadline) {
    ChildProcess child(std::move(options));
    CommandResult result;
    if (!child.wait_exit(deadline)) {
        result.timed_out = true;
        child.stop(std::chrono::milliseconds(500), SIGKILL);
    }
    result.status = child.exit_status().value_or(ExitStatus{});
    // The child has exited; its pipes reach EOF unless a grandchild still holds them.
    wait_until([&] { return child.at_eof(Stream::kStdout) && child.at_eof(Stream::kStderr); },
               std::min(deadline, deadline_in(std::chrono::seconds(2))));
    result.out = child.text(Stream::kStdout);
    result.err = child.text(Stream::kStderr);
    return result;
}

}  // namespace passport::testing
