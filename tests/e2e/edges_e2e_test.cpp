// Traffic at the edges, on a real traced server (tests/e2e/fixtures/edge_server.py): deep
// pipelining on one connection, a response streamed for 90 s, and slowloris clients holding
// unfinished request heads against the agent's memory budget.
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

// VmRSS of a process in KiB (0 when it cannot be read).
uint64_t rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
    }
    return 0;
}

class EdgesE2E : public E2eTest {
  protected:
    // `workers` processes share the listening socket (each holds at most its descriptor limit).
    std::unique_ptr<TestServer> start_edge_server(int workers = 1) {
        // The server holds one descriptor per slowloris connection.
        raise_nofile();
        return start_script_server(
            {python3_path(), fixture("edge_server.py").string(), std::to_string(workers)},
            dir().path(), server_env());
    }

    // Raises the descriptor limit the server and clients inherit: to 200,000 when allowed (root
    // may raise the hard limit), else to the hard limit.
    static void raise_nofile() {
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        const rlimit wanted{std::max<rlim_t>(limit.rlim_max, 200'000),
                            std::max<rlim_t>(limit.rlim_max, 200'000)};
        if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) return;
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }

    CommandResult run_client(std::vector<std::string> args, std::chrono::seconds timeout) {
        std::vector<std::string> argv = {python3_path(), fixture("edge_client.py").string()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(ChildOptions{argv, {}, {}, dir().path(), true}, deadline_in(timeout));
    }

    void streamed_response(int seconds);
    // Slowloris: `connections` clients each holding `head_bytes` of an unfinished head, a normal
    // request traced meanwhile, and the agent's RSS under its budget plus a fixed overhead.
    void slowloris(size_t connections, size_t head_bytes, size_t budget_mb, size_t overhead_mb,
                   int server_workers, std::chrono::seconds setup_timeout);
};

TEST_F(EdgesE2E, HundredPipelinedRequestsEachPairWithTheirOwnResponse) {
    auto server = start_edge_server();
    start_agent({"--pid", std::to_string(server->pid())});
    const std::string tag = unique_tag();
    constexpr int kRequests = 100;

    CommandResult run = run_client(
        {"pipeline", "127.0.0.1", std::to_string(server->port()), tag, std::to_string(kRequests)},
        std::chrono::seconds(60));
    ASSERT_TRUE(run.status.success()) << run.status.describe() << "\n" << run.err;
    ASSERT_NE(run.out.find("ok 100"), std::string::npos) << run.out;

    const std::string prefix = "/pipe/" + tag + "/";
    auto docs = collector().wait_for_count([&](const json& d) { return url_contains(d, prefix); },
                                           kRequests, deadline_in(kDocumentTimeout));
    ASSERT_EQ(docs.size(), static_cast<size_t>(kRequests)) << agent_diagnostics();
    std::set<int> seen;
    for (const json& doc : docs) {
        const std::string url = field(doc, "http.request.url").get<std::string>();
        const int i = std::stoi(url.substr(url.rfind('/') + 1));
        SCOPED_TRACE(url);
        EXPECT_TRUE(is_valid_segment(doc));
        // The response's status and length are functions of the request's number.
        EXPECT_TRUE(has_http(doc, "GET", server->url(prefix + std::to_string(i)),
                             std::array{200, 201, 202}[i % 3], static_cast<uint64_t>(i + 1)));
        EXPECT_TRUE(field(doc, "fault").is_null() || field(doc, "fault") == false) << brief(doc);
        seen.insert(i);
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(kRequests));
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("pairing.pending_overflow"), 0u) << exit.counters_text();
    EXPECT_EQ(with_url_containing(collector().documents(), prefix).size(),
              static_cast<size_t>(kRequests));
}

// A response streamed for `seconds` (one chunk a second) is one segment, whole.
void EdgesE2E::streamed_response(int seconds) {
    auto server = start_edge_server();
    start_agent({"--pid", std::to_string(server->pid())});
    const std::string tag = unique_tag();
    const std::string n = std::to_string(seconds);

    CommandResult run = run_client({"stream", "127.0.0.1", std::to_string(server->port()), tag, n},
                                   std::chrono::seconds(seconds + 60));
    ASSERT_TRUE(run.status.success()) << run.status.describe() << "\n" << run.err;
    ASSERT_NE(run.out.find("ok chunks=" + n), std::string::npos) << run.out;

    const std::string path = "/stream/" + tag + "?seconds=" + n;
    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_TRUE(has_http(*doc, "GET", server->url(path), 200));
    EXPECT_TRUE(has_status_flags(*doc, 200));
    EXPECT_TRUE(field(*doc, "cause").is_null()) << brief(*doc);
    const double duration =
        field(*doc, "end_time").get<double>() - field(*doc, "start_time").get<double>();
    EXPECT_GT(duration, seconds - 1.0) << brief(*doc);
    EXPECT_LT(duration, seconds + 5.0) << brief(*doc);

    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("pairing.timed_out"), 0u) << exit.counters_text();
    EXPECT_EQ(with_url_containing(collector().documents(), "/stream/" + tag).size(), 1u);
}

// The short form, in every run: a response streamed over seconds stays one exchange.
TEST_F(EdgesE2E, ResponseStreamedFor10SecondsIsOneSegment) { streamed_response(10); }

// Longer than the 60 s a request may wait for its response to begin (the pairing timeout,
// unit-tested in PairingHttp.StreamedResponseLongerThanTheTimeoutIsOneCompleteExchange): label
// soak, scripts/test.sh -L soak.
TEST_F(EdgesE2E, ResponseStreamedFor90SecondsSoak) { streamed_response(90); }

void EdgesE2E::slowloris(size_t connections, size_t head_bytes, size_t budget_mb,
                         size_t overhead_mb, int server_workers,
                         std::chrono::seconds setup_timeout) {
    auto server = start_edge_server(server_workers);
    AgentRunner& agent = start_agent(
        {"--pid", std::to_string(server->pid()), "--memory-budget-mb", std::to_string(budget_mb)});
    const uint64_t idle_kib = rss_kib(agent.pid());
    ASSERT_GT(idle_kib, 0u);

    raise_nofile();
    std::vector<std::string> argv = {python3_path(),
                                     fixture("edge_client.py").string(),
                                     "slowloris",
                                     "127.0.0.1",
                                     std::to_string(server->port()),
                                     std::to_string(connections),
                                     std::to_string(head_bytes)};
    ChildProcess client(ChildOptions{argv, {}, {}, dir().path(), true});
    uint64_t peak_kib = idle_kib;
    const Deadline held_by = deadline_in(setup_timeout);
    bool held = false;
    while (!held && SteadyClock::now() < held_by && client.running()) {
        held = client
                   .wait_for_line(Stream::kStdout, std::regex("^held "),
                                  deadline_in(std::chrono::milliseconds(200)))
                   .has_value();
        peak_kib = std::max(peak_kib, rss_kib(agent.pid()));
    }
    ASSERT_TRUE(held) << client.describe();

    // Heads held: a normal request is still traced, while the RSS is watched a while longer.
    const std::string path = "/normal/" + unique_tag();
    HttpResponse response = http_get(server->url(path));
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    auto doc = wait_for_url(path);
    for (int i = 0; i < 20; ++i) {
        peak_kib = std::max(peak_kib, rss_kib(agent.pid()));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(has_http(*doc, "GET", server->url(path), 200));

    const uint64_t limit_kib = idle_kib + (budget_mb + overhead_mb) * 1024;
    std::cout << "[ rss      ] idle " << idle_kib / 1024 << " MiB, peak " << peak_kib / 1024
              << " MiB, limit " << limit_kib / 1024 << " MiB (" << connections << " x "
              << head_bytes << " B heads, budget " << budget_mb << " MiB)" << std::endl;
    EXPECT_LT(peak_kib, limit_kib);
    client.stop();
    AgentExit exit = stop_agent_and_sync();
    // The budget really was exercised: heads were shed, and the peak stayed within it.
    EXPECT_GT(exit.counter("stream.budget_dropped_heads"), 0u) << exit.counters_text();
    EXPECT_LE(exit.counter("stream.budget_peak_bytes"), (budget_mb << 20) + head_bytes * 2)
        << exit.counters_text();
}

// CI size: 5,000 connections x 30 KiB (146 MiB of heads) against a 16 MiB budget.
TEST_F(EdgesE2E, SlowlorisHeadsStayWithinTheMemoryBudget) {
    slowloris(5000, size_t{30} * 1024, 16, 64, 1, std::chrono::seconds(120));
}

// Full size (label soak, not run in CI): 50,000 connections x 30 KiB against the default budget,
// served by 8 server processes so no process needs more than its descriptor limit.
TEST_F(EdgesE2E, SoakSlowloris50kConnections) {
    slowloris(50000, size_t{30} * 1024, 256, 64, 8, std::chrono::seconds(900));
}

}  // namespace
}  // namespace passport::testing::e2e
