// Which processes and connections the agent traces: --pid (and what it forks later), --exe,
// --port, and no selector at all. Unselected servers are driven at the same time and must not
// produce a single document; that is checked after the agent has drained and the collector has
// synced, so "nothing arrived" is not a race.
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

constexpr std::string_view kBody = "selection\n";

class SelectionE2E : public E2eTest {
  protected:
    std::unique_ptr<TestServer> python_server(const std::string& name) {
        dir().write_file("www/index.txt", kBody);
        return start_python_http_server(dir().path() / "www",
                                        server_env({{"AWS_XRAY_TRACING_NAME", name}}));
    }

    std::unique_ptr<TestServer> node_server() {
        std::filesystem::copy_file(fixture("node_server.js"), dir().path() / "server.js",
                                   std::filesystem::copy_options::overwrite_existing);
        return start_script_server({"/usr/bin/node", "server.js"}, dir().path(), server_env());
    }

    // Documents for requests to `server` (by the port in the URL).
    std::vector<nlohmann::json> docs_for(const TestServer& server) {
        return with_url_containing(collector().documents(),
                                   ":" + std::to_string(server.port()) + "/");
    }
};

TEST_F(SelectionE2E, UnselectedServerProducesNothing) {
    auto selected = python_server("selected");
    auto other = python_server("unselected");
    start_agent({"--pid", std::to_string(selected->pid())});

    for (int round = 0; round < 3; ++round) {
        ASSERT_EQ(http_get(other->url("/index.txt?round=" + std::to_string(round))).status, 200);
        ASSERT_EQ(http_get(selected->url("/index.txt?round=" + std::to_string(round))).status, 200);
    }
    auto all = collector().wait_for_count(
        [&](const nlohmann::json& d) {
            return url_contains(d, ":" + std::to_string(selected->port()) + "/");
        },
        3, deadline_in(kDocumentTimeout));
    ASSERT_EQ(all.size(), 3u) << agent_diagnostics();

    stop_agent_and_sync();
    EXPECT_EQ(docs_for(*selected).size(), 3u);
    auto leaked = docs_for(*other);
    EXPECT_TRUE(leaked.empty()) << "unselected server traced: " << brief(leaked.front());
    for (const auto& doc : collector().documents()) {
        EXPECT_NE(field(doc, "name"), nlohmann::json("unselected")) << brief(doc);
    }
}

TEST_F(SelectionE2E, ExeGlobSelectsOnlyMatchingExecutable) {
    auto node = node_server();
    auto python = python_server("python-not-selected");
    start_agent({"--exe", "node"});

    const std::string tag = unique_tag();
    ASSERT_EQ(http_get(python->url("/index.txt?" + tag)).status, 200);
    ASSERT_EQ(http_get(node->url("/ok/" + tag)).status, 200);
    auto doc = wait_for_url("/ok/" + tag);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));

    stop_agent_and_sync();
    auto leaked = docs_for(*python);
    EXPECT_TRUE(leaked.empty()) << "--exe node traced python: " << brief(leaked.front());
}

TEST_F(SelectionE2E, PortFilterKeepsOnlyThatPort) {
    auto on_port = python_server("on-port");
    auto off_port = python_server("off-port");
    start_agent({"--pid", std::to_string(on_port->pid()), "--pid", std::to_string(off_port->pid()),
                 "--port", std::to_string(on_port->port())});

    const std::string tag = unique_tag();
    ASSERT_EQ(http_get(off_port->url("/index.txt?" + tag)).status, 200);
    ASSERT_EQ(http_get(on_port->url("/index.txt?" + tag)).status, 200);
    ASSERT_TRUE(wait_for_url(on_port->url("/index.txt?" + tag))) << agent_diagnostics();

    stop_agent_and_sync();
    EXPECT_EQ(docs_for(*on_port).size(), 1u);
    auto leaked = docs_for(*off_port);
    EXPECT_TRUE(leaked.empty()) << "--port " << on_port->port()
                                << " traced another port: " << brief(leaked.front());
}

TEST_F(SelectionE2E, NoSelectorTracesEveryProcess) {
    auto server = python_server("no-selector");
    start_agent({});

    const std::string path = "/index.txt?" + unique_tag();
    HttpResponse response = http_get(server->url(path));
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    auto doc = wait_for_url(server->url(path));
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_EQ(field(*doc, "name"), "no-selector");
    EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
}

// --pid N covers processes N forks after the agent started (here: a launcher that starts the
// real server only when the test tells it to, through a file).
TEST_F(SelectionE2E, ChildForkedAfterAgentStartIsTraced) {
    dir().write_file("www/index.txt", kBody);
    const auto trigger = dir().path() / "go";
    ChildProcess launcher(
        ChildOptions{{python3_path(), fixture("spawn_later.py").string(), trigger.string(),
                      (dir().path() / "www").string()},
                     {{"PYTHONUNBUFFERED", "1"}, {"AWS_XRAY_TRACING_NAME", "forked-later"}},
                     {"OTEL_SERVICE_NAME"},
                     dir().path(),
                     true});
    ASSERT_TRUE(launcher.wait_for_line(Stream::kStdout, std::regex("waiting for"),
                                       deadline_in(std::chrono::seconds(15))))
        << launcher.describe();
    start_agent({"--pid", std::to_string(launcher.pid())});

    dir().write_file("go", "");
    auto child = launcher.wait_for_line(Stream::kStdout, std::regex(R"(child pid (\d+))"),
                                        deadline_in(std::chrono::seconds(15)));
    ASSERT_TRUE(child) << launcher.describe();
    auto banner =
        launcher.wait_for_line(Stream::kStdout, std::regex(R"(Serving HTTP on \S+ port (\d+))"),
                               deadline_in(std::chrono::seconds(15)));
    ASSERT_TRUE(banner) << launcher.describe();
    const std::string url = "http://127.0.0.1:" + banner->groups[1] + "/index.txt";

    HttpResponse response = http_get(url);
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    auto doc = wait_for_url(url);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_EQ(field(*doc, "name"), "forked-later");
    EXPECT_TRUE(json_has_key_value(field(*doc, "metadata"), "pid", std::stoi(child->groups[1])))
        << brief(*doc);
}

}  // namespace
}  // namespace passport::testing::e2e
