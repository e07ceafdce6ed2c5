#include "tests/support/agent_runner.hpp"

#include <regex>
#include <sstream>
#include <stdexcept>

#include "tests/support/udp_collector.hpp"

namespace passport::testing {

uint64_t AgentExit::counter(const std::string& name) const {
    auto it = counters.find(name);
    return it == counters.end() ? 0 : it->second;
}

uint64_t AgentExit::counter_matching(const std::vector<std::string>& parts) const {
    uint64_t sum = 0;
    for (const auto& [name, value] : counters) {
        bool all = true;
        for (const auto& part : parts) all = all && name.find(part) != std::string::npos;
        if (all) sum += value;
    }
    return sum;
}

std::string AgentExit::counters_text() const {
    std::ostringstream text;
    for (const auto& [name, value] : counters) text << name << '=' << value << ' ';
    return text.str();
}

std::map<std::string, uint64_t> parse_counters(const std::string& stderr_text) {
    static const std::regex line_pattern(R"((?:^|\s)counter\s+(\S+)\s+(\d+)\s*$)");
    std::map<std::string, uint64_t> counters;
    std::istringstream lines(stderr_text);
    std::string line;
    while (std::getline(lines, line)) {
        std::smatch match;
        if (std::regex_search(line, match, line_pattern)) {
            counters[match[1].str()] = std::stoull(match[2].str());
        }
    }
    return counters;
}

AgentRunner::AgentRunner(const UdpCollector& collector, AgentOptions options)
    : options_(std::move(options)) {
    if (options_.agent_path.empty()) throw std::runtime_error("AgentRunner: no agent path");
    std::vector<std::string> argv = {options_.agent_path};
    argv.insert(argv.end(), options_.args.begin(), options_.args.end());
    argv.emplace_back("--daemon-address");
    argv.push_back(options_.daemon_address.empty() ? collector.address() : options_.daemon_address);
    ChildOptions child;
    child.argv = argv;
    child.env = options_.env;
    // The agent must take its daemon address from the flag, not from the test's environment.
    child.env_remove = {"AWS_XRAY_DAEMON_ADDRESS"};
    process_ = std::make_unique<ChildProcess>(std::move(child));

    // Text logs, or --log-format json.
    static const std::regex ready(R"(passport: ready|"logger":"passport","message":"ready")");
    auto line =
        process_->wait_for_line(Stream::kStderr, ready, deadline_in(options_.ready_timeout));
    if (!line) {
        bool alive = process_->running();
        if (alive) process_->stop(std::chrono::seconds(5), SIGINT);
        throw std::runtime_error(
            std::string("agent did not print 'passport: ready' ") +
            (alive ? "within " + std::to_string(options_.ready_timeout.count()) + " ms"
                   : "before exiting") +
            ": " + process_->describe(8000));
    }
}

AgentRunner::~AgentRunner() { stop(); }

AgentExit AgentRunner::stop() {
    if (exit_) return *exit_;
    AgentExit result;
    if (process_->running()) {
        process_->send_signal(SIGINT);
        if (!process_->wait_exit(deadline_in(options_.stop_timeout))) {
            process_->stop(std::chrono::milliseconds(100), SIGKILL);
        }
    }
    result.status = process_->exit_status().value_or(ExitStatus{});
    // Wait for the reader to see EOF so the counter lines printed just before exit are in.
    wait_until([this] { return process_->at_eof(Stream::kStderr); },
               deadline_in(std::chrono::seconds(5)));
    result.stderr_text = process_->text(Stream::kStderr);
    result.counters = parse_counters(result.stderr_text);
    exit_ = result;
    return result;
}

std::string sample_everything_rules() {
    return R"({"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]})";
}

}  // namespace passport::testing
