// The kernel's trace context reaches the documents: for a request with X-Amzn-Trace-Id, one with
// only traceparent and one with neither, the segment's id, trace id and parent are exactly the
// ids of the kernel's PP_EV_TRACE_CTX record for that request (read back from --record), and a
// request the kernel decided not to sample yields no document.
#include "tests/e2e/e2e_common.hpp"
#include "userspace/events/recording.hpp"

#include <fstream>

namespace passport::testing::e2e {
namespace {

// Everything except /dropped/ paths, decided by the kernel for the traces it mints.
constexpr std::string_view kRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 1.0},
  "rules": [{"description": "drop", "host": "*", "http_method": "*",
             "url_path": "/dropped*", "fixed_target": 0, "rate": 0.0}]
})";

class KernelContextE2E : public E2eTest {};

TEST_F(KernelContextE2E, DocumentsCarryTheKernelsIds) {
    auto root_dir = dir().path() / "www";
    std::filesystem::create_directories(root_dir);
    dir().write_file("www/ok.txt", "ok\n");
    dir().write_file("www/dropped.txt", "dropped\n");
    auto server = start_python_http_server(root_dir, server_env());
    ASSERT_TRUE(server);
    auto rules = dir().write_file("rules.json", kRules);
    const auto record = dir().path() / "events.jsonl";
    start_agent({"--pid", std::to_string(server->pid()), "--sampling-rules", rules.string(),
                 "--record", record.string()});

    const std::string tag = unique_tag();
    const std::string root(kIncomingRoot), parent(kIncomingParent);
    ASSERT_EQ(http_get(server->url("/ok.txt?" + tag + "xray"),
                       {"X-Amzn-Trace-Id: Root=" + root + ";Parent=" + parent + ";Sampled=1"})
                  .status,
              200);
    ASSERT_EQ(http_get(server->url("/ok.txt?" + tag + "w3c"),
                       {"traceparent: 00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01"})
                  .status,
              200);
    ASSERT_EQ(http_get(server->url("/ok.txt?" + tag + "minted")).status, 200);
    ASSERT_EQ(http_get(server->url("/dropped.txt?" + tag + "dropped")).status, 200);
    for (const char* which : {"xray", "w3c", "minted"})
        ASSERT_TRUE(wait_for_url(tag + which)) << which << "\n" << agent_diagnostics();
    AgentExit exit = stop_agent_and_sync();

    std::ifstream in(record);
    auto events = events::read_recording(in);
    ASSERT_TRUE(events.ok()) << events.error();
    std::map<std::string, events::TraceCtx> by_segment;
    size_t not_sampled = 0;
    for (const auto& e : *events)
        if (const auto* t = std::get_if<events::TraceCtx>(&e);
            t && t->conn.tgid == static_cast<uint32_t>(server->pid())) {
            by_segment[t->segment_id] = *t;
            if (t->sampled == events::Sampled::kNo) not_sampled++;
        }
    // /dropped was not sampled by the kernel's rules, so the kernel kept it: no bytes, no record
    // (docs/architecture.md, "Unsampled requests").
    ASSERT_EQ(by_segment.size(), 3u) << "one kernel context per request shipped";
    EXPECT_EQ(not_sampled, 0u);
    EXPECT_EQ(exit.counter("kernel.gate_requests"), 1u)
        << "the kernel's rules dropped /dropped: " << exit.counters_text();

    auto docs = with_url_containing(collector().documents(), tag);
    ASSERT_EQ(docs.size(), 3u) << "the kernel's 'not sampled' is honoured";
    std::map<std::string, nlohmann::json> by_which;
    for (const auto& d : docs)
        for (const char* which : {"xray", "w3c", "minted"})
            if (url_ends_with(d, tag + which)) by_which[which] = d;
    ASSERT_EQ(by_which.size(), 3u);
    for (const auto& [which, d] : by_which) {
        const std::string id = d.at("id").get<std::string>();
        ASSERT_TRUE(by_segment.count(id))
            << which << ": segment id " << id << " is not a kernel segment id";
        const events::TraceCtx& k = by_segment.at(id);
        EXPECT_EQ(d.at("trace_id").get<std::string>(), k.trace_id) << which;
        EXPECT_EQ(d.value("parent_id", std::string()), k.parent_id) << which;
    }
    EXPECT_EQ(by_which["xray"].at("trace_id"), root);
    EXPECT_EQ(by_which["xray"].at("parent_id"), parent);
    EXPECT_EQ(by_which["w3c"].at("trace_id"), "1-8a3c60f7-d188f8fa79d48a391a778fa6");
    EXPECT_EQ(by_which["w3c"].at("parent_id"), "53995c3f42cd8ad8");
    EXPECT_FALSE(by_which["minted"].contains("parent_id"));
    EXPECT_EQ(by_segment.at(by_which["minted"].at("id").get<std::string>()).source,
              events::CtxSource::kMinted)
        << "minted in the kernel";
}

}  // namespace
}  // namespace passport::testing::e2e
