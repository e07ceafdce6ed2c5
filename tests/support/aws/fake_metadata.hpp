#pragma once
// The stand-in for the AWS metadata endpoints (fake_metadata_server.py next to this file: IMDS
// and the ECS task metadata endpoint v4, answering from tests/fixtures/aws/ as the AWS docs show
// them, or misbehaving in the --mode asked for), run by a test. Header-only.
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/child_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace passport::testing {

// The stand-in, on `host`:`port` (0: any port), optionally inside a network namespace.
class FakeMetadata {
  public:
    explicit FakeMetadata(const std::string& mode, const std::vector<std::string>& only = {},
                          const NetNs* ns = nullptr, const std::string& host = "127.0.0.1",
                          int port = 0)
        : dir_("passport-aws-") {
        std::vector<std::string> argv = {python3_path(),
                                         (std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" /
                                          "support" / "aws" / "fake_metadata_server.py")
                                             .string(),
                                         "--mode",
                                         mode,
                                         "--host",
                                         host,
                                         "--port",
                                         std::to_string(port),
                                         "--log",
                                         log_path().string()};
        for (const auto& prefix : only) {
            argv.emplace_back("--only");
            argv.push_back(prefix);
        }
        if (ns) argv = ns->wrap(argv);
        process_ = std::make_unique<ChildProcess>(
            ChildOptions{argv, {{"PYTHONUNBUFFERED", "1"}}, {}, {}, true});
        auto line =
            process_->wait_for_line(Stream::kStdout, std::regex(R"(listening on port (\d+))"),
                                    deadline_in(std::chrono::seconds(30)));
        if (line) port_ = std::stoi(line->groups[1]);
        host_ = host;
    }

    bool ok() const { return port_ > 0; }
    std::string url() const { return "http://" + host_ + ":" + std::to_string(port_); }
    std::string describe() const { return process_->describe(); }
    std::filesystem::path log_path() const { return dir_.path() / "requests.log"; }

    std::vector<nlohmann::json> requests() const {
        std::vector<nlohmann::json> out;
        std::ifstream in(log_path());
        for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
        return out;
    }

  private:
    TempDir dir_;
    std::string host_;
    int port_ = 0;
    std::unique_ptr<ChildProcess> process_;
};

// A fixture document of the stand-in (tests/fixtures/aws/NAME).
inline nlohmann::json aws_fixture(const std::string& name) {
    std::ifstream in(std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "fixtures" / "aws" /
                     name);
    return nlohmann::json::parse(in);
}

}  // namespace passport::testing
