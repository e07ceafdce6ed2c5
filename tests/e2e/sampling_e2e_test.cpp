// Sampling decisions at the agent: a local rules file decides for requests without an upstream
// decision, and an upstream Sampled=0/1 always wins over the rules (the X-Ray SDKs' behaviour).
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

// Nothing by default; everything under /sampled/.
constexpr std::string_view kOnlySampledPathRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 0.0},
  "rules": [{"description": "only /sampled", "host": "*", "http_method": "*",
             "url_path": "/sampled/*", "fixed_target": 0, "rate": 1.0}]
})";

class SamplingE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::filesystem::copy_file(fixture("node_server.js"), dir().path() / "server.js",
                                   std::filesystem::copy_options::overwrite_existing);
        server_ = start_script_server({"/usr/bin/node", "server.js"}, dir().path(),
                                      server_env({{"AWS_XRAY_TRACING_NAME", "sampling"}}));
        auto rules = dir().write_file("only-sampled.json", kOnlySampledPathRules);
        start_agent({"--pid", std::to_string(server_->pid()), "--sampling-rules", rules.string()});
    }

    void TearDown() override {
        E2eTest::TearDown();
        server_.reset();
    }

    std::unique_ptr<TestServer> server_;
};

TEST_F(SamplingE2E, RulesFileDecidesWithoutUpstreamDecision) {
    const std::string tag = unique_tag();
    // /sampled/* is a 404 route on the node server: sampling does not care about the status.
    ASSERT_EQ(http_get(server_->url("/ok/" + tag)).status, 200);
    ASSERT_EQ(http_get(server_->url("/sampled/" + tag)).status, 404);
    ASSERT_EQ(http_get(server_->url("/boom/" + tag)).status, 500);
    auto doc = wait_for_url("/sampled/" + tag);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));

    stop_agent_and_sync();
    auto docs = with_url_containing(collector().documents(), tag);
    ASSERT_EQ(docs.size(), 1u) << "rate 0 default must drop /ok and /boom; got "
                               << brief(docs.back());
    EXPECT_TRUE(url_ends_with(docs.front(), "/sampled/" + tag));
}

TEST_F(SamplingE2E, UpstreamDecisionWinsOverRules) {
    const std::string tag = unique_tag();
    const std::string root(kIncomingRoot);
    const std::string parent(kIncomingParent);
    HttpResponse forced =
        http_get(server_->url("/ok/" + tag + "/forced"),
                 {"X-Amzn-Trace-Id: Root=" + root + ";Parent=" + parent + ";Sampled=1"});
    ASSERT_EQ(forced.status, 200);
    HttpResponse vetoed =
        http_get(server_->url("/sampled/" + tag + "/vetoed"),
                 {"X-Amzn-Trace-Id: Root=" + root + ";Parent=" + parent + ";Sampled=0"});
    ASSERT_EQ(vetoed.status, 404);
    HttpResponse ruled = http_get(server_->url("/sampled/" + tag + "/ruled"));
    ASSERT_EQ(ruled.status, 404);

    auto forced_doc = wait_for_url("/ok/" + tag + "/forced");
    ASSERT_TRUE(forced_doc) << agent_diagnostics();
    EXPECT_TRUE(continues_trace(*forced_doc, root, parent));
    ASSERT_TRUE(wait_for_url("/sampled/" + tag + "/ruled")) << agent_diagnostics();

    stop_agent_and_sync();
    auto vetoed_docs = with_url_containing(collector().documents(), tag + "/vetoed");
    EXPECT_TRUE(vetoed_docs.empty())
        << "Sampled=0 must win over a matching rule: " << brief(vetoed_docs.front());
}

}  // namespace
}  // namespace passport::testing::e2e
