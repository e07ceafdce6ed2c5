#include "agent/config.hpp"

#include <gtest/gtest.h>

namespace passport::agent {
namespace {

TEST(AgentConfig, DefaultsToLocalDaemonAndTraceAll) {
    auto c = parse_args({}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->daemon_address, "127.0.0.1:2000");
    EXPECT_TRUE(c->trace_all());
}

TEST(AgentConfig, EnvironmentDaemonAddressAndFlagPrecedence) {
    auto c = parse_args({}, "udp:10.0.0.5:2001 tcp:10.0.0.5:2000");
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->daemon_address, "udp:10.0.0.5:2001 tcp:10.0.0.5:2000");
    c = parse_args({"--daemon-address", "127.0.0.1:3000"}, "10.0.0.5:2000");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->daemon_address, "127.0.0.1:3000");
    EXPECT_FALSE(parse_args({"--daemon-address", "nonsense"}, nullptr).ok());
    EXPECT_FALSE(parse_args({}, "host:notaport").ok());
}

TEST(AgentConfig, SecretsFlags) {
    auto c = parse_args({}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->redact);
    EXPECT_FALSE(c->export_process_args);
    EXPECT_FALSE(c->record_raw);
    EXPECT_TRUE(c->redact_names.empty());
    c = parse_args({"--no-redact", "--redact-query-param", "code", "--redact-query-param=state",
                    "--export-process-args", "--record", "/tmp/r", "--record-raw"},
                   nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_FALSE(c->redact);
    EXPECT_EQ(c->redact_names, (std::vector<std::string>{"code", "state"}));
    EXPECT_TRUE(c->export_process_args);
    EXPECT_TRUE(c->record_raw);
    EXPECT_FALSE(parse_args({"--redact-query-param"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--redact-query-param="}, nullptr).ok());
    EXPECT_NE(usage().find("--export-process-args"), std::string::npos);
}

TEST(AgentConfig, OutputAloneReplacesUdp) {
    auto c = parse_args({"--output", "-"}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->daemon_address.empty());
    c = parse_args({"--output=-", "--daemon-address=127.0.0.1:2000"}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->daemon_address, "127.0.0.1:2000");
    EXPECT_EQ(c->output, "-");
}

TEST(AgentConfig, SelectorsAndValidation) {
    auto c =
        parse_args({"--pid", "12", "--exe", "*nginx*", "--exe", "node", "--port", "8080"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->pids, std::vector<uint32_t>{12});
    EXPECT_EQ(c->exe_globs.size(), 2u);
    EXPECT_EQ(c->ports, std::vector<uint16_t>{8080});
    EXPECT_FALSE(c->trace_all());
    EXPECT_FALSE(parse_args({"--pid", "abc"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--pid", "0"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--port", "70000"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--pid"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--ringbuf-mb", "3"}, nullptr).ok());
    auto bad = parse_args({"--frobnicate"}, nullptr);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("--frobnicate"), std::string::npos);
}

TEST(AgentConfig, MemoryBudget) {
    auto d = parse_args({}, nullptr);
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->memory_budget_mb, 256u);
    auto c = parse_args({"--memory-budget-mb", "32"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->memory_budget_mb, 32u);
    EXPECT_FALSE(parse_args({"--memory-budget-mb", "lots"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--memory-budget-mb"}, nullptr).ok());
}

TEST(AgentConfig, DemoSubcommandHelpVersion) {
    auto c = parse_args({"demo", "--verbose"}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->demo);
    EXPECT_TRUE(parse_args({"--help"}, nullptr)->show_help);
    EXPECT_TRUE(parse_args({"--version"}, nullptr)->show_version);
}

TEST(AgentConfig, ExeGlobMatching) {
    EXPECT_TRUE(exe_matches("nginx", "/usr/sbin/nginx", "nginx"));
    EXPECT_TRUE(exe_matches("/usr/sbin/*", "/usr/sbin/nginx", ""));
    EXPECT_TRUE(exe_matches("python3*", "/usr/bin/python3.11", "python3"));
    EXPECT_FALSE(exe_matches("node", "/usr/bin/python3.11", "python3"));
    EXPECT_TRUE(exe_matches("node", "", "node")) << "comm when the exe link is unreadable";
}

TEST(AgentConfig, InjectionOptions) {
    auto c = parse_args({}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->inject) << "injection is on by default";
    c = parse_args({"--no-inject", "--inject-deny", "6379", "--inject-deny=10.0.0.0/8",
                    "--inject-deny", "fd00::/8", "--inject-deny", "192.0.2.7"},
                   nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_FALSE(c->inject);
    EXPECT_EQ(c->inject_deny.size(), 4u);
    auto port = parse_deny("6379");
    ASSERT_TRUE(port.ok());
    EXPECT_TRUE(port->is_port);
    EXPECT_EQ(port->port, 6379);
    auto v4 = parse_deny("10.0.0.0/8");
    ASSERT_TRUE(v4.ok());
    EXPECT_EQ(v4->prefix, 8u);
    EXPECT_EQ(v4->addr[0], 10);
    auto host = parse_deny("192.0.2.7");
    ASSERT_TRUE(host.ok());
    EXPECT_EQ(host->prefix, 32u);
    auto v6 = parse_deny("fd00::/8");
    ASSERT_TRUE(v6.ok());
    EXPECT_EQ(v6->prefix, 8u);
    EXPECT_EQ(v6->addr[0], 0xfd);
    for (const char* bad :
         {"0", "70000", "10.0.0.0/33", "fd00::/129", "example.com", "10.0.0.0/", ""})
        EXPECT_FALSE(parse_args({"--inject-deny", bad}, nullptr).ok()) << bad;
}

TEST(AgentConfig, CgroupRoot) {
    auto c = parse_args({}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cgroup_root, "") << "found at start by default";
    c = parse_args({"--cgroup-root", "/host/sys/fs/cgroup"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->cgroup_root, "/host/sys/fs/cgroup");
    for (const char* bad : {"", "host/sys/fs/cgroup"}) {
        auto r = parse_args({"--cgroup-root", bad}, nullptr);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.error().find("--cgroup-root"), std::string::npos) << r.error();
    }
}

}  // namespace
}  // namespace passport::agent

namespace passport::agent {
namespace {

TEST(AgentConfig, SdkSegmentsSuppressByDefaultOrKeep) {
    auto c = parse_args({}, nullptr);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->keep_sdk_segments);
    c = parse_args({"--sdk-segments", "keep"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_TRUE(c->keep_sdk_segments);
    c = parse_args({"--sdk-segments=suppress"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_FALSE(c->keep_sdk_segments);
    auto bad = parse_args({"--sdk-segments", "both"}, nullptr);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("--sdk-segments: expected suppress or keep"), std::string::npos)
        << bad.error();
}

}  // namespace
}  // namespace passport::agent

namespace passport::agent {
namespace {

TEST(AgentConfig, SamplingSourceFollowsTheDaemon) {
    auto c = parse_args({}, nullptr);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->sampling, "centralized");  // documents go to the local daemon
    c = parse_args({"--output", "-"}, nullptr);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->sampling, "local");  // no daemon: nothing to ask
    c = parse_args({"--sampling", "local"}, nullptr);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->sampling, "local");
    c = parse_args({"--output", "-", "--daemon-address", "127.0.0.1:2000"}, nullptr);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->sampling, "centralized");
}

TEST(AgentConfig, SamplingSourceErrors) {
    auto c = parse_args({"--sampling", "xray"}, nullptr);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("expected centralized or local"), std::string::npos) << c.error();
    c = parse_args({"--output", "-", "--sampling", "centralized"}, nullptr);
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().find("needs an X-Ray daemon"), std::string::npos) << c.error();
}

}  // namespace
}  // namespace passport::agent
