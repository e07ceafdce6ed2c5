// The health and metrics endpoint (--metrics-address) of the real agent tracing real nginx:
// /metrics passes `promtool check metrics` (the Prometheus project's own parser and linter) and
// its values equal the exit counters; /healthz follows the exporter; only GET on three paths is
// served; it answers while nginx is under wrk load; `off` listens nowhere; a taken address is
// refused as documented (docs/deploy.md, "Health and metrics").
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <regex>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using Series = std::map<std::string, double>;

ChildOptions command(std::vector<std::string> argv) {
    ChildOptions o;
    o.argv = std::move(argv);
    return o;
}

// Waits until `p` exited and all its output was read; its status, or nullopt at the deadline.
std::optional<ExitStatus> finished(ChildProcess& p, Deadline deadline) {
    auto status = p.wait_exit(deadline);
    if (!status) return status;
    wait_until([&] { return p.at_eof(Stream::kStdout) && p.at_eof(Stream::kStderr); }, deadline);
    return status;
}

// The value of `key` in `s`, or -1 (reported) when the page has no such series.
double value(const std::map<std::string, double>& s, const std::string& key) {
    auto it = s.find(key);
    if (it != s.end()) return it->second;
    ADD_FAILURE() << "no series " << key;
    return -1;
}

// decode.ok also counts the exec and exit records of every process on the machine (selection
// by --exe needs them), so it moves with unrelated activity between a scrape and the exit.
constexpr std::string_view kMachineWide =
    "passport_decode_ok_total";  // `name{label="value"}` -> value

// The samples of a Prometheus text page, keyed as printed (comments skipped).
Series parse_samples(const std::string& text) {
    Series out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto close = line.find('}');
        const auto key_end = close != std::string::npos ? close + 1 : line.find(' ');
        if (key_end == std::string::npos || key_end >= line.size()) continue;
        out[line.substr(0, key_end)] = std::stod(line.substr(key_end + 1));
    }
    return out;
}

// The series an exit counter appears as, following the table in docs/deploy.md.
std::string series_of(const std::string& counter) {
    static const std::set<std::string> drop_reasons = {
        "ringbuf_full",      "args_map_full", "conn_map_full",   "read_user_failed",
        "payload_truncated", "iov_limit",     "tail_call_failed"};
    static const std::set<std::string> gauges = {"kernel.sampling_rules_deferred",
                                                 "stream.budget_peak_bytes", "identity.ec2",
                                                 "identity.ecs_endpoints", "identity.containers"};
    auto starts = [&](std::string_view prefix) { return counter.rfind(prefix, 0) == 0; };
    if (starts("kernel.") && drop_reasons.count(counter.substr(7)))
        return "passport_kernel_drops_total{reason=\"" + counter.substr(7) + "\"}";
    if (starts("inject."))
        return "passport_injection_events_total{event=\"" + counter.substr(7) + "\"}";
    if (starts("decode.rejected."))
        return "passport_decode_rejected_total{reason=\"" + counter.substr(16) + "\"}";
    if (starts("identity.missing."))
        return "passport_identity_missing_total{reason=\"" + counter.substr(17) + "\"}";
    for (const char* what : {"requests", "sampled", "borrowed"}) {
        const std::string prefix = std::string("sampling.rule_") + what + ".";
        if (starts(prefix))
            return "passport_sampling_rule_" + std::string(what) + "_total{rule=\"" +
                   counter.substr(prefix.size()) + "\"}";
    }
    std::string name = "passport_" + std::regex_replace(counter, std::regex("[^a-z0-9_]"), "_");
    return gauges.count(counter) ? name : name + "_total";
}

class MetricsE2E : public E2eTest {
  protected:
    // A process to select that makes no traffic of its own.
    std::string idle_pid() {
        if (!idle_) idle_ = std::make_unique<ChildProcess>(command({"sleep", "600"}));
        return std::to_string(idle_->pid());
    }

    // The endpoint's base URL from the start report line "[yes] metrics - URL/metrics".
    std::string endpoint() {
        std::smatch m;
        const std::string text = agent().stderr_text();
        if (!std::regex_search(text, m, std::regex(R"(\[yes\] metrics - (http://\S+)/metrics)")))
            return "";
        return m[1];
    }

    HttpResponse call(const std::string& method, const std::string& path) {
        HttpRequest r;
        r.method = method;
        r.url = endpoint() + path;
        return http_request(r);
    }

    // promtool's verdict on a page: "" when it parses and passes the lint, else what it said.
    std::string promtool_problems(const std::string& page) {
        const auto file = dir().write_file("scrape-" + unique_tag() + ".prom", page);
        ChildProcess check(command({"sh", "-c", "promtool check metrics < " + file.string()}));
        const auto status = finished(check, deadline_in(std::chrono::seconds(30)));
        std::string said = check.text(Stream::kStdout) + check.text(Stream::kStderr);
        if (!status || !status->success())
            return "promtool " + (status ? status->describe() : "timed out") + ": " + said;
        return said;
    }

    // Scrapes until two pages a publish apart agree on every passport_* counter: the
    // agent then holds no work that could still move them before it stops.
    std::optional<std::string> settled_page(Deadline deadline) {
        std::optional<Series> previous;
        std::optional<std::string> page;
        wait_until(
            [&] {
                HttpResponse r = call("GET", "/metrics");
                if (r.status != 200) return false;
                Series now = parse_samples(r.body);
                for (auto it = now.begin(); it != now.end();)
                    it = it->first.rfind("passport_ringbuf_used", 0) == 0 ||
                                 it->first.rfind("process_", 0) == 0 || it->first == kMachineWide
                             ? now.erase(it)
                             : std::next(it);
                const bool same = previous && *previous == now;
                previous = std::move(now);
                page = r.body;
                return same;
            },
            deadline, std::chrono::milliseconds(1500));
        return page;
    }

  private:
    std::unique_ptr<ChildProcess> idle_;
};

TEST_F(MetricsE2E, MetricsPassPromtoolAndEqualTheExitCounters) {
    if (auto why = nginx_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    // nginx clears its workers' environment: their segments are named "nginx".
    auto nginx = start_nginx(dir(), server_env());
    start_agent({"--pid", std::to_string(nginx->pid()), "--metrics-address", "127.0.0.1:0"});
    ASSERT_FALSE(endpoint().empty()) << agent().stderr_text();

    const std::vector<std::pair<std::string, int>> requests = {
        {"/ok/a", 200},       {"/ok/b", 200},   {"/ok/c", 200},  {"/missing/x", 404},
        {"/throttle/y", 429}, {"/boom/z", 500}, {"/boom/w", 500}};
    for (const auto& [path, status] : requests) {
        const std::string tagged = path + "-" + unique_tag();
        ASSERT_EQ(http_get(nginx->url(tagged)).status, status);
        ASSERT_TRUE(wait_for_url(tagged)) << agent_diagnostics();
    }
    const auto page = settled_page(deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(page) << "no /metrics page";
    EXPECT_EQ(promtool_problems(*page), "") << *page;
    const Series scraped = parse_samples(*page);

    const std::string svc = "{service=\"nginx\"}";
    EXPECT_EQ(value(scraped, "passport_service_requests_total" + svc), 7) << *page;
    EXPECT_EQ(value(scraped, "passport_service_errors_total" + svc), 2) << *page;
    EXPECT_EQ(value(scraped, "passport_service_faults_total" + svc), 2) << *page;
    EXPECT_EQ(value(scraped, "passport_service_request_duration_seconds_count" + svc), 7);
    EXPECT_EQ(value(scraped,
                    "passport_service_request_duration_seconds_bucket{service=\"nginx\","
                    "le=\"+Inf\"}"),
              7)
        << *page;
    EXPECT_EQ(value(scraped, "passport_export_documents_sent_total"), collector().count());
    // The kernel's per-rule statistics: every request was decided there by the default rule and
    // recorded (sampled from its reservoir or rate, or borrowed).
    const std::string rule = "{rule=\"Default\"}";
    EXPECT_EQ(value(scraped, "passport_sampling_rule_requests_total" + rule), 7) << *page;
    EXPECT_EQ(value(scraped, "passport_sampling_rule_sampled_total" + rule) +
                  value(scraped, "passport_sampling_rule_borrowed_total" + rule),
              7)
        << *page;
    EXPECT_GT(value(scraped, "process_resident_memory_bytes"), 0);
    EXPECT_GT(value(scraped, "process_cpu_seconds_total"), 0);
    EXPECT_EQ(value(scraped, "passport_ringbuf_size_bytes"), 8 << 20);
    EXPECT_EQ(value(scraped, "passport_kernel_feature{feature=\"ringbuf\"}"), 1);
    EXPECT_NE(page->find("passport_build_info{abi=\""), std::string::npos);
    EXPECT_EQ(call("GET", "/healthz").status, 200) << call("GET", "/healthz").body;

    const AgentExit exit = stop_agent_and_sync();
    ASSERT_FALSE(exit.counters.empty()) << exit.stderr_text;
    for (const auto& [name, count] : exit.counters) {
        const std::string series = series_of(name);
        const double seen = value(scraped, series);
        if (series == kMachineWide) {
            EXPECT_LE(seen, static_cast<double>(count)) << name << " vs " << series;
        } else {
            EXPECT_EQ(seen, static_cast<double>(count)) << name << " vs " << series;
        }
    }
}

TEST_F(MetricsE2E, HealthzIs503WhileNoDaemonListens) {
    if (auto why = nginx_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    auto nginx = start_nginx(dir(), server_env());
    const uint16_t closed = closed_udp_port();
    AgentOptions options;
    options.daemon_address = "127.0.0.1:" + std::to_string(closed);
    start_agent({"--pid", std::to_string(nginx->pid()), "--metrics-address", "127.0.0.1:0"},
                options);
    ASSERT_EQ(call("GET", "/readyz").status, 200);
    // Nothing sent yet: the probes are attached and no send has failed.
    HttpResponse health = call("GET", "/healthz");
    EXPECT_EQ(health.status, 200) << health.body;

    // Connected UDP sockets learn of the ICMP port-unreachable on their next send.
    const bool unhealthy = wait_until(
        [&] {
            http_get(nginx->url("/ok/" + unique_tag()));
            health = call("GET", "/healthz");
            return health.status == 503;
        },
        deadline_in(std::chrono::seconds(30)), std::chrono::milliseconds(200));
    EXPECT_TRUE(unhealthy) << health.status << " " << health.body;
    EXPECT_NE(health.body.find("sends failed in the last 10 s: connection refused"),
              std::string::npos)
        << health.body;
    EXPECT_NE(health.body.find("udp 127.0.0.1:" + std::to_string(closed)), std::string::npos)
        << health.body;
    EXPECT_EQ(call("GET", "/readyz").status, 200);  // ready, but not healthy
}

TEST_F(MetricsE2E, OnlyGetOnThreePathsIsServed) {
    start_agent({"--pid", idle_pid(), "--metrics-address", "127.0.0.1:0"});
    for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
        EXPECT_EQ(call("GET", path).status, 200) << path;
        for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
            HttpResponse r = call(method, path);
            EXPECT_EQ(r.status, 405) << method << " " << path << ": " << r.body;
        }
    }
    for (const char* path : {"/", "/metricsx", "/metrics/", "/debug/pprof", "/../etc/passwd"})
        EXPECT_EQ(call("GET", path).status, 404) << path;
    // A request head past the size limit is refused, and the endpoint still answers after it.
    HttpRequest big;
    big.url = endpoint() + "/metrics";
    big.headers = {"X-Padding: " + std::string(size_t{16} * 1024, 'a')};
    EXPECT_NE(http_request(big).status, 200);
    EXPECT_EQ(call("GET", "/healthz").status, 200);
}

TEST_F(MetricsE2E, AnswersWhileTheTracedServerIsUnderLoad) {
    if (auto why = nginx_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    if (find_executable("wrk").empty()) GTEST_SKIP() << "wrk is not installed";
    auto nginx = start_nginx(dir(), server_env());
    start_agent({"--pid", std::to_string(nginx->pid()), "--metrics-address", "127.0.0.1:0"});
    ChildProcess wrk(
        command({"wrk", "-t2", "-c64", "-d4s", nginx->url("/ok/load-" + unique_tag())}));
    // Scrapes while wrk runs: every one is answered in full.
    int scrapes = 0;
    while (wrk.running()) {
        HttpResponse r = call("GET", "/metrics");
        ASSERT_EQ(r.status, 200) << r.curl_stderr;
        ASSERT_NE(r.body.find("passport_build_info"), std::string::npos);
        // The ring's positions are read from its mapped pages: never more waiting than it holds.
        const Series s = parse_samples(r.body);
        EXPECT_LE(value(s, "passport_ringbuf_used_bytes"), value(s, "passport_ringbuf_size_bytes"));
        EXPECT_EQ(call("GET", "/readyz").status, 200);
        scrapes++;
    }
    EXPECT_GE(scrapes, 1);
    std::cout << "[ metrics  ] " << scrapes << " scrapes answered during the load" << std::endl;
    const auto page = settled_page(deadline_in(std::chrono::seconds(60)));
    ASSERT_TRUE(page);
    EXPECT_GT(parse_samples(*page)["passport_service_requests_total{service=\"nginx\"}"], 0)
        << *page;
}

TEST_F(MetricsE2E, OffListensNowhere) {
    start_agent({"--pid", idle_pid(), "--metrics-address", "off"});
    EXPECT_NE(agent().stderr_text().find("[no]  metrics - off"), std::string::npos);
    ChildProcess ss(command({"ss", "-Hltnp"}));
    ASSERT_TRUE(finished(ss, deadline_in(std::chrono::seconds(10))));
    const std::string listening = ss.text(Stream::kStdout);
    EXPECT_EQ(listening.find("pid=" + std::to_string(agent().pid()) + ","), std::string::npos)
        << listening;
}

// A TCP socket listening on 127.0.0.1:port (port 0: any), closed with the object.
struct Listener {
    explicit Listener(uint16_t port) : fd(::socket(AF_INET, SOCK_STREAM, 0)) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 1) == 0;
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        this->port = ntohs(a.sin_port);
    }
    ~Listener() { ::close(fd); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    int fd;
    bool bound = false;
    uint16_t port = 0;
};

TEST_F(MetricsE2E, AGivenAddressInUseStopsTheAgentWithStatus2) {
    Listener taken(0);
    ASSERT_TRUE(taken.bound);
    ChildProcess agent(command({agent_path(), "--pid", idle_pid(), "--daemon-address",
                                "127.0.0.1:" + std::to_string(closed_udp_port()),
                                "--metrics-address", "127.0.0.1:" + std::to_string(taken.port)}));
    const auto status = finished(agent, deadline_in(std::chrono::seconds(30)));
    ASSERT_TRUE(status);
    EXPECT_TRUE(status->exited && status->code == 2) << status->describe();
    const std::string said = agent.text(Stream::kStderr);
    EXPECT_NE(said.find("--metrics-address cannot listen on 127.0.0.1:" +
                        std::to_string(taken.port) + ": Address already in use"),
              std::string::npos)
        << said;
    EXPECT_EQ(said.find("passport: ready"), std::string::npos) << said;
}

TEST_F(MetricsE2E, TheDefaultAddressInUseOnlyTurnsTheEndpointOff) {
    Listener taken(9472);  // or someone else already holds it: the same situation
    start_agent({"--pid", idle_pid()});
    const std::string said = agent().stderr_text();
    EXPECT_NE(said.find("[no]  metrics - cannot listen on 127.0.0.1:9472"), std::string::npos)
        << said;
}

}  // namespace
}  // namespace passport::testing::e2e
