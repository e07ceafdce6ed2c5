// HTTPS traced through OpenSSL uprobes (bpf/probes/tls.bpf.c, agent/tls_tracer.cpp): real curl,
// Python (ssl + urllib / http.client / http.server) and Node (`https`, OpenSSL linked into the
// node binary) talking TLS on 127.0.0.1 with a certificate each test makes with `openssl req`.
// Documents are checked field by field: https:// URLs, method, status, content_length, times;
// clients' calls are subsegments, servers' requests segments, and a traced callee is stitched
// under its caller's subsegment (same node, by connection tuple: no header can be injected into
// TLS). An HTTPS server's requests get the kernel's trace context from their SSL_read plaintext
// (HttpsServerSegmentsCarryTheKernelsIds), as plain requests do from socket reads.
//
// Fixtures: tls_server.py (Python HTTPS server, optionally loading ssl only after a trigger
// file), tls_client.py (Python HTTPS client waiting for a trigger file), tls_node.js (Node HTTPS
// server or client).
#include <sys/stat.h>

#include <fstream>
#include <regex>

#include "tests/e2e/e2e_common.hpp"
#include "userspace/events/recording.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

ChildOptions cmd(std::vector<std::string> argv, std::vector<std::string> env_remove = {}) {
    ChildOptions o;
    o.argv = std::move(argv);
    o.env_remove = std::move(env_remove);
    return o;
}

struct Cert {
    std::string cert;
    std::string key;
};

// A self-signed certificate for 127.0.0.1 and localhost, made for this test only.
Cert make_cert(TempDir& dir) {
    Cert c{(dir.path() / "cert.pem").string(), (dir.path() / "key.pem").string()};
    CommandResult r =
        run_command(cmd({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                         c.key, "-out", c.cert, "-days", "1", "-subj", "/CN=localhost", "-addext",
                         "subjectAltName=IP:127.0.0.1,DNS:localhost"}),
                    deadline_in(std::chrono::seconds(60)));
    EXPECT_TRUE(r.status.success()) << "openssl req: " << r.err;
    return c;
}

std::string https_url(uint16_t port, const std::string& path) {
    return "https://127.0.0.1:" + std::to_string(port) + path;
}

// Every embedded subsegment (any depth) of every document, with the document holding it.
std::vector<std::pair<json, json>> all_subsegments(const std::vector<json>& docs) {
    std::vector<std::pair<json, json>> out;
    std::function<void(const json&, const json&)> walk = [&](const json& doc, const json& node) {
        auto it = node.find("subsegments");
        if (it == node.end() || !it->is_array()) return;
        for (const auto& s : *it) {
            out.emplace_back(doc, s);
            walk(doc, s);
        }
    };
    for (const auto& d : docs) walk(d, d);
    return out;
}

// The call subsegment whose URL is `url`, and the document holding it.
std::optional<std::pair<json, json>> find_call(const std::vector<json>& docs,
                                               const std::string& url) {
    for (auto& [doc, sub] : all_subsegments(docs)) {
        if (field(sub, "http.request.url") == url) return std::make_pair(doc, sub);
    }
    return std::nullopt;
}

// A server segment: every field an X-Ray SDK middleware would write for this request.
AssertionResult is_https_segment(const json& doc, const std::string& url, int status,
                                 uint64_t length, double t0, double t1,
                                 std::string_view user_agent_prefix) {
    if (auto r = is_valid_segment(doc); !r) return r;
    if (auto r = has_http(doc, "GET", url, status, length); !r) return r;
    if (auto r = has_status_flags(doc, status); !r) return r;
    if (auto r = times_within(doc, t0, t1); !r) return r;
    if (field(doc, "http.request.client_ip") != "127.0.0.1")
        return AssertionFailure() << "client_ip: " << brief(doc);
    const json ua = field(doc, "http.request.user_agent");
    if (!user_agent_prefix.empty() &&
        (!ua.is_string() || ua.get<std::string>().rfind(user_agent_prefix, 0) != 0))
        return AssertionFailure() << "user_agent is not " << user_agent_prefix
                                  << "…: " << brief(doc);
    return AssertionSuccess();
}

// A client call: name, namespace, http fields, times, and traced only when stitched.
AssertionResult is_https_call(const json& sub, const std::string& url, int status, uint64_t length,
                              double t0, double t1, bool traced) {
    if (field(sub, "name") != "127.0.0.1") return AssertionFailure() << "name: " << sub.dump();
    if (field(sub, "namespace") != "remote")
        return AssertionFailure() << "namespace: " << sub.dump();
    if (!is_segment_id(field(sub, "id").get<std::string>()))
        return AssertionFailure() << "id: " << sub.dump();
    if (field(sub, "http.request.method") != "GET" || field(sub, "http.request.url") != url ||
        field(sub, "http.response.status") != status ||
        field(sub, "http.response.content_length") != length)
        return AssertionFailure() << "http: " << sub.dump();
    if (auto r = has_status_flags(sub, status); !r) return r;
    if (auto r = times_within(sub, t0, t1); !r) return r;
    const bool is_traced = field(sub, "http.request.traced") == true;
    if (is_traced != traced)
        return AssertionFailure() << "traced should be " << traced << ": " << sub.dump();
    return AssertionSuccess();
}

// The callee's segment hangs under the caller's call subsegment, in the caller's trace.
AssertionResult stitched(const json& caller_doc, const json& sub, const json& callee) {
    if (field(callee, "parent_id") != field(sub, "id") ||
        field(callee, "trace_id") != field(caller_doc, "trace_id"))
        return AssertionFailure() << "callee not stitched under the call\n  call: " << sub.dump()
                                  << "\n  caller trace: " << field(caller_doc, "trace_id")
                                  << "\n  callee: " << brief(callee);
    return AssertionSuccess();
}

class TlsE2eTest : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        cert_ = make_cert(dir());
    }

    std::unique_ptr<TestServer> python_server(std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {python3_path(), fixture("tls_server.py").string(),
                                         cert_.cert, cert_.key};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return start_script_server(argv, dir().path(), server_env());
    }

    std::unique_ptr<TestServer> node_server(const std::string& program = "") {
        return start_script_server(
            {program.empty() ? node_path() : program, fixture("tls_node.js").string(), "server",
             cert_.cert, cert_.key},
            dir().path(), server_env());
    }

    // The agent says it attached the TLS probes to pid (it logs that at -v).
    bool wait_attached(pid_t pid) {
        const std::string needle = "tls: attached pid " + std::to_string(pid) + ":";
        // The agent writes its log (spdlog) and start report to stderr.
        return wait_until([&] { return agent_log().find(needle) != std::string::npos; },
                          deadline_in(std::chrono::seconds(20)));
    }

    std::string agent_log() { return agent().stderr_text(); }

    CommandResult curl(const std::string& url) {
        return run_command(cmd({"curl", "-s", "-S", "--cacert", cert_.cert, url}),
                           deadline_in(std::chrono::seconds(30)));
    }

    std::vector<json> wait_docs(size_t n, const std::function<bool(const json&)>& pred) {
        return collector().wait_for_count(pred, n, deadline_in(kDocumentTimeout));
    }

    // Requests with X-Amzn-Trace-Id, traceparent, and neither to an HTTPS server: the segments
    // carry the kernel's ids (HttpsServerSegmentsCarryTheKernelsIds).
    void expect_kernel_ids_in_documents(TestServer* server);

    Cert cert_;
};

// curl (libcurl + libssl.so.3) calling a traced Python HTTPS server twice on one keep-alive
// connection: the server's segments, and curl's calls as subsegments with the server stitched
// under each.
TEST_F(TlsE2eTest, CurlClientAndPythonServer) {
    auto server = python_server();
    // curl blocks opening its config (a FIFO) until the test writes the URL: it is running, with
    // libssl mapped, when the agent starts.
    const std::string fifo = (dir().path() / "curl.cfg").string();
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    ChildProcess client(cmd({"curl", "-s", "-S", "--cacert", cert_.cert, "-K", fifo}));
    start_agent(
        {"-v", "--pid", std::to_string(server->pid()), "--pid", std::to_string(client.pid())});
    ASSERT_TRUE(wait_attached(server->pid())) << agent_diagnostics();
    ASSERT_TRUE(wait_attached(client.pid())) << agent_diagnostics();

    const std::string ok = https_url(server->port(), "/ok/" + unique_tag());
    const std::string missing = https_url(server->port(), "/missing/" + unique_tag());
    const double t0 = wall_clock_now();
    {
        std::ofstream cfg(fifo);
        cfg << "url = \"" << ok << "\"\nurl = \"" << missing << "\"\n";
    }
    auto status = client.wait_exit(deadline_in(std::chrono::seconds(30)));
    const double t1 = wall_clock_now();
    ASSERT_TRUE(status && status->success()) << client.describe();
    ASSERT_EQ(client.text(Stream::kStdout), "ok\nnot found\n");

    for (const auto& [url, code, length] : {std::tuple{ok, 200, 3}, std::tuple{missing, 404, 10}}) {
        SCOPED_TRACE(url);
        auto segs = wait_docs(1, [&url = url](const json& d) { return url_ends_with(d, url); });
        ASSERT_EQ(segs.size(), 1u) << agent_diagnostics();
        EXPECT_TRUE(is_https_segment(segs[0], url, code, length, t0, t1, "curl/"));
        EXPECT_EQ(field(segs[0], "metadata.passport.process.pid"), server->pid());

        ASSERT_TRUE(wait_until(
            [&, &url = url] { return find_call(collector().documents(), url).has_value(); },
            deadline_in(kDocumentTimeout)))
            << agent_diagnostics();
        auto [caller, sub] = *find_call(collector().documents(), url);
        EXPECT_TRUE(is_https_call(sub, url, code, length, t0, t1, true));
        EXPECT_EQ(field(caller, "metadata.passport.process.pid"), client.pid());
        EXPECT_TRUE(stitched(caller, sub, segs[0]));
    }

    AgentExit exit = stop_agent_and_sync();
    // One keep-alive connection, seen from both ends.
    EXPECT_EQ(exit.counter("stream.tls_connections"), 2u) << exit.counters_text();
    // The handshakes never reached the parser: no connection was declared non-HTTP.
    EXPECT_EQ(exit.counter("stream.non_http_connections"), 0u) << exit.counters_text();
    // curl exited while the agent ran: its uprobes were detached then.
    EXPECT_GE(exit.counter("tls.detached_processes"), 1u) << exit.counters_text();
}

// Python (urllib, ssl) calling a traced Node HTTPS server, twice (200 and 404).
TEST_F(TlsE2eTest, PythonClientAndNodeServer) {
    auto server = node_server();
    const std::string trigger = (dir().path() / "go").string();
    const std::string ok = https_url(server->port(), "/ok/" + unique_tag());
    const std::string missing = https_url(server->port(), "/missing/" + unique_tag());
    ChildProcess client(
        cmd({python3_path(), fixture("tls_client.py").string(), cert_.cert, trigger, ok, missing}));
    ASSERT_TRUE(client.wait_for_line(Stream::kStdout, std::regex("^ready$"),
                                     deadline_in(std::chrono::seconds(20))));
    start_agent(
        {"-v", "--pid", std::to_string(server->pid()), "--pid", std::to_string(client.pid())});
    ASSERT_TRUE(wait_attached(server->pid())) << agent_diagnostics();
    ASSERT_TRUE(wait_attached(client.pid())) << agent_diagnostics();

    const double t0 = wall_clock_now();
    dir().write_file("go", "");
    ASSERT_TRUE(client.wait_for_line(Stream::kStdout, std::regex("^done$"),
                                     deadline_in(std::chrono::seconds(30))))
        << client.describe();
    const double t1 = wall_clock_now();

    for (const auto& [url, status, length] :
         {std::tuple{ok, 200, 3}, std::tuple{missing, 404, 10}}) {
        SCOPED_TRACE(url);
        auto segs = wait_docs(1, [&url = url](const json& d) { return url_ends_with(d, url); });
        ASSERT_EQ(segs.size(), 1u) << agent_diagnostics();
        EXPECT_TRUE(is_https_segment(segs[0], url, status, length, t0, t1, "Python-urllib/"));
        EXPECT_EQ(field(segs[0], "metadata.passport.process.pid"), server->pid());
        ASSERT_TRUE(wait_until(
            [&, &url = url] { return find_call(collector().documents(), url).has_value(); },
            deadline_in(kDocumentTimeout)))
            << agent_diagnostics();
        auto [caller, sub] = *find_call(collector().documents(), url);
        EXPECT_TRUE(is_https_call(sub, url, status, length, t0, t1, true));
        EXPECT_EQ(field(caller, "metadata.passport.process.pid"), client.pid());
        EXPECT_TRUE(stitched(caller, sub, segs[0]));
    }
}

// Node (`https`, memory BIO: no socket syscall inside SSL_write) calling a traced Python server.
TEST_F(TlsE2eTest, NodeClientAndPythonServer) {
    auto server = python_server();
    const std::string trigger = (dir().path() / "go").string();
    const std::string ok = https_url(server->port(), "/ok/" + unique_tag());
    const std::string missing = https_url(server->port(), "/missing/" + unique_tag());
    ChildProcess client(cmd({node_path(), fixture("tls_node.js").string(), "client", cert_.cert,
                             trigger, ok, missing}));
    ASSERT_TRUE(client.wait_for_line(Stream::kStdout, std::regex("^ready$"),
                                     deadline_in(std::chrono::seconds(20))));
    start_agent(
        {"-v", "--pid", std::to_string(server->pid()), "--pid", std::to_string(client.pid())});
    ASSERT_TRUE(wait_attached(server->pid())) << agent_diagnostics();
    ASSERT_TRUE(wait_attached(client.pid())) << agent_diagnostics();

    const double t0 = wall_clock_now();
    dir().write_file("go", "");
    ASSERT_TRUE(client.wait_for_line(Stream::kStdout, std::regex("^done$"),
                                     deadline_in(std::chrono::seconds(30))))
        << client.describe();
    const double t1 = wall_clock_now();

    for (const auto& [url, status, length] :
         {std::tuple{ok, 200, 3}, std::tuple{missing, 404, 10}}) {
        SCOPED_TRACE(url);
        auto segs = wait_docs(1, [&url = url](const json& d) { return url_ends_with(d, url); });
        ASSERT_EQ(segs.size(), 1u) << agent_diagnostics();
        EXPECT_TRUE(is_https_segment(segs[0], url, status, length, t0, t1, ""));
        ASSERT_TRUE(wait_until(
            [&, &url = url] { return find_call(collector().documents(), url).has_value(); },
            deadline_in(kDocumentTimeout)))
            << agent_diagnostics();
        auto [caller, sub] = *find_call(collector().documents(), url);
        EXPECT_TRUE(is_https_call(sub, url, status, length, t0, t1, true));
        EXPECT_EQ(field(caller, "metadata.passport.process.pid"), client.pid());
        EXPECT_TRUE(stitched(caller, sub, segs[0]));
    }
}

// A traced Python HTTPS server calling a traced Node HTTPS server while serving a request: the
// call is a subsegment of the request's segment, and Node's segment is stitched under it.
TEST_F(TlsE2eTest, HttpsServerCallsHttpsDownstream) {
    auto downstream = node_server();
    auto front = python_server();
    start_agent(
        {"-v", "--pid", std::to_string(front->pid()), "--pid", std::to_string(downstream->pid())});
    ASSERT_TRUE(wait_attached(front->pid())) << agent_diagnostics();
    ASSERT_TRUE(wait_attached(downstream->pid())) << agent_diagnostics();

    const std::string down_url = https_url(downstream->port(), "/ok/" + unique_tag());
    const std::string front_url =
        https_url(front->port(), "/call/" + unique_tag() + "?url=" + down_url);
    const double t0 = wall_clock_now();
    CommandResult r = curl(front_url);
    const double t1 = wall_clock_now();
    ASSERT_TRUE(r.status.success()) << r.err;
    ASSERT_EQ(r.out, "called 200\n");

    auto front_segs = wait_docs(1, [&](const json& d) { return url_ends_with(d, front_url); });
    ASSERT_EQ(front_segs.size(), 1u) << agent_diagnostics();
    const json& seg = front_segs[0];
    EXPECT_TRUE(
        is_https_segment(seg, front_url, 200, std::string("called 200\n").size(), t0, t1, "curl/"));
    ASSERT_TRUE(seg.contains("subsegments")) << brief(seg);
    auto call = find_call({seg}, down_url);
    ASSERT_TRUE(call) << seg.dump();
    EXPECT_TRUE(is_https_call(call->second, down_url, 200, 3, t0, t1, true));
    EXPECT_GE(num(call->second, "start_time"), num(seg, "start_time"));
    EXPECT_LE(num(call->second, "end_time"), num(seg, "end_time"));

    // (front_url ends with down_url too: compare whole URLs.)
    auto down_segs =
        wait_docs(1, [&](const json& d) { return field(d, "http.request.url") == down_url; });
    ASSERT_EQ(down_segs.size(), 1u) << agent_diagnostics();
    EXPECT_TRUE(is_https_segment(down_segs[0], down_url, 200, 3, t0, t1, ""));
    EXPECT_TRUE(stitched(seg, call->second, down_segs[0]));
}

// A Node HTTPS server started after the agent (matched by --exe at its exec) is traced.
TEST_F(TlsE2eTest, ServerStartedAfterAgentIsTraced) {
    // A link with a name no other process on the machine has, so --exe selects only this one.
    const std::string link = (dir().path() / ("tls-node-" + unique_tag())).string();
    std::filesystem::create_symlink(node_path(), link);
    start_agent({"-v", "--exe", link});
    auto server = node_server(link);
    ASSERT_TRUE(wait_attached(server->pid())) << agent_diagnostics();

    const std::string url = https_url(server->port(), "/ok/" + unique_tag());
    const double t0 = wall_clock_now();
    CommandResult r = curl(url);
    const double t1 = wall_clock_now();
    ASSERT_TRUE(r.status.success()) << r.err;
    auto segs = wait_docs(1, [&](const json& d) { return url_ends_with(d, url); });
    ASSERT_EQ(segs.size(), 1u) << agent_diagnostics();
    EXPECT_TRUE(is_https_segment(segs[0], url, 200, 3, t0, t1, "curl/"));
    EXPECT_EQ(field(segs[0], "metadata.passport.process.pid"), server->pid());
}

// A Python process that loads libssl only after the agent started (it imports ssl when a
// trigger file appears) is attached when it maps the library, then traced.
TEST_F(TlsE2eTest, LibsslLoadedLateIsTraced) {
    const std::string trigger = (dir().path() / "load-ssl").string();
    ChildProcess late(cmd({python3_path(), fixture("tls_server.py").string(), cert_.cert, cert_.key,
                           "--late", trigger},
                          {"AWS_XRAY_TRACING_NAME", "OTEL_SERVICE_NAME"}));
    ASSERT_TRUE(late.wait_for_line(Stream::kStdout, std::regex("^waiting for"),
                                   deadline_in(std::chrono::seconds(20))));
    start_agent({"-v", "--pid", std::to_string(late.pid())});
    // Nothing to attach yet: python3 itself has no OpenSSL and ssl is not imported.
    const std::string needle = "tls: attached pid " + std::to_string(late.pid()) + ":";
    EXPECT_EQ(agent_log().find(needle), std::string::npos) << agent_log();

    dir().write_file("load-ssl", "");
    auto listening = late.wait_for_line(Stream::kStdout, std::regex("listening on port ([0-9]+)"),
                                        deadline_in(std::chrono::seconds(20)));
    ASSERT_TRUE(listening) << late.describe();
    ASSERT_TRUE(wait_attached(late.pid())) << agent_diagnostics();

    const std::string url =
        https_url(static_cast<uint16_t>(std::stoi(listening->groups[1])), "/ok/" + unique_tag());
    const double t0 = wall_clock_now();
    CommandResult r = curl(url);
    const double t1 = wall_clock_now();
    ASSERT_TRUE(r.status.success()) << r.err;
    auto segs = wait_docs(1, [&](const json& d) { return url_ends_with(d, url); });
    ASSERT_EQ(segs.size(), 1u) << agent_diagnostics();
    EXPECT_TRUE(is_https_segment(segs[0], url, 200, 3, t0, t1, "curl/"));
    AgentExit exit = stop_agent_and_sync();
    EXPECT_GE(exit.counter("tls.rescans"), 1u) << exit.counters_text();
    // However many times the process was rescanned (every executable mmap flags it), its
    // libssl was attached once.
    EXPECT_EQ(exit.counter("tls.attached_processes"), 1u) << exit.counters_text();
    EXPECT_EQ(exit.counter("tls.binaries_attached"), 1u) << exit.counters_text();
}

// A child forked by a selected HTTPS server after the agent started (a pre-fork server) is
// selected by the kernel at fork and gets its own uprobes at the agent's next scan.
TEST_F(TlsE2eTest, ForkedHttpsServerChildIsTraced) {
    const std::string trigger = (dir().path() / "fork").string();
    ChildProcess parent(cmd({python3_path(), fixture("tls_server.py").string(), cert_.cert,
                             cert_.key, "--fork", trigger},
                            {"AWS_XRAY_TRACING_NAME", "OTEL_SERVICE_NAME"}));
    ASSERT_TRUE(parent.wait_for_line(Stream::kStdout, std::regex("^waiting for"),
                                     deadline_in(std::chrono::seconds(20))));
    start_agent({"-v", "--pid", std::to_string(parent.pid())});
    ASSERT_TRUE(wait_attached(parent.pid())) << agent_diagnostics();

    dir().write_file("fork", "");
    auto child = parent.wait_for_line(Stream::kStdout, std::regex("child pid ([0-9]+)"),
                                      deadline_in(std::chrono::seconds(20)));
    ASSERT_TRUE(child) << parent.describe();
    auto listening = parent.wait_for_line(Stream::kStdout, std::regex("listening on port ([0-9]+)"),
                                          deadline_in(std::chrono::seconds(20)));
    ASSERT_TRUE(listening) << parent.describe();
    const pid_t child_pid = std::stoi(child->groups[1]);
    ASSERT_TRUE(wait_attached(child_pid)) << agent_diagnostics();

    const std::string url =
        https_url(static_cast<uint16_t>(std::stoi(listening->groups[1])), "/ok/" + unique_tag());
    const double t0 = wall_clock_now();
    CommandResult r = curl(url);
    const double t1 = wall_clock_now();
    ASSERT_TRUE(r.status.success()) << r.err;
    auto segs = wait_docs(1, [&](const json& d) { return url_ends_with(d, url); });
    ASSERT_EQ(segs.size(), 1u) << agent_diagnostics();
    EXPECT_TRUE(is_https_segment(segs[0], url, 200, 3, t0, t1, "curl/"));
    EXPECT_EQ(field(segs[0], "metadata.passport.process.pid"), child_pid);
}

// `passport check-tls` tells a hookable binary from one that is not.
TEST_F(TlsE2eTest, CheckTlsNamesHookableBinaries) {
    CommandResult yes = run_command(
        cmd({agent_path(), "check-tls", "/usr/lib/x86_64-linux-gnu/libssl.so.3", node_path()}),
        deadline_in(std::chrono::seconds(60)));
    EXPECT_TRUE(yes.status.success()) << yes.out << yes.err;
    EXPECT_NE(yes.out.find("libssl.so.3: yes"), std::string::npos) << yes.out;
    EXPECT_NE(yes.out.find(": yes: HTTPS through this binary can be traced (SSL_read SSL_write"),
              std::string::npos)
        << yes.out;
    CommandResult no = run_command(cmd({agent_path(), "check-tls", python3_path()}),
                                   deadline_in(std::chrono::seconds(60)));
    EXPECT_EQ(no.status.code, 1) << no.out << no.err;
    EXPECT_NE(no.out.find(": no: SSL_read and SSL_write are not both defined here"),
              std::string::npos)
        << no.out;
    CommandResult missing =
        run_command(cmd({agent_path(), "check-tls", (dir().path() / "absent").string()}),
                    deadline_in(std::chrono::seconds(60)));
    EXPECT_EQ(missing.status.code, 1);
    EXPECT_NE(missing.out.find("error: "), std::string::npos) << missing.out;
}

// With the TLS probes off, HTTPS through a traced server is ciphertext only: no document, and
// the handshake bytes do not reach the parser (no non-HTTP connection, no parse error).
TEST_F(TlsE2eTest, CiphertextIsNeverParsed) {
    auto server = python_server();
    start_agent({"--no-tls", "--pid", std::to_string(server->pid())});
    EXPECT_NE(agent().stderr_text().find("TLS - off (--no-tls)"), std::string::npos)
        << agent().stderr_text();
    const std::string url = https_url(server->port(), "/ok/" + unique_tag());
    for (int i = 0; i < 3; i++) ASSERT_TRUE(curl(url).status.success());
    AgentExit exit = stop_agent_and_sync();
    EXPECT_TRUE(with_url_containing(collector().documents(), "/ok/").empty())
        << agent_diagnostics();
    EXPECT_EQ(exit.counter("stream.non_http_connections"), 0u) << exit.counters_text();
    EXPECT_EQ(exit.counter_matching({"parse"}), 0u) << exit.counters_text();
    EXPECT_EQ(exit.counter("http.requests"), 0u) << exit.counters_text();
}

}  // namespace
// The kernel decides an HTTPS request's context from its SSL_read plaintext: with X-Amzn-Trace-Id,
// with only traceparent, with neither. Each segment's id, trace id and parent are exactly the ids
// of the kernel's PP_EV_TRACE_CTX record for that request (read back from --record), and the
// incoming headers' ids are kept.
TEST_F(TlsE2eTest, HttpsServerSegmentsCarryTheKernelsIds) {
    auto server = python_server();
    ASSERT_TRUE(server);
    expect_kernel_ids_in_documents(server.get());
}

// The same with node's `https` server: memory BIO, the SSL_read's socket is the thread's last
// socket read.
TEST_F(TlsE2eTest, NodeHttpsServerSegmentsCarryTheKernelsIds) {
    auto server = node_server();
    ASSERT_TRUE(server);
    expect_kernel_ids_in_documents(server.get());
}

void TlsE2eTest::expect_kernel_ids_in_documents(TestServer* server) {
    auto rules = dir().write_file(
        "rules.json",
        R"({"version": 2, "default": {"fixed_target": 0, "rate": 1.0}, "rules": []})");
    const auto record = dir().path() / "events.jsonl";
    start_agent({"-v", "--pid", std::to_string(server->pid()), "--sampling-rules", rules.string(),
                 "--record", record.string()});
    ASSERT_TRUE(wait_attached(server->pid())) << agent_diagnostics();

    const std::string tag = unique_tag();
    const std::string root = "1-5759e988-bd862e3fe1be46a994272793", parent = "53995c3f42cd8ad8";
    auto get = [&](const std::string& which, std::vector<std::string> headers) {
        HttpRequest r;
        r.url = https_url(server->port(), "/ok/" + tag + which);
        r.headers = std::move(headers);
        r.ca_cert = cert_.cert;
        return http_request(r);
    };
    ASSERT_EQ(
        get("xray", {"X-Amzn-Trace-Id: Root=" + root + ";Parent=" + parent + ";Sampled=1"}).status,
        200);
    ASSERT_EQ(
        get("w3c", {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01"}).status,
        200);
    ASSERT_EQ(get("minted", {}).status, 200);
    for (const char* which : {"xray", "w3c", "minted"})
        ASSERT_TRUE(wait_for_url(tag + which)) << which << "\n" << agent_diagnostics();
    AgentExit exit = stop_agent_and_sync();

    std::ifstream in(record);
    auto events = events::read_recording(in);
    ASSERT_TRUE(events.ok()) << events.error();
    std::map<std::string, events::TraceCtx> by_segment;
    for (const auto& e : *events)
        if (const auto* t = std::get_if<events::TraceCtx>(&e);
            t && t->conn.tgid == static_cast<uint32_t>(server->pid()))
            by_segment[t->segment_id] = *t;
    ASSERT_EQ(by_segment.size(), 3u) << "one kernel context per HTTPS request";

    auto docs = with_url_containing(collector().documents(), tag);
    ASSERT_EQ(docs.size(), 3u);
    std::map<std::string, json> by_which;
    for (const auto& d : docs)
        for (const char* which : {"xray", "w3c", "minted"})
            if (url_ends_with(d, tag + which)) by_which[which] = d;
    ASSERT_EQ(by_which.size(), 3u);
    for (const auto& [which, d] : by_which) {
        SCOPED_TRACE(which);
        const std::string path = "/ok/" + tag;
        EXPECT_EQ(field(d, "http.request.url"), https_url(server->port(), path + which));
        const std::string id = d.at("id").get<std::string>();
        ASSERT_TRUE(by_segment.count(id)) << "segment id " << id << " is not a kernel segment id";
        const events::TraceCtx& k = by_segment.at(id);
        EXPECT_EQ(d.at("trace_id").get<std::string>(), k.trace_id);
        EXPECT_EQ(d.value("parent_id", std::string()), k.parent_id);
        EXPECT_EQ(k.request_pos, 0u) << "one request per curl connection, at plaintext position 0";
    }
    EXPECT_EQ(by_which["xray"].at("trace_id"), root);
    EXPECT_EQ(by_which["xray"].at("parent_id"), parent);
    EXPECT_EQ(by_which["w3c"].at("trace_id"), "1-8a3c60f7-d188f8fa79d48a391a778fa6");
    EXPECT_EQ(by_which["w3c"].at("parent_id"), parent);
    EXPECT_FALSE(by_which["minted"].contains("parent_id"));
    EXPECT_EQ(by_segment.at(by_which["minted"].at("id").get<std::string>()).source,
              events::CtxSource::kMinted)
        << "minted in the kernel";
    EXPECT_GE(exit.counter("correlate.kernel_context_used"), 3u) << exit.counters_text();
    EXPECT_EQ(exit.counter("correlate.kernel_context_unclaimed"), 0u) << exit.counters_text();
}

}  // namespace passport::testing::e2e
