// No double reporting next to an X-Ray SDK: an Express service instrumented with the real AWS
// X-Ray SDK for Node (aws-xray-sdk-express 3.12.0 from tests/fixtures/npm) and an unmodified
// Python service that calls it, both selected by the agent. The SDK's datagrams and Passport's go
// to the same collector (the SDK's daemon is the test's UDP listener), which therefore sees the
// whole trace as X-Ray would assemble it:
//  - by default, exactly one server segment per request for each service: the SDK's for the
//    Express service (Passport's is suppressed: the kernel saw the SDK's daemon datagrams), and
//    Passport's for the Python one; the trace unbroken (the SDK's segment has Passport's call
//    subsegment as parent, in the same trace);
//  - with --sdk-segments keep, Passport's segment of the Express service is there as well.
// Fixtures: xray_sdk_express.js (the SDK service), caller_server.py (the untraced caller).
#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

constexpr int kRequests = 6;

bool from_sdk(const json& doc) { return field(doc, "aws.xray.sdk") == "X-Ray for Node.js"; }
bool from_passport(const json& doc) { return field(doc, "aws.xray.sdk") == "Passport"; }

class SdkDedupeE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        if (const std::string why = xray_sdk_missing(); !why.empty()) GTEST_SKIP() << why;
        for (const char* name : {"xray_sdk_express.js", "caller_server.py"}) {
            std::filesystem::copy_file(fixture(name), dir().path() / name,
                                       std::filesystem::copy_options::overwrite_existing);
        }
    }

    struct Run {
        std::unique_ptr<TestServer> sdk;
        std::unique_ptr<TestServer> caller;
        std::vector<std::string> targets;  // asked of the caller as "/call" + target
    };

    // Both services selected; kRequests requests through the caller, each answered.
    Run run(const std::vector<std::string>& extra_args) {
        Run r;
        r.sdk = start_script_server({node_path(), "xray_sdk_express.js", "sdk-back", "127.0.0.1"},
                                    dir().path(),
                                    server_env({{"AWS_XRAY_DAEMON_ADDRESS", collector().address()},
                                                {"NODE_PATH", npm_modules().string()}}));
        r.caller = start_script_server(
            {python3_path(), "caller_server.py", "127.0.0.1", std::to_string(r.sdk->port())},
            dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", "plain-front"}}));
        std::vector<std::string> args = {"--pid", std::to_string(r.caller->pid()), "--pid",
                                         std::to_string(r.sdk->pid())};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        start_agent(args);
        const std::string tag = unique_tag();
        for (int i = 0; i < kRequests; i++) {
            r.targets.push_back("/trace-header/" + tag + "/" + std::to_string(i));
            HttpResponse response = http_get(r.caller->url("/call" + r.targets.back()));
            EXPECT_EQ(response.status, 200) << response.curl_stderr << response.body;
        }
        return r;
    }

    // The documents of each kind for one request, once the caller's Passport segment and the
    // SDK's segment have arrived.
    struct Docs {
        std::vector<json> caller_passport;
        std::vector<json> sdk_passport;
        std::vector<json> sdk_sdk;
        std::vector<json> caller_sdk;
    };
    Docs docs_for(const Run& r, const std::string& target) {
        Docs d;
        for (const json& doc : collector().documents()) {
            const std::string url = str(doc, "http.request.url");
            if (url == r.caller->url("/call" + target)) {
                (from_passport(doc) ? d.caller_passport : d.caller_sdk).push_back(doc);
            } else if (url == r.sdk->url(target)) {
                (from_passport(doc) ? d.sdk_passport : d.sdk_sdk).push_back(doc);
            }
        }
        return d;
    }

    void wait_for_both(const Run& r) {
        for (const std::string& target : r.targets) {
            auto sdk_doc = collector().wait_for(
                [&](const json& d) {
                    return from_sdk(d) && field(d, "http.request.url") == r.sdk->url(target);
                },
                deadline_in(kDocumentTimeout));
            auto caller_doc = collector().wait_for(
                [&](const json& d) {
                    return from_passport(d) &&
                           field(d, "http.request.url") == r.caller->url("/call" + target);
                },
                deadline_in(kDocumentTimeout));
            ASSERT_TRUE(sdk_doc && caller_doc) << target << ": SDK segment " << bool(sdk_doc)
                                               << ", caller segment " << bool(caller_doc) << "\n"
                                               << agent_diagnostics();
        }
    }

    // The SDK's segment hangs under Passport's call subsegment, in the caller's trace.
    static void expect_unbroken(const json& caller, const json& sdk_segment) {
        json subs = field(caller, "subsegments");
        ASSERT_TRUE(subs.is_array() && subs.size() == 1) << brief(caller);
        EXPECT_EQ(str(sdk_segment, "trace_id"), str(caller, "trace_id")) << brief(sdk_segment);
        EXPECT_EQ(str(sdk_segment, "parent_id"), str(subs[0], "id"))
            << "the SDK's segment is not under Passport's call subsegment\n  SDK: "
            << brief(sdk_segment) << "\n  caller: " << brief(caller);
        EXPECT_EQ(field(subs[0], "http.request.traced"), true) << brief(subs[0]);
    }
};

TEST_F(SdkDedupeE2E, OneServerSegmentPerRequestAndTheTraceUnbroken) {
    Run r = run({});
    wait_for_both(r);
    AgentExit exit = stop_agent_and_sync();  // everything Passport held is out by now
    std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;
    for (const std::string& target : r.targets) {
        SCOPED_TRACE(target);
        Docs d = docs_for(r, target);
        ASSERT_EQ(d.sdk_sdk.size(), 1u) << "the SDK's own segment";
        EXPECT_EQ(d.sdk_passport.size(), 0u)
            << "Passport also reported the SDK service: " << brief(d.sdk_passport.front());
        ASSERT_EQ(d.caller_passport.size(), 1u) << "Passport's segment of the plain service";
        EXPECT_EQ(d.caller_sdk.size(), 0u);
        EXPECT_EQ(field(d.caller_passport[0], "name"), "plain-front");
        EXPECT_EQ(field(d.sdk_sdk[0], "name"), "sdk-back");
        expect_unbroken(d.caller_passport[0], d.sdk_sdk[0]);
    }
    // No Passport document at all for the SDK service (no independent subsegment either).
    for (const json& doc : collector().documents()) {
        if (from_passport(doc)) {
            EXPECT_NE(str(doc, "name"), "sdk-back") << brief(doc);
            EXPECT_EQ(str(doc, "http.request.url").rfind(r.sdk->url("/"), 0), std::string::npos)
                << brief(doc);
        }
    }
    EXPECT_EQ(exit.counter("correlate.sdk_processes"), 1u);
    EXPECT_EQ(exit.counter("correlate.sdk_by_datagram"), 1u);
    EXPECT_EQ(exit.counter("correlate.sdk_segments_suppressed"), uint64_t(kRequests));
    EXPECT_EQ(exit.counter("correlate.sdk_hold_overflow"), 0u);
}

TEST_F(SdkDedupeE2E, KeepReportsBothForComparison) {
    Run r = run({"--sdk-segments", "keep"});
    wait_for_both(r);
    for (const std::string& target : r.targets) {
        ASSERT_TRUE(collector().wait_for(
            [&](const json& d) {
                return from_passport(d) && field(d, "http.request.url") == r.sdk->url(target);
            },
            deadline_in(kDocumentTimeout)))
            << target << ": no Passport segment of the SDK service with keep\n"
            << agent_diagnostics();
    }
    AgentExit exit = stop_agent_and_sync();
    std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;
    for (const std::string& target : r.targets) {
        SCOPED_TRACE(target);
        Docs d = docs_for(r, target);
        ASSERT_EQ(d.sdk_sdk.size(), 1u);
        ASSERT_EQ(d.sdk_passport.size(), 1u);
        ASSERT_EQ(d.caller_passport.size(), 1u);
        expect_unbroken(d.caller_passport[0], d.sdk_sdk[0]);
        // Both views of the SDK service's request sit in the same trace, under the same call.
        EXPECT_EQ(str(d.sdk_passport[0], "trace_id"), str(d.sdk_sdk[0], "trace_id"));
        EXPECT_EQ(str(d.sdk_passport[0], "parent_id"), str(d.sdk_sdk[0], "parent_id"));
    }
    EXPECT_EQ(exit.counter("correlate.sdk_processes"), 1u);
    EXPECT_EQ(exit.counter("correlate.sdk_segments_suppressed"), 0u);
    // The first request's segment may leave before the SDK's first datagram is seen.
    EXPECT_GE(exit.counter("correlate.sdk_segments_kept"), uint64_t(kRequests - 1));
}

}  // namespace
}  // namespace passport::testing::e2e
