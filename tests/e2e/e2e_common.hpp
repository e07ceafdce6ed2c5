#pragma once
// Shared fixture for the e2e tests: real unmodified programs → the built `passport` binary →
// a UDP collector. Each test gets a temp dir, a collector, a sampling-rules file that samples
// everything, and at most one agent; TearDown stops the agent (SIGINT), and fails the test if
// it crashed, exited non-zero, or sent any datagram that is not a valid X-Ray document.
//
// Header-only on purpose: tests/CMakeLists.txt builds tests/e2e/*_test.cpp into one binary and
// defines PASSPORT_AGENT_PATH for it only.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/agent_runner.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/net.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_servers.hpp"
#include "tests/support/udp_collector.hpp"
#include "tests/support/wait.hpp"
#include "tests/support/xray_checks.hpp"

#ifndef PASSPORT_AGENT_PATH
#error "PASSPORT_AGENT_PATH must be defined (tests/CMakeLists.txt does it for e2e tests)"
#endif

namespace passport::testing::e2e {

// How long a document may take to reach the collector after the response: the agent batches
// ring-buffer reads on a timer, so this is generous; tests return as soon as it arrives.
inline constexpr auto kDocumentTimeout = std::chrono::seconds(15);

// Slack for comparing times taken in two processes: the callee's last write may return after
// the caller's read already did (the README's ± 50 ms convention).
inline constexpr double kCrossProcessSlack = 0.05;

inline std::string agent_path() { return PASSPORT_AGENT_PATH; }

// The node binary on PATH, else the distribution's.
inline std::string node_path() {
    std::string path = find_executable("node");
    return path.empty() ? "/usr/bin/node" : path;
}

// The number at `dotted` in `node`, or -1 when there is none.
// The npm packages the tests use (tests/fixtures/npm, filled by .ci/install-npm.sh).
inline std::filesystem::path npm_modules() {
    return std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "fixtures" / "npm" /
           "node_modules";
}

// Why the tests that run the X-Ray SDK for Node cannot run here; "" when they can.
inline std::string xray_sdk_missing() {
    if (find_executable("node").empty()) return "node is not installed";
    if (!std::filesystem::exists(npm_modules() / "aws-xray-sdk-express" / "package.json"))
        return "the X-Ray SDK npm packages are not installed in " + npm_modules().string() +
               " (run .ci/install-deps.sh, which runs .ci/install-npm.sh)";
    return "";
}

inline double num(const nlohmann::json& node, std::string_view dotted) {
    const nlohmann::json v = field(node, dotted);
    return v.is_number() ? v.get<double>() : -1;
}

// The string at `dotted` in `node`, or "" when there is none.
inline std::string str(const nlohmann::json& node, std::string_view dotted) {
    const nlohmann::json v = field(node, dotted);
    return v.is_string() ? v.get<std::string>() : std::string();
}

// The header an X-Ray SDK (or Passport) sends for a sampled call: all three keys, canonical order.
inline std::string trace_header(std::string_view root, std::string_view parent) {
    return "Root=" + std::string(root) + ";Parent=" + std::string(parent) + ";Sampled=1";
}

inline std::filesystem::path fixture(std::string_view name) {
    return std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "e2e" / "fixtures" / name;
}

// A path segment no other request in the run uses, e.g. "t3a9f0c12".
inline std::string unique_tag() {
    static std::atomic<unsigned> counter{0};
    static const unsigned seed = std::random_device{}();
    char text[32];
    std::snprintf(text, sizeof text, "t%u%08x", counter++, seed);
    return text;
}

// True when `value` appears under a key named `key` anywhere inside `doc`.
inline bool json_has_key_value(const nlohmann::json& doc, std::string_view key,
                               const nlohmann::json& value) {
    if (doc.is_object()) {
        for (auto it = doc.begin(); it != doc.end(); ++it) {
            if (it.key() == key && it.value() == value) return true;
            if (json_has_key_value(it.value(), key, value)) return true;
        }
    } else if (doc.is_array()) {
        for (const auto& item : doc) {
            if (json_has_key_value(item, key, value)) return true;
        }
    }
    return false;
}

// Server options that make the service name deterministic: the test's own environment must not
// leak AWS_XRAY_TRACING_NAME / OTEL_SERVICE_NAME into servers that should not have them.
inline ServerOptions server_env(std::map<std::string, std::string> env = {}) {
    ServerOptions options;
    for (const char* name : {"AWS_XRAY_TRACING_NAME", "OTEL_SERVICE_NAME"}) {
        if (!env.count(name)) options.env_remove.emplace_back(name);
    }
    options.env = std::move(env);
    return options;
}

// hop.py (tests/e2e/fixtures, copied into `dir` beforehand) as a leaf named `name` in network
// namespace `ns`, listening on `ip`: the child and its "ip:port", or an empty authority when it
// did not start listening (the child's describe() says why).
struct LeafHop {
    std::unique_ptr<ChildProcess> child;
    std::string authority;
};

inline LeafHop start_leaf_hop(const NetNs& ns, const std::filesystem::path& dir,
                              const std::string& name, const std::string& ip) {
    const ServerOptions env =
        server_env({{"AWS_XRAY_TRACING_NAME", name}, {"PYTHONUNBUFFERED", "1"}});
    LeafHop hop;
    hop.child = std::make_unique<ChildProcess>(ChildOptions{
        ns.wrap({python3_path(), "hop.py", name, ip}), env.env, env.env_remove, dir, true});
    auto line = hop.child->wait_for_line(Stream::kStdout, std::regex(R"(listening on port (\d+))"),
                                         deadline_in(std::chrono::seconds(20)));
    if (line) hop.authority = ip + ":" + line->groups[1];
    return hop;
}

// nginx in network namespace `ns` running `config`; `prefix` (created) holds the configuration
// file and the logs.
inline std::unique_ptr<ChildProcess> start_nginx_in(const NetNs& ns,
                                                    const std::filesystem::path& prefix,
                                                    const std::string& config) {
    std::filesystem::create_directories(prefix);
    const std::filesystem::path conf = prefix / "nginx.conf";
    std::ofstream(conf) << config;
    const ServerOptions env = server_env();
    return std::make_unique<ChildProcess>(
        ChildOptions{ns.wrap({"/usr/sbin/nginx", "-p", prefix.string() + "/", "-e",
                              (prefix / "error.log").string(), "-c", conf.string()}),
                     env.env, env.env_remove, prefix, true});
}

class E2eTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "e2e tests load BPF programs: they need root (euid is " << ::geteuid()
                         << ")";
        }
        dir_ = std::make_unique<TempDir>("passport-e2e-");
        rules_path_ = dir_->write_file("sampling-rules.json", sample_everything_rules());
    }

    void TearDown() override {
        if (agent_) {
            AgentExit exit = agent_->stop();
            EXPECT_TRUE(exit.status.success())
                << "agent did not exit cleanly on SIGINT: " << exit.status.describe()
                << "\n--- agent stderr ---\n"
                << tail(exit.stderr_text);
            collector_.sync(deadline_in(std::chrono::seconds(5)));
            if (HasFailure()) {
                // The agent's own account of what it dropped is the first clue.
                std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;
            }
        }
        // Reports (once) every datagram that is not a valid X-Ray document.
        collector_.documents();
    }

    TempDir& dir() { return *dir_; }
    UdpCollector& collector() { return collector_; }
    const std::filesystem::path& rules_path() const { return rules_path_; }

    // Starts the agent with `args` plus the sample-everything rules (unless the args carry
    // their own --sampling-rules) and `--sampling local` (unless they carry --sampling: the
    // collector has no X-Ray sampling proxy; centralized_sampling_e2e_test.cpp brings one).
    // Fails the test (fatally) if it does not become ready.
    AgentRunner& start_agent(std::vector<std::string> args, AgentOptions options = {}) {
        bool has_rules = false;
        bool has_source = false;
        for (const auto& arg : args) {
            has_rules = has_rules || arg == "--sampling-rules";
            has_source = has_source || arg == "--sampling";
        }
        if (!has_rules) {
            args.emplace_back("--sampling-rules");
            args.push_back(rules_path_.string());
        }
        if (!has_source) {
            args.emplace_back("--sampling");
            args.emplace_back("local");
        }
        options.agent_path = agent_path();
        options.args = std::move(args);
        agent_ = std::make_unique<AgentRunner>(collector_, std::move(options));
        return *agent_;
    }

    AgentRunner& agent() { return *agent_; }

    // SIGKILL, as the OOM killer would: the agent gets no chance to clean up. Waits for it to be
    // gone; the test owns no agent afterwards.
    AgentExit kill_agent() {
        ::kill(agent_->pid(), SIGKILL);
        AgentExit exit = agent_->stop();
        agent_.reset();
        return exit;
    }

    // Stops the agent (it drains its pipeline on SIGINT) and waits until the collector holds
    // everything it sent: after this, "no document for X" is a fact, not a race.
    AgentExit stop_agent_and_sync() {
        AgentExit exit = agent_->stop();
        EXPECT_TRUE(exit.status.success()) << "agent exit: " << exit.status.describe() << "\n"
                                           << tail(exit.stderr_text);
        EXPECT_TRUE(collector_.sync(deadline_in(std::chrono::seconds(5))));
        return exit;
    }

    // Waits for the document of the request whose URL ends with `suffix`.
    std::optional<nlohmann::json> wait_for_url(const std::string& suffix) {
        return collector_.wait_for(
            [&](const nlohmann::json& d) { return url_ends_with(d, suffix); },
            deadline_in(kDocumentTimeout));
    }

    // Agent state for failure messages.
    std::string agent_diagnostics() {
        std::string text = "documents so far: " + std::to_string(collector_.count());
        for (const auto& d : collector_.datagrams()) text += "\n  " + d.raw.substr(0, 400);
        if (agent_) {
            text += std::string("\nagent ") + (agent_->running() ? "running" : "NOT running") +
                    "; stderr:\n" + tail(agent_->stderr_text());
        }
        return text;
    }

    static std::string tail(const std::string& text, size_t n = 6000) {
        return text.size() > n ? "…" + text.substr(text.size() - n) : text;
    }

  private:
    std::unique_ptr<TempDir> dir_;
    std::filesystem::path rules_path_;
    UdpCollector collector_;
    std::unique_ptr<AgentRunner> agent_;
};

}  // namespace passport::testing::e2e
