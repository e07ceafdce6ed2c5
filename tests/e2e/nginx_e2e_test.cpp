// nginx (master + forked workers, unmodified) traced by passport. The agent is given the
// master's pid: the workers that actually serve were forked before the agent started (and again
// after a reload), and their requests must be traced as the master's family.
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

class NginxE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::string why = nginx_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
    }

    std::unique_ptr<NginxServer> start() { return start_nginx(dir(), server_env()); }

    // True when the document's metadata names one of `pids` as the serving process.
    static bool served_by_one_of(const nlohmann::json& doc, const std::vector<pid_t>& pids) {
        for (pid_t pid : pids) {
            if (json_has_key_value(field(doc, "metadata"), "pid", pid)) return true;
        }
        return false;
    }
};

TEST_F(NginxE2E, MasterPidTracesWorkersWithEveryStatus) {
    auto nginx = start();
    std::vector<pid_t> workers = nginx->worker_pids();
    ASSERT_FALSE(workers.empty());
    start_agent({"--pid", std::to_string(nginx->pid())});

    struct Case {
        std::string prefix;
        int status;
        std::optional<uint64_t> length;
    };
    const std::string tag = unique_tag();
    std::vector<Case> cases = {{"/ok/", 200, kNginxOkBody.size()},
                               {"/missing/", 404, kNginxNotFoundBody.size()},
                               {"/throttle/", 429, kNginxThrottleBody.size()},
                               {"/boom/", 500, kNginxBoomBody.size()},
                               {"/empty/", 204, std::nullopt}};
    for (const Case& c : cases) {
        SCOPED_TRACE(c.prefix);
        const std::string path = c.prefix + tag;
        HttpResponse response = http_get(nginx->url(path));
        ASSERT_EQ(response.status, c.status) << response.curl_stderr;
        auto doc = wait_for_url(path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        EXPECT_TRUE(has_http(*doc, "GET", nginx->url(path), c.status, c.length));
        EXPECT_TRUE(has_status_flags(*doc, c.status));
        EXPECT_TRUE(is_new_trace(*doc, response.started_at, response.finished_at));
        EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
        EXPECT_EQ(field(*doc, "name"), "nginx") << brief(*doc);
        EXPECT_EQ(field(*doc, "http.request.client_ip"), "127.0.0.1") << brief(*doc);
        EXPECT_TRUE(served_by_one_of(*doc, workers))
            << "metadata should name the worker that served the request: " << brief(*doc);
        if (!c.length) {
            auto length = field(*doc, "http.response.content_length");
            EXPECT_TRUE(length.is_null() || length == 0) << "204 has no body: " << brief(*doc);
        }
    }
}

TEST_F(NginxE2E, KeepAliveConnectionCarriesManyRequests) {
    auto nginx = start();
    start_agent({"--pid", std::to_string(nginx->pid())});

    const std::string tag = unique_tag();
    std::vector<ClientRequest> requests = {
        {"GET", "/ok/" + tag + "/1", {}, {}},
        {"GET", "/missing/" + tag + "/2", {}, {}},
        {"POST", "/ok/" + tag + "/3", {}, std::string(3000, 'p')},
        {"GET",
         "/throttle/" + tag + "/4",
         {{"X-Amzn-Trace-Id", std::string(kIncomingTraceHeader)}},
         {}},
        {"GET", "/boom/" + tag + "/5", {}, {}},
        {"GET", "/ok/" + tag + "/6", {}, {}},
    };
    std::vector<int> statuses = {200, 404, 200, 429, 500, 200};
    KeepAliveResult result =
        python_keep_alive_requests(nginx->port(), requests, deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(result.ok()) << result.error;
    ASSERT_EQ(result.responses.size(), requests.size());
    for (const auto& r : result.responses) {
        ASSERT_EQ(r.local_port, result.responses.front().local_port) << "connection not reused";
    }

    std::set<std::string> ids;
    for (size_t i = 0; i < requests.size(); ++i) {
        SCOPED_TRACE(requests[i].path);
        EXPECT_EQ(result.responses[i].status, statuses[i]);
        auto doc = wait_for_url(requests[i].path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        EXPECT_TRUE(has_http(*doc, requests[i].method, nginx->url(requests[i].path), statuses[i],
                             result.responses[i].length));
        EXPECT_TRUE(has_status_flags(*doc, statuses[i]));
        EXPECT_TRUE(
            times_within(*doc, result.responses[i].started_at, result.responses[i].finished_at));
        if (i == 3) {
            EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
        } else {
            // The header of request 4 must not leak to its neighbours on the same connection.
            EXPECT_TRUE(is_new_trace(*doc, result.responses[i].started_at,
                                     result.responses[i].finished_at));
        }
        ids.insert(field(*doc, "id").get<std::string>());
    }
    EXPECT_EQ(ids.size(), requests.size()) << "segment ids repeat";

    stop_agent_and_sync();
    EXPECT_EQ(with_url_containing(collector().documents(), tag).size(), requests.size())
        << "one document per request";
}

TEST_F(NginxE2E, ExeGlobSelectsNginx) {
    auto nginx = start();
    start_agent({"--exe", "*nginx"});

    const std::string path = "/ok/" + unique_tag();
    HttpResponse response = http_get(nginx->url(path));
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    auto doc = wait_for_url(nginx->url(path));
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "GET", nginx->url(path), 200, kNginxOkBody.size()));
    EXPECT_EQ(field(*doc, "name"), "nginx");
}

TEST_F(NginxE2E, WorkersForkedByReloadAreTraced) {
    auto nginx = start();
    std::vector<pid_t> old_workers = nginx->worker_pids();
    start_agent({"--pid", std::to_string(nginx->pid())});

    std::vector<pid_t> new_workers = nginx->reload(deadline_in(std::chrono::seconds(20)));
    ASSERT_FALSE(new_workers.empty()) << "nginx did not replace its workers after SIGHUP";
    for (pid_t pid : new_workers) {
        ASSERT_EQ(std::count(old_workers.begin(), old_workers.end(), pid), 0);
    }

    const std::string path = "/ok/" + unique_tag();
    HttpResponse response = http_get(nginx->url(path));
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "GET", nginx->url(path), 200, kNginxOkBody.size()));
    EXPECT_TRUE(served_by_one_of(*doc, new_workers))
        << "expected a worker forked after the agent started: " << brief(*doc);
}

// A header larger than one read buffer (20 KB cookie-like value) still yields a segment.
TEST_F(NginxE2E, TwentyKilobyteHeaderStillTraced) {
    auto nginx = start();
    start_agent({"--pid", std::to_string(nginx->pid())});

    const std::string path = "/ok/" + unique_tag();
    HttpResponse response =
        http_get(nginx->url(path), {"X-Big: " + std::string(size_t{20} * 1024, 'b')});
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "GET", nginx->url(path), 200, kNginxOkBody.size()));
    EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
    EXPECT_TRUE(agent().running());
}

}  // namespace
}  // namespace passport::testing::e2e
