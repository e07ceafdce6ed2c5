// A Node.js `http` server (unmodified stock module, tests/e2e/fixtures/node_server.js) traced by
// passport: statuses and flags, request bodies, keep-alive, a held request overtaken by others,
// and trace context that must not leak between requests on one connection.
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

class NodeHttpE2E : public E2eTest {
  protected:
    std::unique_ptr<TestServer> start(const ServerOptions& options = server_env()) {
        std::filesystem::copy_file(fixture("node_server.js"), dir().path() / "server.js",
                                   std::filesystem::copy_options::overwrite_existing);
        return start_script_server({"/usr/bin/node", "server.js"}, dir().path(), options);
    }
};

TEST_F(NodeHttpE2E, RoutesGiveStatusesAndFlags) {
    auto server = start();
    start_agent({"--pid", std::to_string(server->pid())});

    struct Case {
        std::string prefix;
        int status;
        std::string body;
    };
    const std::string tag = unique_tag();
    for (const Case& c : {Case{"/ok/", 200, "ok\n"}, Case{"/missing/", 404, "not found\n"},
                          Case{"/throttle/", 429, "slow down\n"}, Case{"/boom/", 500, "boom\n"}}) {
        SCOPED_TRACE(c.prefix);
        const std::string path = c.prefix + tag;
        HttpResponse response = http_get(server->url(path));
        ASSERT_EQ(response.status, c.status) << response.curl_stderr;
        ASSERT_EQ(response.body, c.body);
        auto doc = wait_for_url(path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        EXPECT_TRUE(has_http(*doc, "GET", server->url(path), c.status, c.body.size()));
        EXPECT_TRUE(has_status_flags(*doc, c.status));
        EXPECT_TRUE(is_new_trace(*doc, response.started_at, response.finished_at));
        EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
        // No name configured anywhere: an interpreter's service is named after its script.
        EXPECT_EQ(field(*doc, "name"), "server.js") << brief(*doc);
        EXPECT_EQ(field(*doc, "http.request.user_agent"), "passport-e2e/1.0");
    }
}

TEST_F(NodeHttpE2E, ServiceNameFlagAppliesWithoutEnvironment) {
    auto server = start();
    start_agent({"--pid", std::to_string(server->pid()), "--service-name", "checkout"});

    const std::string path = "/ok/" + unique_tag();
    ASSERT_EQ(http_get(server->url(path)).status, 200);
    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_EQ(field(*doc, "name"), "checkout") << brief(*doc);
}

TEST_F(NodeHttpE2E, KeepAliveWithBodiesAndTraceHeaderOnlyWhereSent) {
    auto server = start(server_env({{"OTEL_SERVICE_NAME", "node-keepalive"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string tag = unique_tag();
    std::vector<ClientRequest> requests = {
        {"POST",
         "/echo/" + tag + "/1",
         {{"Content-Type", "application/octet-stream"}},
         std::string(5000, 'x')},
        {"GET", "/ok/" + tag + "/2", {{"X-Amzn-Trace-Id", std::string(kIncomingTraceHeader)}}, {}},
        {"GET", "/ok/" + tag + "/3", {}, {}},
        {"PUT", "/echo/" + tag + "/4", {}, std::string(10, 'y')},
        {"DELETE", "/missing/" + tag + "/5", {}, {}},
        {"GET", "/chunked/" + tag + "/6", {}, {}},
    };
    std::vector<int> statuses = {200, 200, 200, 200, 404, 200};
    KeepAliveResult result =
        python_keep_alive_requests(server->port(), requests, deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(result.ok()) << result.error;
    ASSERT_EQ(result.responses.size(), requests.size());
    EXPECT_EQ(result.responses[0].body, "got 5000 bytes\n");
    for (const auto& r : result.responses) {
        ASSERT_EQ(r.local_port, result.responses.front().local_port) << "connection not reused";
    }

    for (size_t i = 0; i < requests.size(); ++i) {
        SCOPED_TRACE(requests[i].method + " " + requests[i].path);
        EXPECT_EQ(result.responses[i].status, statuses[i]);
        auto doc = wait_for_url(requests[i].path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        bool chunked = requests[i].path.find("/chunked/") != std::string::npos;
        EXPECT_TRUE(
            has_http(*doc, requests[i].method, server->url(requests[i].path), statuses[i],
                     chunked ? std::nullopt : std::optional<uint64_t>(result.responses[i].length)));
        if (chunked) {
            // No Content-Length on the wire; if the agent reports one it must be the body size.
            auto length = field(*doc, "http.response.content_length");
            EXPECT_TRUE(length.is_null() || length == result.responses[i].length) << brief(*doc);
        }
        EXPECT_TRUE(has_status_flags(*doc, statuses[i]));
        EXPECT_EQ(field(*doc, "name"), "node-keepalive");
        EXPECT_TRUE(
            times_within(*doc, result.responses[i].started_at, result.responses[i].finished_at));
        if (i == 1) {
            EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
        } else {
            EXPECT_TRUE(is_new_trace(*doc, result.responses[i].started_at,
                                     result.responses[i].finished_at));
        }
    }
}

// A request held open by the server while another connection is served: each segment belongs
// to its own request, and their times follow causality (held request read first, answered last).
TEST_F(NodeHttpE2E, HeldRequestIsOvertakenByAnotherConnection) {
    auto server = start(server_env({{"AWS_XRAY_TRACING_NAME", "node-held"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string tag = unique_tag();
    double held_started = wall_clock_now();
    ChildProcess held_client(ChildOptions{
        {"curl", "-sS", "--noproxy", "*", "--max-time", "30", server->url("/hold/" + tag)},
        {},
        {},
        {},
        true});
    ASSERT_TRUE(server->process().wait_for_line(Stream::kStdout, std::regex("holding " + tag),
                                                deadline_in(std::chrono::seconds(15))))
        << server->process().describe();

    const std::string fast_path = "/ok/" + tag + "/fast";
    HttpResponse fast = http_get(server->url(fast_path));
    ASSERT_EQ(fast.status, 200) << fast.curl_stderr;
    auto fast_doc = wait_for_url(fast_path);
    ASSERT_TRUE(fast_doc) << agent_diagnostics();

    ASSERT_EQ(http_get(server->url("/release/" + tag)).status, 200);
    auto held_exit = held_client.wait_exit(deadline_in(std::chrono::seconds(15)));
    double held_finished = wall_clock_now();
    ASSERT_TRUE(held_exit && held_exit->success()) << held_client.describe();
    EXPECT_EQ(held_client.text(Stream::kStdout), "held\n");

    auto held_doc = wait_for_url("/hold/" + tag);
    ASSERT_TRUE(held_doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*held_doc));
    EXPECT_TRUE(has_http(*held_doc, "GET", server->url("/hold/" + tag), 200, 5));
    EXPECT_TRUE(times_within(*held_doc, held_started, held_finished));
    EXPECT_NE(field(*held_doc, "id"), field(*fast_doc, "id"));
    EXPECT_NE(field(*held_doc, "trace_id"), field(*fast_doc, "trace_id"));
    // Causal order, not durations: the held request was read before the fast one was sent, and
    // answered only after the fast one had completed.
    EXPECT_LE(field(*held_doc, "start_time").get<double>(),
              field(*fast_doc, "start_time").get<double>())
        << brief(*held_doc) << "\n"
        << brief(*fast_doc);
    EXPECT_GE(field(*held_doc, "end_time").get<double>(),
              field(*fast_doc, "end_time").get<double>())
        << brief(*held_doc) << "\n"
        << brief(*fast_doc);
}

}  // namespace
}  // namespace passport::testing::e2e
