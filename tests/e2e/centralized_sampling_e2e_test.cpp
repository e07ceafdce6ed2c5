// X-Ray centralized sampling at the agent, against a stand-in for the X-Ray daemon's sampling
// proxy (fixtures/fake_xray_sampling.py, the JSON shapes of the X-Ray API): the rules it serves
// decide which requests of a real server become documents, the statistics the agent reports
// add up to what it decided, and while the proxy is down the local rules decide (visible in
// /metrics and /readyz) until it answers again.
#include <cmath>
#include <fstream>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

// SamplingRule objects (https://docs.aws.amazon.com/xray/latest/api/API_SamplingRule.html):
// /none/ never; GET /svc/ of the service "central-svc" always; /load/ 2 a second then 20 %; the
// rest by Default: a reservoir of 1 a second (borrowed until the quota arrives), no fixed rate.
constexpr std::string_view kRules = R"([
 {"RuleName": "none", "Priority": 1, "FixedRate": 0.0, "ReservoirSize": 0, "ServiceName": "*",
  "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "/none/*", "ResourceARN": "*",
  "Attributes": {}, "Version": 1},
 {"RuleName": "svc", "Priority": 3, "FixedRate": 1.0, "ReservoirSize": 0,
  "ServiceName": "central-svc", "ServiceType": "*", "Host": "*", "HTTPMethod": "GET",
  "URLPath": "/svc/*", "ResourceARN": "*", "Attributes": {}, "Version": 1},
 {"RuleName": "other-service", "Priority": 4, "FixedRate": 1.0, "ReservoirSize": 0,
  "ServiceName": "someone-else", "ServiceType": "*", "Host": "*", "HTTPMethod": "*",
  "URLPath": "/other/*", "ResourceARN": "*", "Attributes": {}, "Version": 1},
 {"RuleName": "wrong-host", "Priority": 5, "FixedRate": 1.0, "ReservoirSize": 0,
  "ServiceName": "*", "ServiceType": "*", "Host": "elsewhere.example", "HTTPMethod": "*",
  "URLPath": "*", "ResourceARN": "*", "Attributes": {}, "Version": 1},
 {"RuleName": "load", "Priority": 6, "FixedRate": 0.2, "ReservoirSize": 2, "ServiceName": "*",
  "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "/load/*", "ResourceARN": "*",
  "Attributes": {}, "Version": 1},
 {"RuleName": "Default", "Priority": 10000, "FixedRate": 0.0, "ReservoirSize": 1,
  "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
  "ResourceARN": "*", "Attributes": {}, "Version": 1}
])";

// The local fallback: /svc/ always, under a name of its own; nothing else.
constexpr std::string_view kLocalRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 0.0},
  "rules": [{"description": "local-svc", "host": "*", "http_method": "*",
             "url_path": "/svc/*", "fixed_target": 0, "rate": 1.0}]
})";

constexpr int kPerPath = 30;

// "svc" for "http://127.0.0.1:8000/svc/t1/2".
std::string first_path_segment(const std::string& url) {
    const size_t start = url.find('/', url.find("://") + 3) + 1;
    return url.substr(start, url.find('/', start) - start);
}

struct RuleCounts {
    uint64_t requests = 0;
    uint64_t sampled = 0;
    uint64_t borrowed = 0;
};

class CentralizedSamplingE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::filesystem::create_directories(dir().path() / "www");
        server_ = start_python_http_server(dir().path() / "www",
                                           server_env({{"AWS_XRAY_TRACING_NAME", "central-svc"}}));
        dir().write_file("rules.json", kRules);
        start_api(0);
        ASSERT_NE(api_port_, "") << api_->describe(4000);
        const auto local = dir().write_file("local.json", kLocalRules);
        AgentOptions options;
        options.daemon_address = "udp:" + collector().address() + " tcp:127.0.0.1:" + api_port_;
        start_agent({"--pid", std::to_string(server_->pid()), "--sampling-rules", local.string(),
                     "--sampling", "centralized", "--metrics-address", "127.0.0.1:0"},
                    options);
    }

    void TearDown() override {
        E2eTest::TearDown();
        api_.reset();
        server_.reset();
    }

    void start_api(int port) {
        const auto log = dir().path() / "api.log";
        api_ = std::make_unique<ChildProcess>(ChildOptions{
            {python3_path(), fixture("fake_xray_sampling.py").string(),
             (dir().path() / "rules.json").string(), log.string(), std::to_string(port)},
            {{"PYTHONUNBUFFERED", "1"}},
            {},
            dir().path(),
            true});
        auto line = api_->wait_for_line(Stream::kStdout, std::regex(R"(listening (\d+))"),
                                        deadline_in(std::chrono::seconds(20)));
        if (line) api_port_ = line->groups[1];
    }

    std::string endpoint() {
        std::smatch m;
        const std::string text = agent().stderr_text();
        if (!std::regex_search(text, m, std::regex(R"(\[yes\] metrics - (http://\S+)/metrics)")))
            return "";
        return m[1];
    }

    // The value of a /metrics sample, -1 when absent.
    double metric(const std::string& name) {
        const HttpResponse r = http_get(endpoint() + "/metrics");
        std::smatch m;
        if (!std::regex_search(r.body, m, std::regex("\n" + name + " ([0-9.e+]+)"))) return -1;
        return std::stod(m[1]);
    }

    bool wait_centralized(bool on) {
        return wait_until([&] { return metric("passport_sampling_centralized") == (on ? 1 : 0); },
                          deadline_in(std::chrono::seconds(30)), std::chrono::milliseconds(200));
    }

    // The statistics the stand-in received, summed per rule.
    std::map<std::string, RuleCounts> reported() {
        std::map<std::string, RuleCounts> out;
        std::ifstream in(dir().path() / "api.log");
        std::string line;
        while (std::getline(in, line)) {
            const auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_discarded() || j.value("path", "") != "/SamplingTargets") continue;
            for (const auto& d : j["body"]["SamplingStatisticsDocuments"]) {
                RuleCounts& c = out[d["RuleName"].get<std::string>()];
                c.requests += d["RequestCount"].get<uint64_t>();
                c.sampled += d["SampledCount"].get<uint64_t>();
                c.borrowed += d["BorrowCount"].get<uint64_t>();
            }
        }
        return out;
    }

    // The same, per ClientID.
    std::map<std::string, std::map<std::string, RuleCounts>> reported_by_client() {
        std::map<std::string, std::map<std::string, RuleCounts>> out;
        std::ifstream in(dir().path() / "api.log");
        std::string line;
        while (std::getline(in, line)) {
            const auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_discarded() || j.value("path", "") != "/SamplingTargets") continue;
            for (const auto& d : j["body"]["SamplingStatisticsDocuments"]) {
                RuleCounts& c =
                    out[d["ClientID"].get<std::string>()][d["RuleName"].get<std::string>()];
                c.requests += d["RequestCount"].get<uint64_t>();
                c.sampled += d["SampledCount"].get<uint64_t>();
                c.borrowed += d["BorrowCount"].get<uint64_t>();
            }
        }
        return out;
    }

    size_t docs_with(const std::string& part, const std::string& rule) {
        size_t n = 0;
        for (const auto& d : with_url_containing(collector().documents(), part))
            n += str(d, "aws.xray.rule_name") == rule ? 1 : 0;
        return n;
    }

    std::unique_ptr<TestServer> server_;
    std::unique_ptr<ChildProcess> api_;
    std::string api_port_;
};

TEST_F(CentralizedSamplingE2E, RulesDecideAndStatisticsAddUp) {
    ASSERT_TRUE(wait_centralized(true)) << agent_diagnostics();
    const std::string tag = unique_tag();
    for (int i = 0; i < kPerPath; i++) {
        for (const char* p : {"/svc/", "/none/", "/other/"})  // 404s: sampling ignores status
            ASSERT_EQ(http_get(server_->url(p + tag + "/" + std::to_string(i))).status, 404);
    }
    // Every decision reported (the agent reports every 10 s).
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = reported();
            return r["svc"].requests + r["none"].requests + r["Default"].requests >=
                   uint64_t{3} * kPerPath;
        },
        deadline_in(std::chrono::seconds(40)), std::chrono::milliseconds(500)))
        << agent_diagnostics();
    // The kernel decided under X-Ray's rules: its per-rule counters hold every /none/ request
    // ("none" names no service, so every process may meet it in the kernel). /svc/ names the
    // server's service: until the process's rule mask is written, userspace decides those.
    EXPECT_EQ(metric(R"(passport_sampling_rule_requests_total\{rule="none"\})"), kPerPath)
        << agent_diagnostics();
    stop_agent_and_sync();

    auto r = reported();
    EXPECT_EQ(r["svc"].requests, uint64_t{kPerPath});
    EXPECT_EQ(r["svc"].sampled, uint64_t{kPerPath});
    EXPECT_EQ(r["none"].requests, uint64_t{kPerPath});
    EXPECT_EQ(r["none"].sampled + r["none"].borrowed, 0u);
    // /other/ names another service; the host rule names another host: Default decides.
    EXPECT_EQ(r["Default"].requests, uint64_t{kPerPath});
    EXPECT_EQ(r.count("other-service"), 0u);
    EXPECT_EQ(r.count("wrong-host"), 0u);
    EXPECT_EQ(docs_with("/svc/" + tag, "svc"), size_t{kPerPath});
    EXPECT_EQ(with_url_containing(collector().documents(), "/none/" + tag).size(), 0u);
    // Default: one a second, borrowed or from the quota; the documents are exactly those.
    const size_t other = with_url_containing(collector().documents(), "/other/" + tag).size();
    EXPECT_EQ(other, r["Default"].sampled + r["Default"].borrowed);
    EXPECT_GE(other, 1u);
    EXPECT_EQ(docs_with("/other/" + tag, "Default"), other);
}

// A few seconds of load under a rule with a quota (2 a second, granted by the stand-in once the
// rule was reported) and a fixed rate (20 %): the documents are exactly what the statistics
// say was sampled; at most 2 per second come from the quota and the rest is binomial, so with
// n requests over S seconds (measured) the sampled count lies within
// [0.2 (n - 2 (S + 1)) - 5 sd, 2 (S + 1) + 0.2 n + 5 sd], sd = sqrt(n 0.2 0.8).
TEST_F(CentralizedSamplingE2E, QuotaAndRateHoldUnderLoad) {
    ASSERT_TRUE(wait_centralized(true)) << agent_diagnostics();
    const std::string warm = unique_tag();
    ASSERT_EQ(http_get(server_->url("/load/" + warm)).status, 404);
    // The stand-in granted "load" its quota (after the agent's first report).
    ASSERT_TRUE(wait_until([&] { return reported()["load"].requests >= 1; },
                           deadline_in(std::chrono::seconds(30)), std::chrono::milliseconds(500)))
        << agent_diagnostics();
    const std::string tag = unique_tag();
    constexpr int kLoad = 300;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kLoad; i++)
        ASSERT_EQ(http_get(server_->url("/load/" + tag + "/" + std::to_string(i))).status, 404);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(wait_until([&] { return reported()["load"].requests >= 1 + kLoad; },
                           deadline_in(std::chrono::seconds(30)), std::chrono::milliseconds(500)))
        << agent_diagnostics();
    stop_agent_and_sync();

    const RuleCounts load = reported()["load"];
    EXPECT_EQ(load.requests, 1u + kLoad);
    // The warm-up request borrowed; one more may have, had the load started in the moment
    // between the stand-in logging the report and the agent applying its answer.
    EXPECT_LE(load.borrowed, 2u);
    const size_t docs = with_url_containing(collector().documents(), "/load/" + tag).size() +
                        with_url_containing(collector().documents(), "/load/" + warm).size();
    EXPECT_EQ(docs, load.sampled + load.borrowed);
    const double n = kLoad;
    const double s = std::ceil(seconds) + 1;
    const double sd = std::sqrt(n * 0.2 * 0.8);
    std::cout << "[ sampling ] " << kLoad << " requests in " << seconds << " s: " << docs
              << " sampled" << std::endl;
    EXPECT_GE(static_cast<double>(load.sampled), 0.2 * (n - 2 * s) - 5 * sd);
    EXPECT_LE(static_cast<double>(load.sampled), 2 * s + 1 + 0.2 * n + 5 * sd);
}

TEST_F(CentralizedSamplingE2E, UnreachableMeansLocalRulesUntilItAnswersAgain) {
    ASSERT_TRUE(wait_centralized(true)) << agent_diagnostics();
    const std::string before = unique_tag();
    ASSERT_EQ(http_get(server_->url("/svc/" + before)).status, 404);
    ASSERT_TRUE(wait_for_url("/svc/" + before)) << agent_diagnostics();

    api_->stop();  // X-Ray (its proxy) unreachable: the next report fails
    ASSERT_TRUE(wait_until(
        [&] {
            http_get(server_->url("/none/" + unique_tag()));  // something to report
            return metric("passport_sampling_centralized") == 0;
        },
        deadline_in(std::chrono::seconds(30)), std::chrono::milliseconds(500)))
        << agent_diagnostics();
    EXPECT_GE(metric("passport_sampling_targets_fetch_failures_total") +
                  metric("passport_sampling_rules_fetch_failures_total"),
              1);
    EXPECT_NE(http_get(endpoint() + "/readyz").body.find("sampling: local rules"),
              std::string::npos);
    const std::string during = unique_tag();
    ASSERT_EQ(http_get(server_->url("/svc/" + during)).status, 404);
    ASSERT_TRUE(wait_for_url("/svc/" + during)) << agent_diagnostics();

    start_api(std::stoi(api_port_));  // back on the same port
    ASSERT_TRUE(wait_centralized(true)) << agent_diagnostics();
    EXPECT_NE(http_get(endpoint() + "/readyz").body.find("sampling: centralized"),
              std::string::npos);
    const std::string after = unique_tag();
    ASSERT_EQ(http_get(server_->url("/svc/" + after)).status, 404);
    ASSERT_TRUE(wait_for_url("/svc/" + after)) << agent_diagnostics();

    stop_agent_and_sync();
    EXPECT_EQ(docs_with("/svc/" + before, "svc"), 1u);
    EXPECT_EQ(docs_with("/svc/" + during, "local-svc"), 1u);
    EXPECT_EQ(docs_with("/svc/" + after, "svc"), 1u);
}

// The real X-Ray SDK for Node with its centralized sampling, against the same stand-in, decides
// the same requests the same way: the same rule for each, every /svc/ request sampled, no /none/
// one, and for Default (reservoir 1 a second, no fixed rate) one a second. The SDK borrows that
// one (it reads ReservoirQuotaTTL as milliseconds, so its quota always looks expired) where
// Passport takes it from the quota: both count the distinct seconds the requests fell in, which
// differ by at most 2 (requests sent in pairs; a second boundary can fall between the two, at
// the first and the last pair).
TEST_F(CentralizedSamplingE2E, DecidesAsTheXRaySdkForNode) {
    if (const std::string why = xray_sdk_missing(); !why.empty()) GTEST_SKIP() << why;
    ASSERT_TRUE(wait_centralized(true)) << agent_diagnostics();
    ChildProcess sdk(ChildOptions{
        {find_executable("node"), fixture("xray_sdk_centralized.js").string(), "central-svc"},
        {{"NODE_PATH", npm_modules().string()},
         {"AWS_XRAY_DAEMON_ADDRESS",
          "udp:" + collector().address() + " tcp:127.0.0.1:" + api_port_}},
        {"AWS_XRAY_TRACING_NAME", "OTEL_SERVICE_NAME", "AWS_XRAY_CONTEXT_MISSING"},
        dir().path(),
        true});
    auto port = sdk.wait_for_line(Stream::kStdout, std::regex(R"(listening on port (\d+))"),
                                  deadline_in(std::chrono::seconds(20)));
    ASSERT_TRUE(port) << sdk.describe(4000);
    ASSERT_TRUE(sdk.wait_for_line(Stream::kStdout, std::regex("refreshed centralized sampling"),
                                  deadline_in(std::chrono::seconds(20))))
        << sdk.describe(4000);
    const std::string sdk_url = "http://127.0.0.1:" + port->groups[1];

    const std::string tag = unique_tag();
    for (int i = 0; i < kPerPath; i++) {
        for (const char* p : {"/svc/", "/none/", "/other/"}) {
            const std::string path = p + tag + "/" + std::to_string(i);
            ASSERT_EQ(http_get(sdk_url + path).status, 404);
            ASSERT_EQ(http_get(server_->url(path)).status, 404);
        }
    }
    // Both clients reported every decision (each reports every 10 s).
    std::map<std::string, std::map<std::string, RuleCounts>> by_client;
    ASSERT_TRUE(wait_until(
        [&] {
            by_client = reported_by_client();
            size_t complete = 0;
            for (auto& [client, rules] : by_client) {
                complete +=
                    rules["svc"].requests + rules["none"].requests + rules["Default"].requests ==
                    uint64_t{3} * kPerPath;
            }
            return complete == 2;
        },
        deadline_in(std::chrono::seconds(45)), std::chrono::milliseconds(500)))
        << agent_diagnostics() << "\n"
        << sdk.describe(4000);
    stop_agent_and_sync();
    sdk.stop();

    std::vector<uint64_t> default_sampled;
    for (auto& [client, rules] : by_client) {
        SCOPED_TRACE("ClientID " + client);
        EXPECT_EQ(client.size(), 24u);
        EXPECT_EQ(rules["svc"].sampled, uint64_t{kPerPath});
        EXPECT_EQ(rules["none"].sampled + rules["none"].borrowed, 0u);
        EXPECT_EQ(rules.count("other-service") + rules.count("wrong-host"), 0u);
        default_sampled.push_back(rules["Default"].sampled + rules["Default"].borrowed);
    }
    ASSERT_EQ(default_sampled.size(), 2u);
    std::cout << "[ sampling ] Default sampled+borrowed per client: " << default_sampled[0] << ", "
              << default_sampled[1] << std::endl;
    EXPECT_LE(std::max(default_sampled[0], default_sampled[1]) -
                  std::min(default_sampled[0], default_sampled[1]),
              2u);

    const auto docs = with_url_containing(collector().documents(), tag);
    std::map<std::string, std::map<std::string, size_t>> seen;  // sdk -> "path rule" -> count
    for (const auto& d : docs) {
        seen[str(d, "aws.xray.sdk")]
            [first_path_segment(str(d, "http.request.url")) + " " + str(d, "aws.xray.rule_name")]++;
    }
    ASSERT_EQ(seen.size(), 2u) << "documents from both the SDK and Passport";
    for (auto& [sdk_name, counts] : seen) {
        SCOPED_TRACE(sdk_name);
        EXPECT_EQ(counts["svc svc"], size_t{kPerPath});
        EXPECT_EQ(counts["none none"], 0u);
        EXPECT_GE(counts["other Default"], 1u);
        EXPECT_EQ(counts.size(), 3u);  // no document under another rule or none
    }
    EXPECT_LE(
        std::max(seen.begin()->second["other Default"], seen.rbegin()->second["other Default"]) -
            std::min(seen.begin()->second["other Default"], seen.rbegin()->second["other Default"]),
        2u);
}

}  // namespace
}  // namespace passport::testing::e2e
