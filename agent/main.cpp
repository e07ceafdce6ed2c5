// passport: entry point. Parses options and runs either the agent or the demo.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "agent/config.hpp"
#include "agent/demo.hpp"
#include "agent/tls_elf.hpp"

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "check-tls") {
        return passport::agent::run_check_tls(
            std::vector<std::string>(args.begin() + 1, args.end()));
    }
    auto cfg = passport::agent::parse_args(args, std::getenv("AWS_XRAY_DAEMON_ADDRESS"));
    if (!cfg) {
        std::fprintf(stderr, "passport: %s\n", cfg.error().c_str());
        return 2;
    }
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
