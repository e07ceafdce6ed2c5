#pragma once
// AgentRunner: the `passport` binary under test, started the way an operator would start it.
//
// It appends `--daemon-address 127.0.0.1:<collector port>` (unless told otherwise), waits for
// the line containing "passport: ready" on stderr, and stops the agent with SIGINT, after which
// the agent drains its pipeline and prints `counter <name> <value>` lines. Start-up failures
// throw with the agent's stderr, so a test reports why the agent did not come up.
//
// Owned by one test. The destructor stops a still-running agent (SIGINT, then SIGKILL).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"

namespace passport::testing {

class UdpCollector;

struct AgentOptions {
    std::string agent_path;         // the built passport binary (PASSPORT_AGENT_PATH)
    std::vector<std::string> args;  // selectors, --sampling-rules, …
    // Where documents go. Empty: the collector's address. Set to point the agent elsewhere
    // (e.g. a closed port) while still using a collector for nothing.
    std::string daemon_address;
    std::map<std::string, std::string> env;
    std::chrono::milliseconds ready_timeout = std::chrono::seconds(30);
    std::chrono::milliseconds stop_timeout = std::chrono::seconds(30);
};

// What the agent left behind when it stopped.
struct AgentExit {
    ExitStatus status;
    std::string stderr_text;
    std::map<std::string, uint64_t> counters;  // parsed `counter <name> <value>` lines

    uint64_t counter(const std::string& name) const;
    // Sum of every counter whose name contains all of `parts`.
    uint64_t counter_matching(const std::vector<std::string>& parts) const;
    std::string counters_text() const;  // "a=1 b=2" for failure messages
};

// Parses `counter <name> <value>` lines (anywhere in a line, so log prefixes are tolerated).
std::map<std::string, uint64_t> parse_counters(const std::string& stderr_text);

class AgentRunner {
  public:
    // Starts the agent and waits until it is ready. Throws std::runtime_error (with the agent's
    // stderr) when it exits or stays silent past options.ready_timeout.
    AgentRunner(const UdpCollector& collector, AgentOptions options);
    ~AgentRunner();
    AgentRunner(const AgentRunner&) = delete;
    AgentRunner& operator=(const AgentRunner&) = delete;

    pid_t pid() const { return process_->pid(); }
    bool running() { return process_->running(); }
    std::string stderr_text() const { return process_->text(Stream::kStderr); }
    std::string stdout_text() const { return process_->text(Stream::kStdout); }
    const std::vector<std::string>& argv() const { return process_->argv(); }

    // SIGINT, wait for exit (SIGKILL after options.stop_timeout), parse the counters.
    // Idempotent: later calls return the first result.
    AgentExit stop();

  private:
    AgentOptions options_;
    std::unique_ptr<ChildProcess> process_;
    std::optional<AgentExit> exit_;
};

// Writes nothing; returns the sampling-rules JSON that samples every request (tests must not
// depend on the SDK default of 1/s + 5 %).
std::string sample_everything_rules();

}  // namespace passport::testing
