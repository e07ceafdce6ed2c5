// Two "hosts" on one machine: a server in one network namespace, its client in another, joined
// by a veth pair (TEST-NET-1 addresses that exist only inside the namespaces). The agent runs in
// the root namespace and must attribute the request to the right addresses.
#include "tests/e2e/e2e_common.hpp"
#include "tests/support/netns.hpp"

namespace passport::testing::e2e {
namespace {

class NetnsE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::string why = netns_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
    }
};

TEST_F(NetnsE2E, RequestAcrossNamespacesIsTracedWithPeerAddresses) {
    NetNs client_ns("cli");
    NetNs server_ns("srv");
    VethLink link(client_ns, "192.0.2.1/24", server_ns, "192.0.2.2/24");

    std::filesystem::copy_file(fixture("node_server.js"), dir().path() / "server.js",
                               std::filesystem::copy_options::overwrite_existing);
    ServerOptions options = server_env({{"AWS_XRAY_TRACING_NAME", "netns-server"}});
    ChildProcess node(ChildOptions{server_ns.wrap({"/usr/bin/node", "server.js", "192.0.2.2"}),
                                   options.env, options.env_remove, dir().path(), true});
    auto banner = node.wait_for_line(Stream::kStdout, std::regex(R"(listening on port (\d+))"),
                                     deadline_in(std::chrono::seconds(20)));
    ASSERT_TRUE(banner) << node.describe();
    const std::string port = banner->groups[1];
    start_agent({"--pid", std::to_string(node.pid())});

    const std::string path = "/ok/" + unique_tag();
    const std::string url = "http://192.0.2.2:" + port + path;
    double started = wall_clock_now();
    CommandResult curl =
        client_ns.run({"curl", "-sS", "--noproxy", "*", "--max-time", "15", "-A", "netns-client",
                       "-H", "X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader), url},
                      deadline_in(std::chrono::seconds(20)));
    double finished = wall_clock_now();
    ASSERT_TRUE(curl.status.success()) << curl.status.describe() << curl.err;
    ASSERT_EQ(curl.out, "ok\n");

    auto doc = wait_for_url(url);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "GET", url, 200, 3));
    EXPECT_EQ(field(*doc, "http.request.client_ip"), "192.0.2.1") << brief(*doc);
    EXPECT_EQ(field(*doc, "http.request.user_agent"), "netns-client");
    EXPECT_EQ(field(*doc, "name"), "netns-server");
    EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
    EXPECT_TRUE(times_within(*doc, started, finished));
}

}  // namespace
}  // namespace passport::testing::e2e
