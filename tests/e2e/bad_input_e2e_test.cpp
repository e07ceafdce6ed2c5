// Hostile and broken traffic against traced servers, and a broken environment (no daemon).
// What must hold every time: the agent keeps running and exits cleanly on SIGINT, every
// datagram is a valid X-Ray document (TearDown checks), trace ids are well formed (a new trace
// whenever the incoming header is unusable), and the traced application still answers.
#include <cstring>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

constexpr std::string_view kBody = "still here\n";

class BadInputE2E : public E2eTest {
  protected:
    std::unique_ptr<TestServer> python_server() {
        dir().write_file("www/alive.txt", kBody);
        return start_python_http_server(dir().path() / "www",
                                        server_env({{"AWS_XRAY_TRACING_NAME", "bad-input"}}));
    }

    std::unique_ptr<TestServer> faulty_server() {
        return start_script_server({python3_path(), fixture("faulty_server.py").string()},
                                   dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", "faulty"}}));
    }

    // Raw bytes to the server, then a half-close (so a server waiting for more sees EOF);
    // returns what came back. The deadline bounds the read, it is not a wait for correctness.
    RawReply send_raw(const TestServer& server, std::string_view bytes) {
        return raw_tcp_exchange(server.port(), bytes, deadline_in(std::chrono::seconds(10)),
                                /*half_close=*/true);
    }

    // The app and the agent both still work: a normal request gets a 200 and a document.
    void expect_still_traced(const TestServer& server, const std::string& path) {
        HttpResponse response = http_get(server.url(path));
        EXPECT_EQ(response.status, 200)
            << "the traced app stopped answering: " << response.curl_stderr;
        auto doc = wait_for_url(path);
        ASSERT_TRUE(doc) << "no document after the bad input: " << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        EXPECT_EQ(field(*doc, "http.response.status"), 200) << brief(*doc);
        EXPECT_TRUE(agent().running()) << agent_diagnostics();
    }

    // Every document so far is a valid segment.
    void expect_all_valid() {
        for (const auto& doc : collector().documents()) EXPECT_TRUE(is_valid_segment(doc));
    }

    // One raw request of a batch, with what came back and when.
    struct RawCase {
        std::string label;    // for failure messages
        std::string path;     // unique request target, to find its document
        std::string request;  // the bytes sent
        double started = 0;
        double finished = 0;
        int status = 0;  // status the app answered, 0 for none
    };

    // Sends every case on its own connection, then proves the app still answers and the agent
    // still traces (a normal request and its document), then stops the agent and syncs: after
    // this a case's document is either in the collector or was never produced. One slow
    // deadline for the batch instead of one per case, and every case is reported.
    void run_batch(const TestServer& server, std::vector<RawCase>& cases) {
        for (RawCase& c : cases) {
            c.started = wall_clock_now();
            RawReply reply = send_raw(server, c.request);
            c.finished = wall_clock_now();
            EXPECT_TRUE(reply.connected) << c.label;
            c.status = http_status_of(reply.received);
        }
        expect_still_traced(server, "/alive.txt?after=" + unique_tag());
        stop_agent_and_sync();
    }

    // The text with bytes outside printable ASCII as \xNN, cut to `max` characters.
    static std::string printable(const std::string& text, size_t max = 90) {
        std::string out;
        for (unsigned char c : text) {
            if (out.size() >= max) return out + "…(" + std::to_string(text.size()) + " bytes)";
            if (c >= 0x20 && c < 0x7f) {
                out += static_cast<char>(c);
            } else {
                char hex[8];
                std::snprintf(hex, sizeof hex, "\\x%02x", c);
                out += hex;
            }
        }
        return out;
    }
};

TEST_F(BadInputE2E, BinaryGarbageAndNonHttpTextAreSurvived) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    std::mt19937 random(12345);
    std::string garbage(4096, '\0');
    for (char& c : garbage) c = static_cast<char>(random() & 0xff);
    const std::string tls_hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    for (const std::string& bytes :
         {garbage, std::string("hello there, this is not http\r\n\r\n"),
          std::string("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), tls_hello + garbage.substr(0, 500),
          std::string("\r\n\r\n\r\n\r\n"), std::string(1, '\0') + "GET / HTTP/1.1\r\n\r\n"}) {
        RawReply reply = send_raw(*server, bytes);
        EXPECT_TRUE(reply.connected);
    }
    EXPECT_TRUE(agent().running()) << agent_diagnostics();
    expect_still_traced(*server, "/alive.txt?after=garbage");
    expect_all_valid();
}

TEST_F(BadInputE2E, MalformedRequestLinesAreSurvived) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    for (const char* request : {
             "GET\r\n\r\n",
             "GET /alive.txt\r\n\r\n",  // HTTP/0.9 style
             "GET /alive.txt HTTP/9.9\r\nHost: x\r\n\r\n",
             "GET /alive.txt HTTP/1.1 extra words\r\nHost: x\r\n\r\n",
             "G\x7f\x01T /alive.txt HTTP/1.0\r\n\r\n",
             "GET /alive.txt HTTP/1.0\r\nNo-Colon-Here\r\n\r\n",
             "GET /alive.txt HTTP/1.0\r\n: empty-name\r\n\r\n",
             "GET /alive.txt HTTP/1.0\nHost: bare-newlines\n\n",
             "POST /alive.txt HTTP/1.0\r\nContent-Length: -5\r\n\r\n",
             "POST /alive.txt HTTP/1.0\r\nContent-Length: 99999999999999999999999\r\n\r\nabc",
             "POST /alive.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         }) {
        SCOPED_TRACE(request);
        RawReply reply = send_raw(*server, request);
        EXPECT_TRUE(reply.connected);
    }
    // A request line longer than any buffer: 70 KB of path.
    send_raw(*server, "GET /" + std::string(size_t{70} * 1024, 'a') + " HTTP/1.0\r\n\r\n");
    expect_still_traced(*server, "/alive.txt?after=malformed");
    expect_all_valid();
}

TEST_F(BadInputE2E, HostileTraceHeadersStartNewWellFormedTraces) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string root(kIncomingRoot);
    const std::string parent(kIncomingParent);
    const std::vector<std::string> hostile = {
        "Root=" + root + R"(";"injected":"yes;Parent=)" + parent + ";Sampled=1",
        "Root=" + root + R"(\";Parent=\\)" + parent + ";Sampled=1",
        "Root=" + root + "\x01\x7f\x1b[31m;Parent=" + parent + "\x0b;Sampled=1",
        "Root=1-5759e988-\xff\xfe\xfd\xc3\x28" + std::string(19, 'a') + ";Parent=" + parent +
            ";Sampled=1",
        "Root=" + std::string(size_t{10} * 1024, 'a') + ";Parent=" + parent + ";Sampled=1",
        std::string(size_t{10} * 1024, ';') + "Root=1-5759e988",
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=" + parent + ";Sampled=1",
        "Root=1-zzzzzzzz-bd862e3fe1be46a994272793;Parent=" + parent + ";Sampled=1",
        "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=" + parent + ";Sampled=1",    // 23 hex
        "Root=1-5759e988-bd862e3fe1be46a9942727930;Parent=" + parent + ";Sampled=1",  // 25 hex
        "Root=1-5759e988bd862e3fe1be46a994272793;Parent=" + parent + ";Sampled=1",
        "Root=;Parent=;Sampled=1",
        ";;;;====;;;Root;Root=;=;",
    };
    std::vector<RawCase> cases;
    for (size_t i = 0; i < hostile.size(); ++i) {
        const std::string path = "/alive.txt?hostile=" + std::to_string(i);
        cases.push_back({"X-Amzn-Trace-Id: " + printable(hostile[i]), path,
                         "GET " + path +
                             " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(server->port()) +
                             "\r\nX-Amzn-Trace-Id: " + hostile[i] + "\r\n\r\n"});
    }
    run_batch(*server, cases);

    auto docs = collector().documents();
    for (const RawCase& c : cases) {
        SCOPED_TRACE(c.label);
        if (c.status != 200) {
            EXPECT_EQ(c.status, 400) << "unexpected answer from the app";
            continue;  // the app itself refused it: nothing to trace
        }
        auto matching = with_url_ending(docs, c.path);
        ASSERT_LE(matching.size(), 1u);
        EXPECT_EQ(matching.size(), 1u) << "no segment for a request the app answered 200";
        if (matching.empty()) continue;
        const nlohmann::json& doc = matching.front();
        EXPECT_TRUE(is_valid_segment(doc));
        EXPECT_TRUE(is_new_trace(doc, c.started, c.finished))
            << "an unusable header must start a new trace";
        EXPECT_FALSE(doc.contains("injected")) << brief(doc);
    }
}

// Bytes a lenient server accepts in header values (controls, DEL, invalid UTF-8) must neither
// break the JSON nor cost the request its segment.
TEST_F(BadInputE2E, ControlAndNonUtf8BytesInHeaderValuesAreTraced) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    const std::vector<std::string> agents = {"agent\xff\xfe",      "agent\x01",
                                             "agent\x7f",          "ev\"il\\agent\xff\x01",
                                             "\x1b[31mred\x1b[0m", "tab\tinside"};
    std::vector<RawCase> cases;
    for (size_t i = 0; i < agents.size(); ++i) {
        const std::string path = "/alive.txt?ua=" + std::to_string(i);
        cases.push_back({"User-Agent: " + printable(agents[i]), path,
                         "GET " + path +
                             " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(server->port()) +
                             "\r\nUser-Agent: " + agents[i] + "\r\n\r\n"});
    }
    run_batch(*server, cases);

    auto docs = collector().documents();
    for (const RawCase& c : cases) {
        SCOPED_TRACE(c.label);
        ASSERT_EQ(c.status, 200) << "the app refused it";
        auto matching = with_url_ending(docs, c.path);
        EXPECT_EQ(matching.size(), 1u) << "no segment for a request the app answered 200";
        if (matching.empty()) continue;
        EXPECT_TRUE(is_valid_segment(matching.front()));
        EXPECT_TRUE(field(matching.front(), "http.request.user_agent").is_string())
            << brief(matching.front());
    }
}

// Request heads bigger than one captured read (big cookies are common) still give a segment.
TEST_F(BadInputE2E, LargeRequestHeadersAreTraced) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    // Heads up to PP_HEAD_BUDGET (32 KB) are copied whole by the kernel side.
    std::vector<RawCase> cases;
    for (size_t size : {2u * 1024, 6u * 1024, 12u * 1024, 20u * 1024, 30u * 1024}) {
        const std::string path = "/alive.txt?header_bytes=" + std::to_string(size);
        cases.push_back(
            {"Cookie of " + std::to_string(size) + " bytes", path,
             "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(server->port()) +
                 "\r\nCookie: " + std::string(size, 'c') + "\r\nUser-Agent: big-headers\r\n\r\n"});
    }
    run_batch(*server, cases);

    auto docs = collector().documents();
    for (const RawCase& c : cases) {
        SCOPED_TRACE(c.label);
        ASSERT_EQ(c.status, 200) << "the app refused it";
        auto matching = with_url_ending(docs, c.path);
        EXPECT_EQ(matching.size(), 1u) << "no segment for a request the app answered 200";
        if (matching.empty()) continue;
        EXPECT_TRUE(is_valid_segment(matching.front()));
        EXPECT_TRUE(has_http(matching.front(), "GET", server->url(c.path), 200, kBody.size()));
        EXPECT_TRUE(times_within(matching.front(), c.started, c.finished));
    }
}

// A head larger than the capture budget cannot be parsed; the app still answers, and the loss is
// counted rather than silent (docs/not-supported.md).
TEST_F(BadInputE2E, RequestHeadBeyondCaptureBudgetIsCounted) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});
    const std::string path = "/alive.txt?header_bytes=61440";
    std::vector<RawCase> cases = {
        {"Cookie of 60 KB", path,
         "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(server->port()) +
             "\r\nCookie: " + std::string(size_t{60} * 1024, 'c') + "\r\n\r\n"}};
    run_batch(*server, cases);
    ASSERT_EQ(cases[0].status, 200) << "the app refused it";
    AgentExit exit = stop_agent_and_sync();
    EXPECT_TRUE(with_url_ending(collector().documents(), path).empty());
    EXPECT_GE(exit.counter("kernel.payload_truncated"), 1u);
    EXPECT_GE(exit.counter("http.headers_in_gap") + exit.counter("http.headers_too_large") +
                  exit.counter("http.invalid_request"),
              1u)
        << exit.counters_text();
}

// A valid Root with a broken Parent: the trace id is kept or replaced, but never malformed.
TEST_F(BadInputE2E, ValidRootWithBrokenParentStaysWellFormed) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    const std::vector<std::string> parents = {"53995c3f42cd8ad8ZZ", "xyz", "", "53995c3f42cd8ad",
                                              R"("},{"id":"0000000000000000)"};
    for (size_t i = 0; i < parents.size(); ++i) {
        SCOPED_TRACE("parent " + parents[i]);
        const std::string path = "/alive.txt?parent=" + std::to_string(i);
        HttpResponse response =
            http_get(server->url(path), {"X-Amzn-Trace-Id: Root=" + std::string(kIncomingRoot) +
                                         ";Parent=" + parents[i] + ";Sampled=1"});
        ASSERT_EQ(response.status, 200) << response.curl_stderr;
        auto doc = wait_for_url(path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));  // includes: parent_id absent or 16 hex
    }
}

TEST_F(BadInputE2E, UserAgentAndUrlNeedJsonEscaping) {
    auto server = python_server();
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string path = "/q\"uo\\te%22" + unique_tag() + "</script>";
    std::string request = "GET " + path +
                          " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(server->port()) +
                          "\r\nUser-Agent: \"},\"fault\":true,\"x\":{\"\\u0000\t\xc3\xa9\r\n\r\n";
    RawReply reply = send_raw(*server, request);
    ASSERT_EQ(http_status_of(reply.received), 404) << reply.received.substr(0, 200);

    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_EQ(field(*doc, "http.request.url"), server->url(path));
    EXPECT_EQ(field(*doc, "http.request.user_agent"),
              "\"},\"fault\":true,\"x\":{\"\\u0000\t\xc3\xa9")
        << brief(*doc);
    EXPECT_TRUE(has_status_flags(*doc, 404)) << "the user agent must not inject flags";
}

TEST_F(BadInputE2E, ConnectionResetMidResponseIsAFault) {
    auto server = faulty_server();
    start_agent({"--pid", std::to_string(server->pid())});

    const std::string path = "/reset/" + unique_tag();
    HttpResponse response = http_get(server->url(path));
    EXPECT_NE(response.curl_exit, 0) << "curl should see the reset";

    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_EQ(field(*doc, "fault"), true)
        << "a response cut by a reset is a fault: " << brief(*doc);
    auto status = field(*doc, "http.response.status");
    EXPECT_TRUE(status.is_null() || status == 200) << brief(*doc);
    EXPECT_TRUE(times_within(*doc, response.started_at, response.finished_at));

    expect_still_traced(*server, "/ok/" + unique_tag());
}

TEST_F(BadInputE2E, ServerExitingMidRequestIsSurvivedAndCounted) {
    auto dying = faulty_server();
    auto dying_partial = faulty_server();
    auto healthy = faulty_server();
    start_agent({"--pid", std::to_string(dying->pid()), "--pid",
                 std::to_string(dying_partial->pid()), "--pid", std::to_string(healthy->pid())});

    const std::string die_path = "/die/" + unique_tag();
    HttpResponse died = http_get(dying->url(die_path));
    EXPECT_EQ(died.status, 0) << "no response expected";
    auto status = dying->process().wait_exit(deadline_in(std::chrono::seconds(10)));
    ASSERT_TRUE(status && status->exited && status->code == 3) << dying->process().describe();

    const std::string partial_path = "/die-partial/" + unique_tag();
    HttpResponse partial = http_get(dying_partial->url(partial_path));
    EXPECT_NE(partial.curl_exit, 0);
    status = dying_partial->process().wait_exit(deadline_in(std::chrono::seconds(10)));
    ASSERT_TRUE(status && status->exited && status->code == 4)
        << dying_partial->process().describe();

    EXPECT_TRUE(agent().running()) << agent_diagnostics();
    expect_still_traced(*healthy, "/ok/" + unique_tag());

    // The cut-off exchanges are reported as faults once the agent learns the process is gone.
    for (const std::string& path : {die_path, partial_path}) {
        SCOPED_TRACE(path);
        auto doc = wait_for_url(path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        EXPECT_EQ(field(*doc, "fault"), true) << brief(*doc);
    }

    AgentExit exit = stop_agent_and_sync();
    EXPECT_GE(exit.counter("correlate.incomplete"), 2u) << "counters: " << exit.counters_text();
}

TEST_F(BadInputE2E, DaemonNotListeningIsCountedAndSurvived) {
    auto server = python_server();
    const uint16_t closed_port = closed_udp_port();
    AgentOptions options;
    options.daemon_address = "127.0.0.1:" + std::to_string(closed_port);
    // --sdk-segments keep: each segment leaves as its request ends (by default those of a new
    // process are held up to a second while Passport looks for an X-Ray SDK in it, and would
    // leave together), so the later sends meet the ICMP error the first one provoked.
    start_agent({"--pid", std::to_string(server->pid()), "--sdk-segments", "keep"}, options);

    // Several documents: the first send to a closed port succeeds locally, the ICMP
    // port-unreachable it provokes makes the following sends fail with ECONNREFUSED.
    constexpr int kRequests = 6;
    for (int i = 0; i < kRequests; ++i) {
        ASSERT_EQ(http_get(server->url("/alive.txt?n=" + std::to_string(i))).status, 200);
    }
    // No live view of the counters: the agent drains on SIGINT, so the exit counters cover
    // every request above.
    EXPECT_TRUE(agent().running()) << agent_diagnostics();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_TRUE(exit.status.success()) << exit.status.describe();
    EXPECT_GE(exit.counter("export.udp_send_failed"), 1u) << "counters: " << exit.counters_text();
    EXPECT_GE(exit.counter("export.udp_refused"), 1u) << "counters: " << exit.counters_text();
    EXPECT_EQ(exit.counter("export.udp_send_failed") + exit.counter("export.documents_sent"),
              static_cast<uint64_t>(kRequests))
        << "every segment is either sent or counted as failed: " << exit.counters_text();
    EXPECT_EQ(collector().count(), 0u) << "nothing was addressed to the collector";
}

}  // namespace
}  // namespace passport::testing::e2e
