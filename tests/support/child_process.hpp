#pragma once
// ChildProcess: a program started by a test (a server, curl, the agent), with its stdout and
// stderr captured line by line on a background thread so the child never blocks on a full pipe.
//
// Why: e2e tests drive real, unmodified programs. They must learn things from their output (the
// port a server picked, the agent's "ready" line), and they must clean up after themselves
// without ever touching processes they did not start: stop() signals this pid (and the process
// group it leads, when it was started in a new one), never a name. The child also gets
// PR_SET_PDEATHSIG(SIGKILL), so a crashing test binary does not leave servers behind.
//
// Ownership: the test owns the object; the destructor stops and reaps the child. Methods may be
// called from the test thread while the reader thread appends output (guarded by a mutex).
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/wait.hpp"

namespace passport::testing {

enum class Stream { kStdout, kStderr };

// How a child ended: a normal exit with a code, or death by a signal.
struct ExitStatus {
    bool exited = false;  // true: `code` is valid; false: `signal` is valid
    int code = -1;
    int signal = 0;

    bool success() const { return exited && code == 0; }
    std::string describe() const;  // "exit 0", "signal 9 (Killed)"
};

struct ChildOptions {
    std::vector<std::string> argv;             // argv[0] is looked up in PATH unless it has a '/'
    std::map<std::string, std::string> env;    // added to (or replacing in) the inherited env
    std::vector<std::string> env_remove;       // names removed from the inherited env
    std::optional<std::filesystem::path> cwd;  // working directory of the child
    bool new_process_group = true;             // setpgid(0, 0): the child leads its own group
};

// A line that matched a regex, with its capture groups (groups[0] is the whole match).
struct LineMatch {
    std::string line;
    std::vector<std::string> groups;
};

class ChildProcess {
  public:
    // Starts the program. Throws std::runtime_error when it cannot be executed (the exec error
    // is reported back through a close-on-exec pipe, so a bad path fails here, not later).
    explicit ChildProcess(ChildOptions options);
    ~ChildProcess();  // stop() with the default grace period, then joins the reader
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return pid_; }
    const std::vector<std::string>& argv() const { return options_.argv; }

    // True while the child has not exited. Reaps it (no zombies) when it has.
    bool running();
    // The exit status once the child has been reaped.
    std::optional<ExitStatus> exit_status() const;
    // Waits for the child to exit by itself; nullopt if it is still running at `deadline`.
    std::optional<ExitStatus> wait_exit(Deadline deadline);

    // Sends `sig` to this pid only. Returns false when the child has already been reaped.
    bool send_signal(int sig);

    // Stops the child: `first_signal` to the pid (and to its process group if it leads one),
    // SIGKILL to both if it has not exited after `grace`. Idempotent; returns the exit status.
    ExitStatus stop(std::chrono::milliseconds grace = std::chrono::seconds(5),
                    int first_signal = SIGTERM);

    // Waits until some captured line of `stream` matches `pattern` (std::regex_search). Returns
    // early with nullopt when the stream reached EOF without a match.
    std::optional<LineMatch> wait_for_line(Stream stream, const std::regex& pattern,
                                           Deadline deadline);

    // Captured output so far: complete lines (a trailing partial line is included once the
    // stream reached EOF), or the raw text.
    std::vector<std::string> lines(Stream stream) const;
    std::string text(Stream stream) const;
    // True once the stream was closed by every writer (child and any inheriting grandchildren).
    bool at_eof(Stream stream) const;

    // "argv… (pid N): <status>; stderr tail" for failure messages.
    std::string describe(size_t tail_bytes = 2000) const;

  private:
    struct Capture {
        int fd = -1;
        std::string raw;
        std::vector<std::string> lines;
        std::string partial;
        bool eof = false;
    };

    void reader_loop();
    void absorb(Capture& capture, const char* data, size_t n);
    Capture& capture(Stream stream) { return stream == Stream::kStdout ? out_ : err_; }
    const Capture& capture(Stream stream) const { return stream == Stream::kStdout ? out_ : err_; }
    bool reap(bool block);
    void signal_group(int sig);

    ChildOptions options_;
    pid_t pid_ = -1;
    int wake_fd_ = -1;  // eventfd that tells the reader thread to quit

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    Capture out_;
    Capture err_;
    std::optional<ExitStatus> status_;
    std::thread reader_;
};

// Result of a command run to completion.
struct CommandResult {
    ExitStatus status;
    std::string out;
    std::string err;
    bool timed_out = false;  // it was still running at the deadline and was killed
};

// Runs a command to completion (killing it at `deadline`) and returns its output.
CommandResult run_command(ChildOptions options, Deadline deadline);

// Absolute path of `name` found in PATH (or `name` itself when it contains a '/'); empty if none.
std::string find_executable(const std::string& name);

}  // namespace passport::testing
