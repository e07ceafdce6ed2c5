#pragma once
// Real, unmodified HTTP servers for e2e tests, started on 127.0.0.1 with a port they pick
// themselves (or one picked for them) and stopped by pid when the object dies:
//   - Python's stdlib `http.server` serving a directory (port parsed from its banner),
//   - any script server that prints "listening on port N" (the fixtures in tests/e2e/fixtures),
//   - nginx with a generated config in a temp dir (master + forked worker processes).
// Owned by one test; not thread-safe.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/child_process.hpp"

namespace passport::testing {

class TempDir;

struct ServerOptions {
    std::map<std::string, std::string> env;  // e.g. AWS_XRAY_TRACING_NAME
    std::vector<std::string> env_remove;
    std::chrono::milliseconds start_timeout = std::chrono::seconds(20);
};

class TestServer {
  public:
    TestServer(std::unique_ptr<ChildProcess> process, uint16_t port, std::string host);
    virtual ~TestServer();
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    pid_t pid() const { return process_->pid(); }
    uint16_t port() const { return port_; }
    const std::string& host() const { return host_; }
    // "http://<host>:<port>" + path
    std::string url(std::string_view path) const;
    ChildProcess& process() { return *process_; }
    bool running() { return process_->running(); }
    ExitStatus stop() { return process_->stop(); }

  private:
    std::unique_ptr<ChildProcess> process_;
    uint16_t port_;
    std::string host_;
};

// The stdlib static file server over `directory`: `python3 -m http.server --bind 127.0.0.1 0`.
// With http11 it runs with `--protocol HTTP/1.1` (keep-alive; note that its error responses,
// e.g. 404, still close the connection); otherwise it is the default HTTP/1.0 server.
std::unique_ptr<TestServer> start_python_http_server(const std::filesystem::path& directory,
                                                     const ServerOptions& options = {},
                                                     bool http11 = false);

// Starts argv (with cwd) and waits for "listening on port N" on its stdout.
std::unique_ptr<TestServer> start_script_server(const std::vector<std::string>& argv,
                                                const std::filesystem::path& cwd,
                                                const ServerOptions& options = {});

// nginx: `daemon off; master_process on; worker_processes 1;` with every path in `dir`.
// Locations (all via `return`): /ok/ 200 "ok\n", /missing/ 404 "not found\n",
// /throttle/ 429 "slow down\n", /boom/ 500 "boom\n", /empty/ 204, anything else 200 "root\n".
class NginxServer : public TestServer {
  public:
    using TestServer::TestServer;
    // Worker processes (children of the master), found through /proc.
    std::vector<pid_t> worker_pids() const;
    // SIGHUP: the master re-reads the config and forks new workers; waits until every old
    // worker is gone and a new one is up. Returns the new workers (empty on timeout).
    std::vector<pid_t> reload(Deadline deadline);
};

inline constexpr std::string_view kNginxOkBody = "ok\n";
inline constexpr std::string_view kNginxNotFoundBody = "not found\n";
inline constexpr std::string_view kNginxThrottleBody = "slow down\n";
inline constexpr std::string_view kNginxBoomBody = "boom\n";
inline constexpr std::string_view kNginxRootBody = "root\n";

// Empty when nginx can be run here, otherwise the reason (for GTEST_SKIP).
std::string nginx_unavailable_reason();
// The start of an nginx.conf that keeps every file nginx writes inside `dir` and runs one
// worker in the foreground; it ends inside the open `http {` block for the caller's servers.
std::string nginx_config_preamble(const std::filesystem::path& dir);
std::unique_ptr<NginxServer> start_nginx(const TempDir& dir, const ServerOptions& options = {});

// Children of `parent` (any state but zombie), by scanning /proc/*/stat.
std::vector<pid_t> child_pids(pid_t parent);

}  // namespace passport::testing
