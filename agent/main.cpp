// passport: entry point. Sets up logging, parses options and runs the agent, the demo or
// check-tls.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "agent/demo.hpp"
#include "agent/tls_elf.hpp"

namespace {

// "%*" in a pattern: "LEVEL: " for every level but info, whose lines are the agent's plain
// narrative ("passport: ready"), so warnings and errors stand out and info lines stay as written.
class LevelTag : public spdlog::custom_flag_formatter {
  public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        if (msg.level == spdlog::level::info) return;
        const auto name = spdlog::level::to_string_view(msg.level);
        dest.append(name.data(), name.data() + name.size());
        dest.push_back(':');
        dest.push_back(' ');
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<LevelTag>();
    }
};

// Everything the agent says goes to stderr (stdout carries --output - documents and the demo's
// output), unbuffered line by line, so nothing is lost when the agent is killed.
// Diagnostics: "passport: [LEVEL: ]message"; the start report and the counters: as written.
void setup_logging() {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<LevelTag>('*').set_pattern("passport: %*%v");
    auto logger = std::make_shared<spdlog::logger>(
        "passport", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_formatter(std::move(formatter));
    spdlog::set_default_logger(logger);

    auto report = std::make_shared<spdlog::logger>(
        passport::agent::kReportLogger, std::make_shared<spdlog::sinks::stderr_sink_mt>());
    report->set_pattern("%v");
    spdlog::register_logger(report);
}

}  // namespace

int main(int argc, char** argv) {
    setup_logging();
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "check-tls") {
        return passport::agent::run_check_tls(
            std::vector<std::string>(args.begin() + 1, args.end()));
    }
    auto cfg = passport::agent::parse_args(args, std::getenv("AWS_XRAY_DAEMON_ADDRESS"));
    if (!cfg) {
        spdlog::error("{}", cfg.error());
        return 2;
    }
    spdlog::set_level(cfg->verbose ? spdlog::level::debug : spdlog::level::info);
    if (cfg->show_help) {
        std::fputs(passport::agent::usage().c_str(), stdout);
        return 0;
    }
    if (cfg->show_version) {
        std::printf("passport %s\n", PASSPORT_VERSION);
        return 0;
    }
    if (cfg->demo) return passport::agent::run_demo(*cfg, argv[0]);
    return passport::agent::run_agent(*cfg);
}
