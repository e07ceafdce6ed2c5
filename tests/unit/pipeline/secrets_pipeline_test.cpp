// Secrets stay home: a request carrying credentials in headers and query, made by a process whose
// arguments hold a password, goes through the whole pipeline (events -> documents); no header
// value other than those the X-Ray SDKs record, no credential query value and no argument
// reaches the serialized documents unless asked for.
#include <gtest/gtest.h>

#include "tests/support/event_builder.hpp"
#include "tests/support/temp_dir.hpp"
#include "userspace/pipeline/pipeline.hpp"
#include "userspace/report/summary.hpp"
#include "userspace/sample/rules.hpp"

namespace passport {
namespace {

using testing::EventBuilder;

constexpr std::string_view kServerRequest =
    "GET /x?token=abc123&page=2&X-Amz-Credential=AKIAEXAMPLE HTTP/1.1\r\n"
    "Host: shop.local\r\n"
    "User-Agent: curl/8\r\n"
    "Authorization: Bearer s3cr3t\r\n"
    "Proxy-Authorization: Basic cHJveHk=\r\n"
    "Cookie: sid=c00k1e\r\n"
    "X-Api-Key: k3yvalue\r\n"
    "X-Custom: custom-header-value\r\n\r\n";
constexpr std::string_view kServerResponse =
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: sess=setc00kie\r\n\r\nok";
constexpr std::string_view kCallRequest =
    "GET http://user:pa55word@api.local/v1?api_key=outk3y&q=1 HTTP/1.1\r\n"
    "Host: api.local\r\nAuthorization: Basic b3V0\r\n\r\n";
constexpr std::string_view kCallResponse =
    "HTTP/1.1 204 No Content\r\nSet-Cookie: c=callc00kie\r\n\r\n";

const char* const kSecrets[] = {
    "abc123",   "AKIAEXAMPLE",         "s3cr3t",    "cHJveHk=", "c00k1e",
    "k3yvalue", "custom-header-value", "setc00kie", "pa55word", "outk3y",
    "b3V0",     "callc00kie",          "hunter2"};

struct SecretsPipelineTest : ::testing::Test {
    passport::testing::TempDir proc;
    Counters counters;
    ClockOffset clock{1'795'000'000'000'000'000LL};
    report::MemoryEmitter sink;

    SecretsPipelineTest() {
        const std::string pid = std::to_string(EventBuilder::kDefaultTgid);
        proc.write_file(pid + "/cmdline",
                        std::string("python3\0app.py\0--db-password=hunter2\0--port\0"
                                    "8080\0",
                                    49));
        proc.write_file(pid + "/comm", "python3\n");
    }

    std::string run(pipeline::PipelineConfig cfg) {
        cfg.proc_root = proc.path().string();
        auto rules = sample::parse_local_rules(
            R"({"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]})");
        EXPECT_TRUE(rules.ok());
        pipeline::Pipeline p(cfg, std::make_unique<sample::LocalSampler>(std::move(*rules)), sink,
                             counters, clock);
        EventBuilder server;
        EventBuilder client(events::Role::kClient, {EventBuilder::kDefaultTgid, 9, 2000});
        client.set_endpoints(testing::ipv4_endpoint(10, 0, 0, 1, 50000),
                             testing::ipv4_endpoint(10, 0, 0, 3, 80));
        p.on_event(server.open(1'000));
        p.on_event(server.read(kServerRequest, 2'000, 3'000));
        p.on_event(client.open(4'000));
        p.on_event(client.write(kCallRequest, 5'000, 6'000));
        p.on_event(client.read(kCallResponse, 7'000, 8'000));
        p.on_event(client.close(9'000));
        p.on_event(server.write(kServerResponse, 10'000, 11'000));
        p.on_event(server.close(12'000));
        p.shutdown();
        std::string all;
        for (const auto& d : sink.datagrams()) all += d + "\n";
        return all;
    }
};

TEST_F(SecretsPipelineTest, NoSecretReachesADocument) {
    const std::string all = run({});
    ASSERT_NE(
        all.find("\"url\":\"http://shop.local/x?token=REDACTED&page=2&X-Amz-Credential=REDACTED\""),
        std::string::npos)
        << all;
    EXPECT_NE(all.find("\"url\":\"http://api.local/v1?api_key=REDACTED&q=1\""), std::string::npos)
        << all;
    EXPECT_NE(all.find("\"user_agent\":\"curl/8\""), std::string::npos) << all;
    for (const char* s : kSecrets) EXPECT_EQ(all.find(s), std::string::npos) << s << " in\n" << all;
    EXPECT_EQ(all.find("--port"), std::string::npos) << "process arguments are off by default";
}

TEST_F(SecretsPipelineTest, ProcessArgumentsOnlyWhenAskedAndRedacted) {
    pipeline::PipelineConfig cfg;
    cfg.correlator.export_process_args = true;
    const std::string all = run(cfg);
    EXPECT_NE(all.find("\"command\":\"python3 app.py --db-password=REDACTED --port 8080\""),
              std::string::npos)
        << all;
    for (const char* s : kSecrets) EXPECT_EQ(all.find(s), std::string::npos) << s << " in\n" << all;
}

TEST_F(SecretsPipelineTest, NoRedactKeepsQueryButNotHeadersOrUserinfo) {
    pipeline::PipelineConfig cfg;
    cfg.correlator.redaction.enabled = false;
    const std::string all = run(cfg);
    EXPECT_NE(all.find("token=abc123&page=2"), std::string::npos) << all;
    for (const char* s :
         {"s3cr3t", "c00k1e", "k3yvalue", "custom-header-value", "pa55word", "hunter2"})
        EXPECT_EQ(all.find(s), std::string::npos) << s << " in\n" << all;
}

}  // namespace
}  // namespace passport
