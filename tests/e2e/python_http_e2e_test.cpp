// Python's stdlib http.server (unmodified) traced by passport: one segment per request, every
// field checked against the request that produced it.
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

constexpr std::string_view kHello = "hello from passport\n";

class PythonHttpE2E : public E2eTest {
  protected:
    // A directory with `name` holding kHello, served by `python3 -m http.server`.
    std::unique_ptr<TestServer> start_server(const std::string& name, const ServerOptions& options,
                                             bool http11 = false) {
        dir().write_file("www/" + name, kHello);
        return start_python_http_server(dir().path() / "www", options, http11);
    }
};

TEST_F(PythonHttpE2E, ServedFileBecomesOneSegmentWithEveryField) {
    const std::string file = unique_tag() + ".txt";
    auto server = start_server(file, server_env({{"AWS_XRAY_TRACING_NAME", "py-files"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    HttpResponse response = http_get(server->url("/" + file));
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    ASSERT_EQ(response.body, kHello);

    auto doc = wait_for_url("/" + file);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(is_new_trace(*doc, response.started_at, response.finished_at));
    EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
    EXPECT_TRUE(has_http(*doc, "GET", server->url("/" + file), 200, kHello.size()));
    EXPECT_TRUE(has_status_flags(*doc, 200));
    EXPECT_EQ(field(*doc, "name"), "py-files");
    EXPECT_EQ(field(*doc, "http.request.client_ip"), "127.0.0.1");
    EXPECT_EQ(field(*doc, "http.request.user_agent"), "passport-e2e/1.0");
    EXPECT_TRUE(field(*doc, "http.request.x_forwarded_for").is_null()) << brief(*doc);
    EXPECT_TRUE(field(*doc, "metadata").is_object()) << brief(*doc);
    EXPECT_TRUE(json_has_key_value(field(*doc, "metadata"), "pid", server->pid()))
        << "metadata does not name the serving process " << server->pid() << ": " << brief(*doc);

    // Exactly one document for one request.
    stop_agent_and_sync();
    EXPECT_EQ(with_url_containing(collector().documents(), "/" + file).size(), 1u);
}

TEST_F(PythonHttpE2E, MissingFileIs404WithErrorFlag) {
    auto server = start_server("present.txt", server_env({{"AWS_XRAY_TRACING_NAME", "py-404"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string path = "/" + unique_tag() + "-absent.txt";
    HttpResponse response = http_get(server->url(path));
    ASSERT_EQ(response.status, 404) << response.curl_stderr;

    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "GET", server->url(path), 404, response.body.size()));
    EXPECT_TRUE(has_status_flags(*doc, 404));
    EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
}

TEST_F(PythonHttpE2E, UnsupportedMethodIs501WithFaultFlag) {
    auto server = start_server("present.txt", server_env({{"AWS_XRAY_TRACING_NAME", "py-501"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string path = "/" + unique_tag() + "/form";
    HttpRequest request;
    request.method = "POST";
    request.url = server->url(path);
    request.body = "a=1&b=2";
    HttpResponse response = http_request(request);
    ASSERT_EQ(response.status, 501) << response.curl_stderr;

    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "POST", server->url(path), 501));
    EXPECT_TRUE(has_status_flags(*doc, 501));
}

TEST_F(PythonHttpE2E, IncomingTraceHeaderIsContinued) {
    const std::string file = unique_tag() + ".txt";
    auto server = start_server(file, server_env({{"AWS_XRAY_TRACING_NAME", "py-continue"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    HttpResponse response = http_get(server->url("/" + file),
                                     {"X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader)});
    ASSERT_EQ(response.status, 200) << response.curl_stderr;

    auto doc = wait_for_url("/" + file);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
    EXPECT_NE(field(*doc, "id"), std::string(kIncomingParent))
        << "the segment reused the caller's id";
    EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));
}

TEST_F(PythonHttpE2E, LowerCaseHeaderNameAndReorderedKeysAreContinued) {
    const std::string file = unique_tag() + ".txt";
    auto server = start_server(file, server_env({{"AWS_XRAY_TRACING_NAME", "py-case"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    HttpResponse response =
        http_get(server->url("/" + file), {"x-amzn-trace-id: Sampled=1; Parent=53995c3f42cd8ad8; "
                                           "Root=1-5759e988-bd862e3fe1be46a994272793"});
    ASSERT_EQ(response.status, 200) << response.curl_stderr;

    auto doc = wait_for_url("/" + file);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
}

TEST_F(PythonHttpE2E, W3CTraceparentIsContinued) {
    const std::string file = unique_tag() + ".txt";
    auto server = start_server(file, server_env({{"AWS_XRAY_TRACING_NAME", "py-w3c"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    HttpResponse response =
        http_get(server->url("/" + file),
                 {"traceparent: 00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"});
    ASSERT_EQ(response.status, 200) << response.curl_stderr;

    auto doc = wait_for_url("/" + file);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
}

TEST_F(PythonHttpE2E, SampledZeroProducesNoDocument) {
    const std::string skipped = unique_tag() + "-skipped.txt";
    const std::string recorded = unique_tag() + "-recorded.txt";
    dir().write_file("www/" + skipped, kHello);
    auto server = start_server(recorded, server_env({{"AWS_XRAY_TRACING_NAME", "py-sampled0"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    HttpResponse not_sampled =
        http_get(server->url("/" + skipped),
                 {"X-Amzn-Trace-Id: "
                  "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"});
    ASSERT_EQ(not_sampled.status, 200) << not_sampled.curl_stderr;
    HttpResponse sampled = http_get(server->url("/" + recorded));
    ASSERT_EQ(sampled.status, 200) << sampled.curl_stderr;

    ASSERT_TRUE(wait_for_url("/" + recorded)) << agent_diagnostics();
    stop_agent_and_sync();
    auto docs = collector().documents();
    EXPECT_EQ(with_url_containing(docs, "/" + recorded).size(), 1u);
    EXPECT_TRUE(with_url_containing(docs, "/" + skipped).empty())
        << "a Sampled=0 request produced a document: "
        << brief(with_url_containing(docs, "/" + skipped).front());
}

TEST_F(PythonHttpE2E, XForwardedForGivesClientIp) {
    const std::string file = unique_tag() + ".txt";
    auto server = start_server(file, server_env({{"AWS_XRAY_TRACING_NAME", "py-xff"}}));
    start_agent({"--pid", std::to_string(server->pid())});

    HttpResponse response =
        http_get(server->url("/" + file), {"X-Forwarded-For: 203.0.113.7, 10.0.0.1"});
    ASSERT_EQ(response.status, 200) << response.curl_stderr;

    auto doc = wait_for_url("/" + file);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_EQ(field(*doc, "http.request.client_ip"), "203.0.113.7") << brief(*doc);
    EXPECT_EQ(field(*doc, "http.request.x_forwarded_for"), true) << brief(*doc);
}

// http.server switched to HTTP/1.1: several requests on one connection, each its own segment.
TEST_F(PythonHttpE2E, KeepAliveClientGetsOneSegmentPerRequest) {
    const std::string tag = unique_tag();
    auto server =
        start_server(tag + "-a.txt", server_env({{"AWS_XRAY_TRACING_NAME", "py-keepalive"}}),
                     /*http11=*/true);
    dir().write_file("www/" + tag + "-b.txt", "bb\n");
    start_agent({"--pid", std::to_string(server->pid())});

    // http.server closes the connection after an error response, so the 404 comes last.
    std::vector<ClientRequest> requests = {
        {"GET", "/" + tag + "-a.txt", {}, {}},
        {"GET", "/" + tag + "-b.txt", {}, {}},
        {"GET",
         "/" + tag + "-b.txt?second=1",
         {{"X-Amzn-Trace-Id", std::string(kIncomingTraceHeader)}},
         {}},
        {"HEAD", "/" + tag + "-a.txt?second=1", {}, {}},
        {"GET", "/" + tag + "-missing.txt", {}, {}},
    };
    KeepAliveResult result =
        python_keep_alive_requests(server->port(), requests, deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(result.ok()) << result.error;
    ASSERT_EQ(result.responses.size(), requests.size());
    for (const auto& r : result.responses) {
        ASSERT_EQ(r.local_port, result.responses.front().local_port)
            << "the client did not reuse its connection, so this is not a keep-alive test";
    }
    EXPECT_EQ(result.responses[3].length, 0u) << "HEAD has no body";

    std::vector<int> statuses = {200, 200, 200, 200, 404};
    std::vector<std::string> ids;
    for (size_t i = 0; i < requests.size(); ++i) {
        SCOPED_TRACE("request " + requests[i].path);
        EXPECT_EQ(result.responses[i].status, statuses[i]);
        auto doc = wait_for_url(requests[i].path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        // HEAD: the response announces the file's length but carries no body, and
        // content_length is the body's length (RFC 9110 §9.3.2): 0.
        uint64_t length = requests[i].method == "HEAD" ? 0 : result.responses[i].length;
        EXPECT_TRUE(
            has_http(*doc, requests[i].method, server->url(requests[i].path), statuses[i], length));
        EXPECT_TRUE(has_status_flags(*doc, statuses[i]));
        EXPECT_TRUE(
            times_within(*doc, result.responses[i].started_at, result.responses[i].finished_at));
        if (i == 2) {
            EXPECT_TRUE(continues_trace(*doc, kIncomingRoot, kIncomingParent));
        } else {
            EXPECT_TRUE(is_new_trace(*doc, result.responses[i].started_at,
                                     result.responses[i].finished_at));
        }
        ids.push_back(field(*doc, "id").get<std::string>());
    }
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "segment ids repeat";
}

// AWS_XRAY_TRACING_NAME > OTEL_SERVICE_NAME > --service-name, for three servers at once.
TEST_F(PythonHttpE2E, ServiceNamePrecedence) {
    const std::string file = unique_tag() + ".txt";
    dir().write_file("www/" + file, kHello);
    auto both = start_python_http_server(
        dir().path() / "www",
        server_env({{"AWS_XRAY_TRACING_NAME", "xray-name"}, {"OTEL_SERVICE_NAME", "otel-name"}}));
    auto otel = start_python_http_server(dir().path() / "www",
                                         server_env({{"OTEL_SERVICE_NAME", "otel-only"}}));
    auto plain = start_python_http_server(dir().path() / "www", server_env());
    start_agent({"--pid", std::to_string(both->pid()), "--pid", std::to_string(otel->pid()),
                 "--pid", std::to_string(plain->pid()), "--service-name", "cli-name"});

    struct Case {
        TestServer* server;
        const char* want;
    };
    for (Case c : {Case{both.get(), "xray-name"}, Case{otel.get(), "otel-only"},
                   Case{plain.get(), "cli-name"}}) {
        SCOPED_TRACE(c.want);
        HttpResponse response = http_get(c.server->url("/" + file));
        ASSERT_EQ(response.status, 200) << response.curl_stderr;
        auto doc = wait_for_url(":" + std::to_string(c.server->port()) + "/" + file);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_EQ(field(*doc, "name"), c.want) << brief(*doc);
    }
}

// Without any configured name an interpreter's service is named after what it runs.
TEST_F(PythonHttpE2E, DefaultNameComesFromScriptOrModule) {
    auto module_server = start_server("hello.txt", server_env());
    // The script server: a copy of the fixture under a name of our choosing.
    std::filesystem::copy_file(fixture("faulty_server.py"), dir().path() / "orders_api.py",
                               std::filesystem::copy_options::overwrite_existing);
    auto script_server =
        start_script_server({python3_path(), "orders_api.py"}, dir().path(), server_env());
    start_agent({"--pid", std::to_string(module_server->pid()), "--pid",
                 std::to_string(script_server->pid())});

    ASSERT_EQ(http_get(module_server->url("/hello.txt")).status, 200);
    const std::string path = "/" + unique_tag();
    ASSERT_EQ(http_get(script_server->url(path)).status, 200);

    auto module_doc = wait_for_url(":" + std::to_string(module_server->port()) + "/hello.txt");
    ASSERT_TRUE(module_doc) << agent_diagnostics();
    EXPECT_EQ(field(*module_doc, "name"), "http.server") << brief(*module_doc);
    auto script_doc = wait_for_url(path);
    ASSERT_TRUE(script_doc) << agent_diagnostics();
    EXPECT_EQ(field(*script_doc, "name"), "orders_api.py") << brief(*script_doc);
}

}  // namespace
}  // namespace passport::testing::e2e
