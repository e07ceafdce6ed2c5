// Start and exit with many selected processes that map libssl (docs/tls.md, "Many processes"):
// the short form of bench/process_count.py. Fifty idle interpreters (`import ssl`) run from a
// copy of the system python3 under a name of this test's own, so `--exe` selects them and
// nothing else on the machine. Pass/fail are events, not durations: the agent is ready before
// a deadline, says it attached TLS to the binary and covered every process, exits on SIGINT, and
// afterwards no uprobe of its programs is left in the kernel (`bpftool perf list`).
// A plaintext request served by a selected process right after `ready` has its document; an
// HTTPS one once the attaching is done has its document, once (the libssl is then probed per
// binary, for every process, and the programs keep to the selected ones).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

constexpr int kIdle = 50;

// Programs of bpf/probes/tls.bpf.c that are attached as uprobes.
const std::set<std::string> kTlsPrograms = {"ssl_write_enter",    "ssl_read_enter",
                                            "ssl_write_ex_enter", "ssl_read_ex_enter",
                                            "ssl_set_fd_enter",   "ssl_ret"};

ChildOptions cmd(std::vector<std::string> argv) {
    ChildOptions o;
    o.argv = std::move(argv);
    return o;
}

json run_json(std::vector<std::string> argv) {
    CommandResult r = run_command(cmd(std::move(argv)), deadline_in(std::chrono::seconds(30)));
    if (!r.status.success()) return {};
    return json::parse(r.out, nullptr, false);
}

// Perf-event attachments (uprobes) of the TLS programs, anywhere on the machine; -1 unreadable.
int tls_uprobes_in_kernel() {
    const json progs = run_json({"bpftool", "-j", "prog", "show"});
    const json perf = run_json({"bpftool", "-j", "perf", "list"});
    if (!progs.is_array() || !perf.is_array()) return -1;
    std::set<int64_t> ours;
    for (const auto& p : progs) {
        if (p.contains("name") && kTlsPrograms.count(p["name"].get<std::string>()))
            ours.insert(p["id"].get<int64_t>());
    }
    int n = 0;
    for (const auto& e : perf) {
        if (e.contains("prog_id") && ours.count(e["prog_id"].get<int64_t>())) n++;
    }
    return n;
}

class TlsScaleE2eTest : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        if (tls_uprobes_in_kernel() < 0) GTEST_SKIP() << "bpftool cannot list programs";
        ASSERT_EQ(tls_uprobes_in_kernel(), 0) << "TLS uprobes of another agent are attached";
        name_ = "pps" + unique_tag();
        python_ = (dir().path() / name_).string();
        std::filesystem::copy_file(std::filesystem::canonical("/usr/bin/python3"), python_);
        ::chmod(python_.c_str(), 0755);
    }

    // kIdle interpreters that have imported ssl (each touches a file once it has).
    void start_idle() {
        std::vector<std::string> marks;
        for (int i = 0; i < kIdle; i++) {
            const std::string mark = (dir().path() / ("up." + std::to_string(i))).string();
            marks.push_back(mark);
            idle_.push_back(std::make_unique<ChildProcess>(
                cmd({python_, "-c",
                     "import ssl, time\nopen('" + mark + "', 'a').close()\ntime.sleep(1e6)\n"})));
        }
        ASSERT_TRUE(wait_until(
            [&] {
                for (const auto& m : marks)
                    if (!std::filesystem::exists(m)) return false;
                return true;
            },
            deadline_in(std::chrono::seconds(60))))
            << "idle interpreters did not start";
    }

    // The line the agent logs once the start's TLS attaching is done: {binaries, processes}.
    std::optional<std::pair<int, int>> wait_tls_attached() {
        const std::regex rx(R"(tls: attached to (\d+) binaries covering (\d+) processes)");
        std::smatch m;
        std::string log;
        if (!wait_until(
                [&] {
                    log = agent().stderr_text();
                    return std::regex_search(log, m, rx);
                },
                deadline_in(std::chrono::seconds(30))))
            return std::nullopt;
        return std::make_pair(std::stoi(m[1]), std::stoi(m[2]));
    }

    AgentOptions bounded() {
        AgentOptions o;
        o.ready_timeout = std::chrono::seconds(10);
        o.stop_timeout = std::chrono::seconds(20);
        return o;
    }

    std::string name_;
    std::string python_;
    std::vector<std::unique_ptr<ChildProcess>> idle_;
};

// Fifty selected processes: ready before the deadline, every one covered through one set of
// uprobes on their libssl, and every uprobe gone from the kernel once the agent has exited.
TEST_F(TlsScaleE2eTest, FiftyProcessesReadyAndEveryUprobeReleased) {
    start_idle();
    start_agent({"-v", "--exe", name_, "--no-inject"}, bounded());
    auto attached = wait_tls_attached();
    ASSERT_TRUE(attached) << agent_diagnostics();
    EXPECT_EQ(attached->first, 1) << "one libssl: " << agent_diagnostics();
    EXPECT_EQ(attached->second, kIdle) << agent_diagnostics();
    for (const auto& p : idle_) {
        EXPECT_NE(agent().stderr_text().find("tls: attached pid " + std::to_string(p->pid()) + ":"),
                  std::string::npos)
            << "pid " << p->pid() << " not covered";
    }
    EXPECT_GT(tls_uprobes_in_kernel(), 0);

    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("tls.processes_covered"), static_cast<uint64_t>(kIdle));
    EXPECT_EQ(exit.counter("tls.binaries_attached"), 1u);
    EXPECT_EQ(exit.counter("tls.attach_failed"), 0u);
    // The agent's process is gone, and the kernel has released every uprobe it attached.
    EXPECT_EQ(tls_uprobes_in_kernel(), 0);
}

// A selected plaintext server gets a request the moment the agent is ready (TLS still being
// attached in the background): its document arrives. Then an HTTPS server, selected too, gets
// one once the attaching is done: one document, and none for the unselected curl.
TEST_F(TlsScaleE2eTest, RequestsRightAfterReadyHaveTheirDocuments) {
    start_idle();
    std::filesystem::create_directories(dir().path() / "www");
    std::ofstream(dir().path() / "www" / "index.html") << "hello\n";
    auto plain = start_python_http_server(dir().path() / "www", server_env());
    const std::string cert = (dir().path() / "cert.pem").string();
    const std::string key = (dir().path() / "key.pem").string();
    ASSERT_TRUE(run_command(cmd({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                 "-keyout", key, "-out", cert, "-days", "1", "-subj",
                                 "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"}),
                            deadline_in(std::chrono::seconds(60)))
                    .status.success());
    auto https = start_script_server({python3_path(), fixture("tls_server.py").string(), cert, key},
                                     dir().path(), server_env());

    start_agent({"-v", "--exe", name_, "--pid", std::to_string(plain->pid()), "--pid",
                 std::to_string(https->pid()), "--no-inject"},
                bounded());
    const std::string first = "/index.html?right-after-ready-" + unique_tag();
    ASSERT_EQ(http_get("http://127.0.0.1:" + std::to_string(plain->port()) + first).status, 200);
    EXPECT_TRUE(wait_for_url(first)) << agent_diagnostics();

    ASSERT_TRUE(wait_tls_attached()) << agent_diagnostics();
    const std::string secure = "/ok/" + unique_tag();
    const std::string url = "https://127.0.0.1:" + std::to_string(https->port()) + secure;
    HttpRequest req;
    req.url = url;
    req.ca_cert = cert;
    HttpResponse r = http_request(req);
    ASSERT_EQ(r.status, 200) << r.curl_stderr;
    EXPECT_TRUE(wait_for_url(secure)) << agent_diagnostics();
    stop_agent_and_sync();
    size_t segments = 0;
    for (const auto& d : collector().documents()) segments += url_ends_with(d, secure) ? 1 : 0;
    EXPECT_EQ(segments, 1u) << "the HTTPS request is one segment, from the selected server only";
}

}  // namespace
}  // namespace passport::testing::e2e
