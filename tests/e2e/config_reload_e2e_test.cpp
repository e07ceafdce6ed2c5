// The configuration file at run time: SIGHUP applies new sampling rules without losing a request
// in flight; --log-format json writes every stderr line as a JSON object; --summary-interval
// prints one summary line per interval, not one per request.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

constexpr std::string_view kSampleNothingRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 0.0},
  "rules": []
})";

// An HTTP/1.1 POST sent in two parts over a plain socket: the whole head and half of its 4-byte
// body first, the rest later, so the server has it in hand across whatever happens between. The
// head is whole in the first part: its trace context and sampling decision are made then (the
// kernel decides when a head ends).
class SplitRequest {
  public:
    SplitRequest(uint16_t port, const std::string& path) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ =
            fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
        send("POST " + path +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab");
    }
    ~SplitRequest() {
        if (fd_ >= 0) ::close(fd_);
    }
    SplitRequest(const SplitRequest&) = delete;
    SplitRequest& operator=(const SplitRequest&) = delete;

    bool connected() const { return connected_; }

    // Sends the end of the body and reads the response until the server closes.
    std::string finish() {
        send("cd");
        std::string response;
        std::array<char, 4096> buf{};
        for (ssize_t n; (n = ::recv(fd_, buf.data(), buf.size(), 0)) > 0;)
            response.append(buf.data(), static_cast<size_t>(n));
        return response;
    }

  private:
    void send(const std::string& text) {
        if (connected_)
            connected_ = ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) ==
                         static_cast<ssize_t>(text.size());
    }
    int fd_;
    bool connected_ = false;
};

// systemd's side of sd_notify: a datagram socket at NOTIFY_SOCKET receiving "READY=1" and the
// like (https://www.freedesktop.org/software/systemd/man/sd_notify.html).
class NotifySocket {
  public:
    explicit NotifySocket(const std::filesystem::path& path)
        : path_(path), fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
        bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    }
    ~NotifySocket() {
        if (fd_ >= 0) ::close(fd_);
        std::filesystem::remove(path_);
    }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    bool bound() const { return bound_; }
    // Messages until one contains `state` (or 15 s pass); every message received is kept.
    bool wait_for(const std::string& state) {
        const auto deadline = deadline_in(std::chrono::seconds(15));
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) continue;
            std::array<char, 512> buf{};
            const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n <= 0) continue;
            received_.emplace_back(buf.data(), static_cast<size_t>(n));
            if (received_.back().find(state) != std::string::npos) return true;
        }
        return false;
    }
    const std::vector<std::string>& received() const { return received_; }

  private:
    std::filesystem::path path_;
    int fd_;
    bool bound_ = false;
    std::vector<std::string> received_;
};

size_t count_lines_with(const std::string& text, const std::string& needle) {
    size_t n = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
    return n;
}

class ConfigReloadE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::filesystem::copy_file(fixture("node_server.js"), dir().path() / "server.js",
                                   std::filesystem::copy_options::overwrite_existing);
        server_ = start_script_server({"/usr/bin/node", "server.js"}, dir().path(),
                                      server_env({{"AWS_XRAY_TRACING_NAME", "reload"}}));
    }

    void TearDown() override {
        if (runner_) {
            AgentExit exit = runner_->stop();
            EXPECT_TRUE(exit.status.success()) << exit.status.describe() << "\n"
                                               << tail(exit.stderr_text);
        }
        E2eTest::TearDown();
        server_.reset();
    }

    // The agent with `args` only (no sampling rules added: the config file names them).
    AgentRunner& start(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
        AgentOptions options;
        options.agent_path = agent_path();
        options.args = std::move(args);
        options.env = std::move(env);
        runner_ = std::make_unique<AgentRunner>(collector(), std::move(options));
        return *runner_;
    }

    // SIGHUP, then waits for the agent to say the reload number `n` is done.
    void reload(size_t n) {
        ASSERT_EQ(::kill(runner_->pid(), SIGHUP), 0);
        ASSERT_TRUE(wait_until(
            [&] { return count_lines_with(runner_->stderr_text(), "reload: done") >= n; },
            deadline_in(std::chrono::seconds(15))))
            << tail(runner_->stderr_text());
    }

    // Stops the agent and returns the documents of requests whose URL contains `tag`.
    std::vector<nlohmann::json> stop_and_collect(const std::string& tag) {
        AgentExit exit = runner_->stop();
        EXPECT_TRUE(exit.status.success()) << tail(exit.stderr_text);
        EXPECT_TRUE(collector().sync(deadline_in(std::chrono::seconds(5))));
        stderr_ = exit.stderr_text;
        runner_.reset();
        return with_url_containing(collector().documents(), tag);
    }

    std::unique_ptr<TestServer> server_;
    std::unique_ptr<AgentRunner> runner_;
    std::string stderr_;
};

TEST_F(ConfigReloadE2E, SighupChangesSamplingWithoutLosingARequestInFlight) {
    const auto nothing = dir().write_file("nothing.json", kSampleNothingRules);
    const auto everything = dir().write_file("everything.json", sample_everything_rules());
    const std::string pid = std::to_string(server_->pid());
    const auto config = dir().write_file(
        "passport.yaml", "pid: [" + pid + "]\nsampling_rules: " + nothing.string() + "\n");
    start({"--config", config.string()});
    const std::string tag = unique_tag();

    // Sampling nothing: no document.
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/off")).status, 200);

    // The file now names rules that sample everything: every request has its document.
    dir().write_file("passport.yaml",
                     "pid: [" + pid + "]\nsampling_rules: " + everything.string() + "\n");
    reload(1);
    for (int i = 0; i < 5; i++) {
        const std::string path = "/ok/" + tag + "/on/" + std::to_string(i);
        ASSERT_EQ(http_get(server_->url(path)).status, 200);
        ASSERT_TRUE(wait_for_url(path)) << agent_diagnostics() << tail(runner_->stderr_text());
    }

    // A request begun under those rules and finished after the next reload (the rules file
    // itself rewritten to sample nothing) keeps its decision and its document.
    SplitRequest in_flight(server_->port(), "/echo/" + tag + "/inflight");
    ASSERT_TRUE(in_flight.connected());
    ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/marker")).status, 200);
    ASSERT_TRUE(wait_for_url("/ok/" + tag + "/marker")) << "the head was not read before reload";
    dir().write_file("everything.json", kSampleNothingRules);
    reload(2);
    EXPECT_NE(in_flight.finish().find("200 OK"), std::string::npos);
    EXPECT_TRUE(wait_for_url("/echo/" + tag + "/inflight")) << tail(runner_->stderr_text());
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/off-again")).status, 200);

    const auto docs = stop_and_collect(tag);
    EXPECT_EQ(with_url_containing(docs, "/off").size(), 0u) << "sampled at 0 %";
    EXPECT_EQ(with_url_containing(docs, "/on/").size(), 5u);
    EXPECT_EQ(with_url_containing(docs, "/inflight").size(), 1u);
    EXPECT_EQ(count_lines_with(stderr_, "needs a restart"), 0u) << stderr_;
}

TEST_F(ConfigReloadE2E, SighupChangesTheSelection) {
    auto other = start_script_server({"/usr/bin/node", "server.js"}, dir().path(),
                                     server_env({{"AWS_XRAY_TRACING_NAME", "reload-other"}}));
    const auto everything = dir().write_file("everything.json", sample_everything_rules());
    const std::string rules = "sampling_rules: " + everything.string() + "\n";
    const auto config = dir().write_file("passport.yaml",
                                         "pid: [" + std::to_string(server_->pid()) + "]\n" + rules);
    start({"--config", config.string()});
    const std::string tag = unique_tag();

    ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/first-before")).status, 200);
    ASSERT_EQ(http_get(other->url("/ok/" + tag + "/other-before")).status, 200);
    ASSERT_TRUE(wait_for_url("/ok/" + tag + "/first-before")) << agent_diagnostics();

    dir().write_file("passport.yaml", "pid: [" + std::to_string(other->pid()) + "]\n" + rules);
    reload(1);
    EXPECT_NE(runner_->stderr_text().find("1 process(es) added, 1 no longer traced"),
              std::string::npos)
        << tail(runner_->stderr_text());
    ASSERT_EQ(http_get(other->url("/ok/" + tag + "/other-after")).status, 200);
    ASSERT_TRUE(wait_for_url("/ok/" + tag + "/other-after")) << agent_diagnostics();
    ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/first-after")).status, 200);

    const auto docs = stop_and_collect(tag);
    EXPECT_EQ(with_url_containing(docs, "/first-before").size(), 1u);
    EXPECT_EQ(with_url_containing(docs, "/other-after").size(), 1u);
    EXPECT_EQ(with_url_containing(docs, "/other-before").size(), 0u) << "not selected yet";
    EXPECT_EQ(with_url_containing(docs, "/first-after").size(), 0u) << "no longer selected";
}

TEST_F(ConfigReloadE2E, SighupRenamesTheService) {
    // A server that names itself in no way: --service-name names it.
    std::filesystem::create_directories(dir().path() / "www");
    auto plain = start_python_http_server(dir().path() / "www", server_env());
    const auto everything = dir().write_file("everything.json", sample_everything_rules());
    const std::string base = "pid: [" + std::to_string(plain->pid()) +
                             "]\nsampling_rules: " + everything.string() + "\n";
    const auto config = dir().write_file("passport.yaml", base + "service_name: before\n");
    start({"--config", config.string()});
    const std::string tag = unique_tag();
    ASSERT_EQ(http_get(plain->url("/" + tag + "-one")).status, 404);
    auto first = wait_for_url("/" + tag + "-one");
    ASSERT_TRUE(first);
    EXPECT_EQ(str(*first, "name"), "before");
    EXPECT_EQ((*first)["metadata"]["passport"]["name_rule"], "configured");

    dir().write_file("passport.yaml", base + "service_name: after\n");
    reload(1);
    ASSERT_EQ(http_get(plain->url("/" + tag + "-two")).status, 404);
    auto second = wait_for_url("/" + tag + "-two");
    ASSERT_TRUE(second);
    EXPECT_EQ(str(*second, "name"), "after");
    EXPECT_EQ(runner_->stderr_text().find("'service_name' changed: it needs a restart"),
              std::string::npos);
}

TEST_F(ConfigReloadE2E, BadFileKeepsTheConfigAndRestartKeysAreLeft) {
    const auto everything = dir().write_file("everything.json", sample_everything_rules());
    const std::string pid = std::to_string(server_->pid());
    const std::string good = "pid: [" + pid + "]\nsampling_rules: " + everything.string() + "\n";
    const auto config = dir().write_file("passport.yaml", good);
    start({"--config", config.string()});
    const std::string tag = unique_tag();

    dir().write_file("passport.yaml", good + "ringbuf_mb: three\n");
    ASSERT_EQ(::kill(runner_->pid(), SIGHUP), 0);
    ASSERT_TRUE(wait_until(
        [&] {
            return runner_->stderr_text().find("configuration in use is kept") != std::string::npos;
        },
        deadline_in(std::chrono::seconds(15))));
    EXPECT_NE(runner_->stderr_text().find("passport.yaml:3: ringbuf_mb"), std::string::npos)
        << tail(runner_->stderr_text());
    ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/kept")).status, 200);
    EXPECT_TRUE(wait_for_url("/ok/" + tag + "/kept")) << "the old rules stay in force";

    dir().write_file("passport.yaml", good + "ringbuf_mb: 16\n");
    reload(1);
    EXPECT_NE(runner_->stderr_text().find("'ringbuf_mb' changed: it needs a restart"),
              std::string::npos)
        << tail(runner_->stderr_text());
    ASSERT_TRUE(runner_->running());
}

TEST_F(ConfigReloadE2E, TellsSystemdReadyReloadingAndStopping) {
    NotifySocket systemd(dir().path() / "notify.sock");
    ASSERT_TRUE(systemd.bound());
    start({"--pid", std::to_string(server_->pid()), "--sampling-rules", rules_path().string()},
          {{"NOTIFY_SOCKET", (dir().path() / "notify.sock").string()}});
    ASSERT_TRUE(systemd.wait_for("READY=1"));
    reload(1);
    ASSERT_TRUE(systemd.wait_for("RELOADING=1"));
    ASSERT_TRUE(systemd.wait_for("READY=1")) << "after the reload";
    stop_and_collect("nothing");
    ASSERT_TRUE(systemd.wait_for("STOPPING=1"));
    EXPECT_EQ(systemd.received(),
              (std::vector<std::string>{"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"}));
}

TEST_F(ConfigReloadE2E, JsonLogsAndSummaryLines) {
    const auto started = std::chrono::steady_clock::now();
    start({"--pid", std::to_string(server_->pid()), "--sampling-rules", rules_path().string(),
           "--log-format", "json", "--summary-interval", "1"});
    const std::string tag = unique_tag();
    constexpr int kRequests = 30;
    for (int i = 0; i < kRequests; i++)
        ASSERT_EQ(http_get(server_->url("/ok/" + tag + "/" + std::to_string(i))).status, 200);
    ASSERT_TRUE(wait_for_url("/ok/" + tag + "/" + std::to_string(kRequests - 1)));
    // A summary that counts this traffic (the next one after it was served).
    ASSERT_TRUE(wait_until(
        [&] {
            return runner_->stderr_text().find("requests, ") != std::string::npos &&
                   std::regex_search(runner_->stderr_text(),
                                     std::regex("summary: 1 s: [1-9][0-9]* requests"));
        },
        deadline_in(std::chrono::seconds(15))))
        << tail(runner_->stderr_text());
    stop_and_collect(tag);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    size_t lines = 0, summaries = 0, counters = 0;
    bool ready = false, report = false;
    std::istringstream in(stderr_);
    for (std::string line; std::getline(in, line); lines++) {
        SCOPED_TRACE(line);
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        ASSERT_TRUE(j.is_object());
        for (const char* field : {"time", "level", "logger", "message"})
            ASSERT_TRUE(j.contains(field) && j[field].is_string()) << field;
        EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(),
                                     std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
        const std::string message = j["message"];
        ready |= message == "ready" && j["logger"] == "passport" && j["level"] == "info";
        report |= message.find("[yes] BTF") != std::string::npos && j["logger"] == "report";
        summaries += message.rfind("summary: ", 0) == 0;
        counters += message.rfind("counter ", 0) == 0;
    }
    EXPECT_TRUE(ready);
    EXPECT_TRUE(report) << "the start report is JSON lines too";
    EXPECT_GT(counters, 10u);
    EXPECT_GE(summaries, 1u);
    EXPECT_LE(summaries, static_cast<size_t>(elapsed) + 1) << "one line per interval";
    EXPECT_LT(summaries, static_cast<size_t>(kRequests)) << "not a line per request";
    EXPECT_GT(lines, 20u);
}

}  // namespace
}  // namespace passport::testing::e2e
