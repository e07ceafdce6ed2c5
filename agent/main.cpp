// passport: entry point. Sets up logging, parses options and runs the agent, the demo or
// check-tls.
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

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

// --log-format json: one JSON object per line, {"time", "level", "logger", "message"}; a message
// of several lines (the start report) becomes one object per line. nlohmann_json escapes the
// text (invalid UTF-8 replaced), so every line parses whatever the message holds.
class JsonLines : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        const std::string time = iso_time(msg.time);
        const auto level = spdlog::level::to_string_view(msg.level);
        std::string_view text(msg.payload.data(), msg.payload.size());
        while (true) {
            const auto eol = text.find('\n');
            nlohmann::ordered_json line = {
                {"time", time},
                {"level", std::string_view(level.data(), level.size())},
                {"logger", std::string_view(msg.logger_name.data(), msg.logger_name.size())},
                {"message", text.substr(0, eol)}};
            const std::string out =
                line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            dest.append(out.data(), out.data() + out.size());
            dest.push_back('\n');
            if (eol == std::string_view::npos || eol + 1 == text.size()) break;
            text.remove_prefix(eol + 1);
        }
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonLines>();
    }

  private:
    // RFC 3339 UTC with milliseconds: 2026-12-07T11:14:57.123Z.
    static std::string iso_time(spdlog::log_clock::time_point t) {
        const auto since = t.time_since_epoch();
        const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since).count();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
        std::tm tm{};
        ::gmtime_r(&secs, &tm);
        std::array<char, 32> buf{};
        const size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
        return std::string(buf.data(), n) + "." + std::to_string(1000 + ms).substr(1) + "Z";
    }
};

// Both loggers write JSON lines from now on.
void use_json_logs() {
    spdlog::default_logger()->set_formatter(std::make_unique<JsonLines>());
    if (auto report = spdlog::get(passport::agent::kReportLogger))
        report->set_formatter(std::make_unique<JsonLines>());
}

// --log-format json on the command line, seen before the options are parsed, so that errors in
// them are JSON lines too.
bool json_logs_asked(const std::vector<std::string>& args) {
    for (size_t i = 0; i < args.size(); i++) {
        if (args[i] == "--log-format=json" ||
            (args[i] == "--log-format" && i + 1 < args.size() && args[i + 1] == "json"))
            return true;
    }
    return false;
}

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
    if (json_logs_asked(args)) use_json_logs();
    // The environment and the command line as at start; SIGHUP reads them (and the file) again.
    const char* env_daemon = std::getenv("AWS_XRAY_DAEMON_ADDRESS");
    passport::agent::ReloadSource reload;
    reload.read = [args, env = std::string(env_daemon ? env_daemon : "")](
                      passport::agent::Settings& settings) {
        return passport::agent::parse_args(args, env.empty() ? nullptr : env.c_str(), &settings);
    };
    auto cfg = reload.read(reload.settings);
    if (!cfg) {
        spdlog::error("{}", cfg.error());
        return 2;
    }
    if (cfg->log_format == "json") use_json_logs();
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
    return passport::agent::run_agent(*cfg, nullptr, nullptr, std::move(reload));
}
