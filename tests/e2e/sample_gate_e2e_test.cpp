// The gate on unsampled requests: the kernel ships none of an unsampled request's bytes (nor its
// response's) when its decision is final, and capture resumes exactly at the next request on
// the connection. A real Node server, real probes, raw HTTP/1.1 over one keep-alive connection.
#include <algorithm>
#include <cctype>
#include <thread>

#include "tests/e2e/e2e_common.hpp"
#include "tests/support/net.hpp"

namespace passport::testing::e2e {
namespace {

// Nothing sampled.
constexpr std::string_view kRateZeroRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 0.0},
  "rules": []
})";

// Sampled: paths with a segment starting "s-"; nothing else.
constexpr std::string_view kSegmentRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 0.0},
  "rules": [{"description": "s- segments", "host": "*", "http_method": "*",
             "url_path": "*/s-*", "fixed_target": 0, "rate": 1.0}]
})";

// The first rule's path pattern is longer than the kernel compiles: requests that reach it are
// decided in userspace (rate 0 there too).
std::string deferred_rules() {
    return R"({"version": 2, "default": {"fixed_target": 0, "rate": 0.0}, "rules": [
      {"description": "long", "host": "*", "http_method": "*", "url_path": "/)" +
           std::string(80, 'x') + R"(*", "fixed_target": 0, "rate": 0.0}]})";
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// One past the end of the Content-Length-framed response starting at `from`, or npos.
size_t response_end(const std::string& b, size_t from) {
    const size_t head_end = b.find("\r\n\r\n", from);
    if (head_end == std::string::npos) return std::string::npos;
    const std::string head = lower(b.substr(from, head_end - from));
    const size_t cl = head.find("content-length:");
    const size_t body = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15));
    const size_t end = head_end + 4 + body;
    return end <= b.size() ? end : std::string::npos;
}

size_t complete_responses(const std::string& b) {
    size_t n = 0;
    for (size_t at = 0; at < b.size();) {
        const size_t end = response_end(b, at);
        if (end == std::string::npos) break;
        ++n;
        at = end;
    }
    return n;
}

std::string get(const std::string& path, const std::string& extra = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: gate.test\r\n" + extra + "\r\n";
}

std::string post(const std::string& path, const std::string& body) {
    return "POST " + path +
           " HTTP/1.1\r\nHost: gate.test\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

// The fields of a server segment that do not depend on ids, times or the tag.
nlohmann::json comparable(const nlohmann::json& doc, const std::string& tag) {
    nlohmann::json out;
    out["name"] = doc.value("name", "");
    std::string url = doc["http"]["request"].value("url", "");
    if (const size_t at = url.find(tag); at != std::string::npos) url.replace(at, tag.size(), "T");
    out["url"] = url;
    out["method"] = doc["http"]["request"].value("method", "");
    out["status"] = doc["http"]["response"].value("status", 0);
    out["length"] = doc["http"]["response"].value("content_length", -1);
    for (const char* flag : {"error", "fault", "throttle"}) out[flag] = doc.value(flag, false);
    out["origin"] = doc.value("origin", "");
    out["has_subsegments"] = doc.contains("subsegments");
    out["keys"] = nlohmann::json::array();
    for (const auto& [k, v] : doc.items()) out["keys"].push_back(k);
    return out;
}

class SampleGateE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::filesystem::copy_file(fixture("node_server.js"), dir().path() / "server.js",
                                   std::filesystem::copy_options::overwrite_existing);
        server_ = start_script_server({"/usr/bin/node", "server.js"}, dir().path(),
                                      server_env({{"AWS_XRAY_TRACING_NAME", "gate"}}));
    }

    void TearDown() override {
        E2eTest::TearDown();
        server_.reset();
    }

    void start_with(std::string_view rules, std::vector<std::string> extra = {}) {
        auto path = dir().write_file("rules-" + unique_tag() + ".json", std::string(rules));
        std::vector<std::string> args{"--pid", std::to_string(server_->pid()), "--sampling-rules",
                                      path.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        start_agent(args);
    }

    // Sends `bytes` on the open connection and reads until `responses` more responses are
    // complete; returns what was read.
    std::string exchange(TcpClient& c, const std::string& bytes, size_t responses) {
        EXPECT_EQ(c.send_all(bytes, deadline_in(std::chrono::seconds(10))), 0);
        RawReply r;
        c.read(r, deadline_in(std::chrono::seconds(10)),
               [&](const std::string& got) { return complete_responses(got) >= responses; });
        EXPECT_EQ(complete_responses(r.received), responses) << r.received;
        return r.received;
    }

    void connect(TcpClient& c) {
        ASSERT_TRUE(c.connect(server_->port(), deadline_in(std::chrono::seconds(5))));
    }

    // The documents of `sequence` sent one after the other on one connection, by request path.
    std::map<std::string, nlohmann::json> run_sequence(const std::string& tag) {
        TcpClient c;
        connect(c);
        exchange(c, get("/ok/" + tag + "/u-1"), 1);
        exchange(c, get("/ok/" + tag + "/s-2"), 1);
        exchange(c, post("/echo/" + tag + "/u-3", std::string(6000, 'b')), 1);
        exchange(c, get("/missing/" + tag + "/s-4"), 1);
        exchange(c, post("/echo/" + tag + "/s-5", std::string(100, 'c')), 1);
        exchange(c, get("/ok/" + tag + "/u-6"), 1);
        exchange(c, get("/ok/" + tag + "/s-7"), 1);
        std::map<std::string, nlohmann::json> docs;
        for (const char* s : {"s-2", "s-4", "s-5", "s-7"}) {
            auto d = wait_for_url(tag + "/" + s);
            EXPECT_TRUE(d) << s << ": " << agent_diagnostics();
            if (d) docs[s] = comparable(*d, tag);
        }
        c.close();
        return docs;
    }

    std::unique_ptr<TestServer> server_;
};

TEST_F(SampleGateE2E, RateZeroKeepAliveShipsNoPayload) {
    start_with(kRateZeroRules);
    const std::string tag = unique_tag();
    constexpr size_t kRequests = 20;
    TcpClient c;
    connect(c);
    size_t sent = 0;
    size_t received = 0;
    for (size_t i = 0; i < kRequests; ++i) {
        const std::string req = get("/ok/" + tag + "/" + std::to_string(i));
        sent += req.size();
        received += exchange(c, req, 1).size();
    }
    c.close();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("kernel.gate_requests"), kRequests) << exit.counters_text();
    EXPECT_EQ(exit.counter("kernel.gate_request_bytes"), sent) << exit.counters_text();
    EXPECT_EQ(exit.counter("kernel.gate_response_bytes"), received) << exit.counters_text();
    // Not a record for them (no request followed them that would report them), and not a byte
    // of HTTP: the connection was never even detected.
    EXPECT_EQ(exit.counter("stream.unsampled_spans"), 0u) << exit.counters_text();
    EXPECT_EQ(exit.counter_matching({"stream.detected"}), 0u) << exit.counters_text();
    EXPECT_TRUE(with_url_containing(collector().documents(), tag).empty());
}

TEST_F(SampleGateE2E, SampledAfterUnsampledIsTheSameDocumentAsWithoutTheGate) {
    start_with(kSegmentRules);
    const std::string gated_tag = unique_tag();
    auto gated = run_sequence(gated_tag);
    AgentExit gated_exit = stop_agent_and_sync();
    EXPECT_EQ(gated_exit.counter("kernel.gate_requests"), 3u) << gated_exit.counters_text();
    // Each gated request told by the context of the sampled one after it.
    EXPECT_EQ(gated_exit.counter("stream.unsampled_spans"), 3u) << gated_exit.counters_text();
    for (const char* bad : {"stream.lost_bytes", "stream.stalled_holes", "http.invalid_request",
                            "http.invalid_response", "http.headers_in_gap", "stream.gap_bytes"}) {
        EXPECT_EQ(gated_exit.counter(bad), 0u) << bad << ": " << gated_exit.counters_text();
    }
    EXPECT_EQ(with_url_containing(collector().documents(), gated_tag).size(), 4u);

    start_with(kSegmentRules, {"--no-sample-gate"});
    const std::string open_tag = unique_tag();
    auto open = run_sequence(open_tag);
    AgentExit open_exit = stop_agent_and_sync();
    EXPECT_EQ(open_exit.counter("kernel.gate_requests"), 0u);
    EXPECT_EQ(open_exit.counter("kernel.gate_captured_off"), 3u) << open_exit.counters_text();
    ASSERT_EQ(gated.size(), 4u);
    ASSERT_EQ(open.size(), 4u);
    for (const auto& [path, doc] : gated) EXPECT_EQ(doc, open[path]) << path;
}

TEST_F(SampleGateE2E, PipelinedAndChunkedRequestsLoseNothing) {
    start_with(kSegmentRules);
    const std::string tag = unique_tag();
    TcpClient c;
    connect(c);
    // Four requests in one write: the first read holds more than its request.
    exchange(c,
             get("/ok/" + tag + "/u-p1") + get("/ok/" + tag + "/s-p2") +
                 get("/ok/" + tag + "/u-p3") + get("/ok/" + tag + "/s-p4"),
             4);
    // A chunked body the kernel does not follow, then a sampled request.
    exchange(c,
             "POST /echo/" + tag +
                 "/u-c1 HTTP/1.1\r\nHost: gate.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
             1);
    exchange(c, get("/ok/" + tag + "/s-c2"), 1);
    // A gated request whose body comes in a later write, then a sampled one.
    const std::string body(3000, 'd');
    const std::string head =
        "POST /echo/" + tag +
        "/u-c3 HTTP/1.1\r\nHost: gate.test\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n";
    ASSERT_EQ(c.send_all(head + body.substr(0, 1000), deadline_in(std::chrono::seconds(5))), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a read of its own
    exchange(c, body.substr(1000), 1);
    // Its body's end and the next (sampled) request in one write.
    ASSERT_EQ(c.send_all(post("/echo/" + tag + "/u-c4", std::string(500, 'e')).substr(0, 300),
                         deadline_in(std::chrono::seconds(5))),
              0);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    exchange(c,
             post("/echo/" + tag + "/u-c4", std::string(500, 'e')).substr(300) +
                 get("/ok/" + tag + "/s-c5"),
             2);
    for (const char* s : {"s-p2", "s-p4", "s-c2", "s-c5"}) {
        auto d = wait_for_url(tag + "/" + s);
        ASSERT_TRUE(d) << s << ": " << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*d));
        EXPECT_EQ((*d)["http"]["response"].value("status", 0), 200) << brief(*d);
    }
    c.close();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_GE(exit.counter("kernel.gate_captured_pipelined"), 1u) << exit.counters_text();
    EXPECT_EQ(exit.counter("kernel.gate_captured_framing"), 1u) << exit.counters_text();
    EXPECT_EQ(exit.counter("kernel.gate_requests"), 2u) << exit.counters_text();
    auto docs = with_url_containing(collector().documents(), tag);
    EXPECT_EQ(docs.size(), 4u);
    for (const auto& d : docs) EXPECT_EQ(brief(d).find("/u-"), std::string::npos) << brief(d);
}

TEST_F(SampleGateE2E, CallerSampledZeroIsGatedDeferredIsCaptured) {
    start_with(deferred_rules());
    const std::string tag = unique_tag();
    TcpClient c;
    connect(c);
    const std::string header = "X-Amzn-Trace-Id: Root=" + std::string(kIncomingRoot) +
                               ";Parent=" + std::string(kIncomingParent) + ";Sampled=0\r\n";
    exchange(c, get("/ok/" + tag + "/vetoed", header), 1);
    exchange(c, get("/ok/" + tag + "/deferred"), 1);
    exchange(c, get("/ok/" + tag + "/vetoed-again", header), 1);
    c.close();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("kernel.gate_requests"), 2u) << exit.counters_text();
    EXPECT_EQ(exit.counter("kernel.gate_captured_deferred"), 1u) << exit.counters_text();
    // The deferred request reached userspace, whose rules did not sample it.
    EXPECT_EQ(exit.counter("correlate.not_sampled_rules"), 1u) << exit.counters_text();
    EXPECT_TRUE(with_url_containing(collector().documents(), tag).empty());
}

TEST_F(SampleGateE2E, RuleDecisionWithATracedCallerOnThisNodeIsCaptured) {
    // The caller is traced and injects nothing: same-node stitching may put the server's
    // requests under the caller's trace, so the kernel must not gate them.
    constexpr int kLoops = 3;
    ChildOptions o;
    o.argv = {"python3", fixture("call_loop.py").string(), std::to_string(kLoops),
              "http://127.0.0.1:" + std::to_string(server_->port()) + "/ok/" + unique_tag()};
    ChildProcess caller(o);
    ASSERT_TRUE(caller.wait_for_line(Stream::kStdout, std::regex("^ready$"),
                                     deadline_in(std::chrono::seconds(20))))
        << caller.describe();
    start_with(kRateZeroRules, {"--pid", std::to_string(caller.pid()), "--no-inject"});
    ASSERT_TRUE(caller.send_signal(SIGUSR1));
    ASSERT_TRUE(caller.wait_for_line(Stream::kStdout, std::regex("^done$"),
                                     deadline_in(std::chrono::seconds(30))))
        << caller.describe();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("kernel.gate_captured_local_caller"), uint64_t(kLoops))
        << exit.counters_text();
    EXPECT_EQ(exit.counter("kernel.gate_requests"), 0u) << exit.counters_text();
    // Both ends parsed: the caller's calls and the server's requests.
    EXPECT_EQ(exit.counter("http.requests"), uint64_t(2 * kLoops)) << exit.counters_text();
}

}  // namespace
}  // namespace passport::testing::e2e
