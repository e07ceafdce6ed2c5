// Differential test of the incoming X-Amzn-Trace-Id against the real readers: every case of the
// trace-header corpus (tests/fixtures/trace_header_corpus.json) is sent to
//   - an Express service with the X-Ray SDK for Node's middleware, which reports the segment the
//     middleware opened, what AWSXRay.utils.processTraceData made of the header, and what
//     OpenTelemetry's AWSXRayPropagator extracted (fixtures/trace_header_readers.js);
//   - an unmodified Python server traced by Passport: its kernel context (read back from
//     --record) and its document (trace_id, parent_id; no document when not sampled).
// Passport's kernel must read every case as Passport's userspace parser does, and as the SDK's
// middleware does except on the cases the corpus marks "differs" (each with its reason; the
// same list is in docs/context-flow.md). A case marked "differs" that no longer differs fails
// too, so the list stays true. The comparison table is printed for the docs.
#include <cstdio>
#include <fstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/support/trace_header_corpus.hpp"
#include "userspace/events/recording.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

constexpr std::string_view kRules = R"({"version": 2, "default": {"fixed_target": 0, "rate": 1.0},
  "rules": []})";

class TraceHeaderDifferential : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        if (const std::string why = xray_sdk_missing(); !why.empty()) GTEST_SKIP() << why;
        if (!std::filesystem::exists(npm_modules() / "@opentelemetry" / "propagator-aws-xray"))
            GTEST_SKIP() << "@opentelemetry/propagator-aws-xray is not installed in "
                         << npm_modules() << " (run .ci/install-deps.sh)";
        std::filesystem::copy_file(fixture("trace_header_readers.js"),
                                   dir().path() / "trace_header_readers.js",
                                   std::filesystem::copy_options::overwrite_existing);
    }
};

struct SdkReadings {
    HeaderReading middleware, otel;
    std::string process_trace_data;  // shown in the table
};

SdkReadings sdk_readings(const HeaderCase& c, const json& body) {
    SdkReadings r;
    const json& mw = body.at("middleware");
    r.middleware.trace = as_trace(c, mw.at("trace_id").get<std::string>());
    r.middleware.parent = mw.at("parent_id").get<std::string>();
    r.middleware.sampled = mw.at("sampled").get<bool>();
    const json& ot = body.at("otel");
    if (ot.is_null()) {
        r.otel.trace = "new";
    } else {
        r.otel.trace = as_trace(c, ot.at("trace_id").get<std::string>());
        r.otel.parent = ot.at("parent_id").get<std::string>();
        r.otel.sampled = ot.at("sampled").get<bool>();
    }
    const json& pt = body.at("process_trace_data");
    r.process_trace_data = "root=" + pt.at("root").get<std::string>().substr(0, 40) +
                           " parent=" + pt.at("parent").get<std::string>().substr(0, 20) +
                           " sampled=" + pt.at("sampled").get<std::string>().substr(0, 20);
    return r;
}

HeaderReading kernel_reading(const events::TraceCtx& k) {
    HeaderReading r;
    if (k.source == events::CtxSource::kMinted) {
        r.trace = "new";
        r.sampled = k.sampled != events::Sampled::kNo;
        return r;
    }
    r.trace = k.trace_id;
    r.parent = k.parent_id;
    r.sampled = k.sampled != events::Sampled::kNo;
    return r;
}

TEST_F(TraceHeaderDifferential, PassportReadsTheHeaderAsTheSdkDoesExceptListedCases) {
    const auto cases = load_trace_header_corpus();
    ASSERT_GE(cases.size(), 60u);

    // The SDK's and OpenTelemetry's readings.
    auto readers = start_script_server({node_path(), "trace_header_readers.js"}, dir().path(),
                                       server_env({{"AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:9"},
                                                   {"NODE_PATH", npm_modules().string()}}));
    ASSERT_TRUE(readers);
    std::vector<SdkReadings> sdk;
    for (const auto& c : cases) {
        const auto resp = http_get(readers->url("/read/" + c.name), c.headers);
        ASSERT_EQ(resp.status, 200) << c.name << ": " << resp.body << resp.curl_stderr;
        const json body = json::parse(resp.body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << c.name << ": " << resp.body;
        sdk.push_back(sdk_readings(c, body));
    }

    // Passport's kernel, on a real traced server.
    auto www = dir().path() / "www";
    std::filesystem::create_directories(www);
    dir().write_file("www/ok.txt", "ok\n");
    auto server = start_python_http_server(www, server_env());
    ASSERT_TRUE(server);
    const auto rules = dir().write_file("rules.json", kRules);
    const auto record = dir().path() / "events.jsonl";
    // Every request's kernel context record is read: the gate on unsampled requests
    // (sample_gate_e2e_test.cpp) would send none for the Sampled=0 cases.
    start_agent({"--pid", std::to_string(server->pid()), "--sampling-rules", rules.string(),
                 "--record", record.string(), "--no-sample-gate"});
    const std::string tag = unique_tag();
    for (const auto& c : cases)
        ASSERT_EQ(http_get(server->url("/ok.txt?" + tag + "-" + c.name), c.headers).status, 200)
            << c.name;
    for (const auto& c : cases) {
        if (userspace_reading(c).sampled) {
            ASSERT_TRUE(wait_for_url(tag + "-" + c.name)) << c.name << "\n" << agent_diagnostics();
        }
    }
    stop_agent_and_sync();

    std::ifstream in(record);
    auto evs = events::read_recording(in);
    ASSERT_TRUE(evs.ok()) << evs.error();
    std::vector<events::TraceCtx> kernel;
    for (const auto& e : *evs)
        if (const auto* t = std::get_if<events::TraceCtx>(&e);
            t && t->conn.tgid == static_cast<uint32_t>(server->pid()))
            kernel.push_back(*t);
    ASSERT_EQ(kernel.size(), cases.size()) << "one kernel context per request, in order";
    const auto docs = with_url_containing(collector().documents(), tag);

    std::printf("| case | SDK middleware | OpenTelemetry | Passport (kernel = userspace) |\n");
    for (size_t i = 0; i < cases.size(); i++) {
        const HeaderCase& c = cases[i];
        const HeaderReading user = userspace_reading(c);
        const HeaderReading k = kernel_reading(kernel[i]);
        EXPECT_EQ(describe(k), describe(user)) << c.name << ": kernel vs userspace";
        // The document says what the kernel decided.
        std::vector<json> mine;
        for (const auto& d : docs)
            if (url_ends_with(d, tag + "-" + c.name)) mine.push_back(d);
        if (k.sampled) {
            ASSERT_EQ(mine.size(), 1u) << c.name;
            EXPECT_EQ(mine[0].value("trace_id", ""), kernel[i].trace_id) << c.name;
            EXPECT_EQ(mine[0].value("parent_id", ""), k.parent) << c.name;
        } else {
            EXPECT_TRUE(mine.empty()) << c.name << ": Sampled=0 yields no document";
        }
        const bool same = describe(k) == describe(sdk[i].middleware);
        if (c.differs.empty()) {
            EXPECT_TRUE(same) << c.name << ": Passport " << describe(k) << ", SDK "
                              << describe(sdk[i].middleware)
                              << " (processTraceData: " << sdk[i].process_trace_data << ")";
        } else {
            EXPECT_FALSE(same) << c.name << " is listed as a difference but reads alike";
        }
        std::printf("| %s | %s | %s | %s |\n", c.name.c_str(), describe(sdk[i].middleware).c_str(),
                    describe(sdk[i].otel).c_str(), describe(k).c_str());
    }
}

}  // namespace
}  // namespace passport::testing::e2e
