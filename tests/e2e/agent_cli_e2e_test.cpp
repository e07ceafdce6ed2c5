// The agent's command line as an operator meets it: --help, --version, and refusals with a
// message naming what is wrong. No tracing happens here, so no collector traffic is expected.
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

CommandResult run_agent(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {agent_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(ChildOptions{argv, {}, {"AWS_XRAY_DAEMON_ADDRESS"}, {}, true},
                       deadline_in(std::chrono::seconds(30)));
}

TEST(AgentCliE2E, HelpDescribesTheContract) {
    CommandResult result = run_agent({"--help"});
    ASSERT_FALSE(result.timed_out);
    EXPECT_TRUE(result.status.success()) << result.status.describe() << result.err;
    const std::string text = result.out + result.err;
    for (const char* option : {"--daemon-address", "--output", "--pid", "--exe", "--port",
                               "--service-name", "--sampling-rules", "--version"}) {
        EXPECT_NE(text.find(option), std::string::npos) << "--help does not mention " << option;
    }
}

TEST(AgentCliE2E, VersionPrintsTheProjectVersion) {
    CommandResult result = run_agent({"--version"});
    ASSERT_FALSE(result.timed_out);
    EXPECT_TRUE(result.status.success()) << result.status.describe() << result.err;
    EXPECT_NE((result.out + result.err).find(PASSPORT_VERSION), std::string::npos)
        << "want " << PASSPORT_VERSION << ", got: " << result.out << result.err;
}

TEST(AgentCliE2E, BadArgumentsAreRefusedWithAReason) {
    struct Case {
        std::vector<std::string> args;
        const char* must_mention;
    };
    for (const Case& c : {
             Case{{"--no-such-option"}, "--no-such-option"},
             Case{{"--pid", "abc"}, "--pid"},
             Case{{"--pid"}, "--pid"},
             Case{{"--port", "70000"}, "--port"},
             Case{{"--daemon-address", "not an address"}, "address"},
             Case{{"--sampling-rules", "/nonexistent/passport-rules.json"},
                  "/nonexistent/passport-rules.json"},
         }) {
        SCOPED_TRACE(c.args.front());
        CommandResult result = run_agent(c.args);
        ASSERT_FALSE(result.timed_out) << "the agent did not refuse, it ran";
        EXPECT_TRUE(result.status.exited && result.status.code != 0)
            << result.status.describe() << "\n"
            << result.err;
        EXPECT_NE(result.err.find(c.must_mention), std::string::npos)
            << "stderr does not say what is wrong:\n"
            << result.err;
    }
}

TEST(AgentCliE2E, MalformedSamplingRulesAreRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "the agent may check privileges first; needs root";
    TempDir dir("passport-cli-");
    for (const char* rules :
         {"{not json", R"({"version":7,"default":{"fixed_target":1,"rate":0.05}})",
          R"({"version":2,"rules":[]})",
          R"({"version":2,"default":{"fixed_target":-1,"rate":2}})"}) {
        SCOPED_TRACE(rules);
        auto path = dir.write_file("rules.json", rules);
        CommandResult result = run_agent({"--sampling-rules", path.string(), "--pid", "1"});
        ASSERT_FALSE(result.timed_out) << "the agent accepted bad rules and ran";
        EXPECT_TRUE(result.status.exited && result.status.code != 0) << result.status.describe();
        EXPECT_NE(result.err.find("rules"), std::string::npos) << result.err;
    }
}

}  // namespace
}  // namespace passport::testing::e2e
