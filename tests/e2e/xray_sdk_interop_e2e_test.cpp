// Interoperability with the real AWS X-Ray SDK for Node (aws-xray-sdk-core + aws-xray-sdk-express
// 3.12.0 from tests/fixtures/npm, installed by .ci/install-npm.sh). The SDK's own datagrams go to
// the same collector as Passport's (AWS_XRAY_DAEMON_ADDRESS), so each test sees the whole trace
// the X-Ray service would assemble, and checks that the two halves name each other:
//
//   1. SDK → Passport: an SDK-instrumented Express service (not selected) calls an unmodified
//      Python service that Passport traces. The SDK sends its own X-Amzn-Trace-Id; Passport's
//      segment must continue that trace under the SDK's subsegment.
//   2. Passport → SDK: an unmodified Python service traced by Passport calls the SDK service.
//      The SDK's segment must name Passport's subsegment as parent. Only header injection can do
//      that (the SDK service is not traced by Passport, so same-node stitching cannot help);
//      the --no-inject variant shows the limit without it.
//   3. The app's own SDK wins: the SDK service is itself selected; its outgoing call already
//      carries the SDK's header, and the downstream segment hangs under the SDK's subsegment.
//   4. Field by field: the same Express service runs twice, once with the SDK and once without
//      it (traced by Passport), and makes the same calls to an untraced and a traced callee;
//      the call subsegments must agree on every field that matters, and differ only where
//      docs/xray-mapping.md says they do.
//
// Fixtures: xray_sdk_express.js (the SDK service), hop.py (an unmodified Python service that
// reports the X-Amzn-Trace-Id it received), caller_server.py (an unmodified Python caller).
#include <regex>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

constexpr std::string_view kSdkName = "X-Ray for Node.js";
constexpr std::string_view kSdkVersion = "3.12.0";

// The SDK writes times in milliseconds; Passport in microseconds. A callee's start may therefore
// appear up to 1 ms before the SDK's rounded start of the call; its end up to the README's 50 ms
// cross-process slack after the call's end.
constexpr double kSdkRounding = 0.0015;

bool from_sdk(const json& doc) { return field(doc, "aws.xray.sdk") == std::string(kSdkName); }
bool from_passport(const json& doc) { return field(doc, "aws.xray.sdk") == "Passport"; }

// The path of a request target without its query: what the Node SDK puts in a subsegment URL.
std::string without_query(const std::string& target) { return target.substr(0, target.find('?')); }

// A segment written by the Node SDK's Express middleware, every field the SDK sets.
AssertionResult is_sdk_segment(const json& doc, const std::string& name, const std::string& url,
                               int status) {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  SDK segment: " << brief(doc);
    };
    if (!from_sdk(doc)) return fail("aws.xray.sdk is not \"X-Ray for Node.js\"");
    if (field(doc, "aws.xray.sdk_version") != std::string(kSdkVersion)) {
        return fail("aws.xray.sdk_version is not 3.12.0");
    }
    if (str(doc, "name") != name) return fail("name is not " + name);
    if (!is_segment_id(str(doc, "id"))) return fail("id is not 16 hex digits");
    if (!is_trace_id(str(doc, "trace_id"))) return fail("trace_id malformed");
    if (field(doc, "http.request.method") != "GET") return fail("http.request.method is not GET");
    if (str(doc, "http.request.url") != url) return fail("http.request.url is not " + url);
    if (field(doc, "http.request.client_ip") != "127.0.0.1") return fail("client_ip is not ours");
    if (field(doc, "http.response.status") != status) {
        return fail("http.response.status is not " + std::to_string(status));
    }
    if (num(doc, "start_time") < 0 || num(doc, "end_time") < num(doc, "start_time")) {
        return fail("start_time/end_time missing or reversed");
    }
    return AssertionSuccess();
}

// The SDK's subsegment for an http.get to `host`:`port``target`, as patchers/http_p.js writes it:
// name = host, namespace remote, URL without port and query, traced:true at the top level.
AssertionResult is_sdk_call(const json& sub, const std::string& host, const std::string& target,
                            int status, std::optional<uint64_t> content_length) {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  SDK subsegment: " << brief(sub);
    };
    if (!is_segment_id(str(sub, "id"))) return fail("id is not 16 hex digits");
    if (str(sub, "name") != host) return fail("name is not " + host);
    if (str(sub, "namespace") != "remote") return fail("namespace is not remote");
    const std::string url = "http://" + host + without_query(target);
    if (str(sub, "http.request.url") != url) return fail("http.request.url is not " + url);
    if (field(sub, "http.request.method") != "GET") return fail("http.request.method is not GET");
    if (field(sub, "http.response.status") != status) {
        return fail("http.response.status is not " + std::to_string(status));
    }
    if (content_length && field(sub, "http.response.content_length") != *content_length) {
        return fail("http.response.content_length is not " + std::to_string(*content_length));
    }
    if (field(sub, "traced") != true) return fail("traced is not true");
    if (auto r = has_status_flags(sub, status); !r) return fail(r.message());
    if (num(sub, "start_time") < 0 || num(sub, "end_time") < num(sub, "start_time")) {
        return fail("start_time/end_time missing or reversed");
    }
    return AssertionSuccess();
}

// A Passport call subsegment (embedded in `parent`): the fields the X-Ray SDK would write.
AssertionResult is_passport_call(const json& sub, const std::string& host, const std::string& url,
                                 int status, std::optional<uint64_t> content_length,
                                 const json& parent, const std::string& method = "GET") {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  Passport subsegment: " << brief(sub)
                                  << "\n  in: " << brief(parent).substr(0, 600);
    };
    if (!is_segment_id(str(sub, "id"))) return fail("id is not 16 hex digits");
    if (str(sub, "name") != host) return fail("name is not " + host);
    if (str(sub, "namespace") != "remote") return fail("namespace is not remote");
    if (auto r = has_http(sub, method, url, status, content_length); !r) return fail(r.message());
    if (auto r = has_status_flags(sub, status); !r) return fail(r.message());
    if (num(sub, "start_time") < num(parent, "start_time") ||
        num(sub, "end_time") > num(parent, "end_time")) {
        return fail("times not inside the parent segment's");
    }
    return AssertionSuccess();
}

// `callee` (a segment) lies inside the call `call` that caused it (made by another process).
AssertionResult is_inside_call(const json& callee, const json& call, double start_slack) {
    double s = num(callee, "start_time");
    double e = num(callee, "end_time");
    if (s < num(call, "start_time") - start_slack ||
        e > num(call, "end_time") + kCrossProcessSlack) {
        char text[200];
        std::snprintf(text, sizeof text,
                      "callee times [%.6f, %.6f] not inside the call's [%.6f, %.6f]", s, e,
                      num(call, "start_time"), num(call, "end_time"));
        return AssertionFailure() << text << "\n  callee: " << brief(callee)
                                  << "\n  call: " << brief(call);
    }
    return AssertionSuccess();
}

class XraySdkInteropE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        if (const std::string why = xray_sdk_missing(); !why.empty()) GTEST_SKIP() << why;
        for (const char* name : {"xray_sdk_express.js", "hop.py", "caller_server.py"}) {
            std::filesystem::copy_file(fixture(name), dir().path() / name,
                                       std::filesystem::copy_options::overwrite_existing);
        }
    }

    // The SDK-instrumented Express service on 127.0.0.1, calling `down` (when given). Its
    // datagrams go to the collector.
    std::unique_ptr<TestServer> start_sdk_service(const std::string& segment_name,
                                                  const TestServer* down = nullptr) {
        std::vector<std::string> argv = {node_path(), "xray_sdk_express.js", segment_name,
                                         "127.0.0.1"};
        if (down) argv.insert(argv.end(), {"127.0.0.1", std::to_string(down->port())});
        return start_script_server(argv, dir().path(),
                                   server_env({{"AWS_XRAY_DAEMON_ADDRESS", collector().address()},
                                               {"NODE_PATH", npm_modules().string()}}));
    }

    // The same Express service without the SDK (XRAY_SDK_DISABLED=1): the unmodified app that
    // Passport traces, named `segment_name` as the SDK names its twin. Calls go to 127.0.0.1.
    std::unique_ptr<TestServer> start_plain_express(const std::string& segment_name) {
        return start_script_server(
            {node_path(), "xray_sdk_express.js", segment_name, "127.0.0.1", "127.0.0.1", "0"},
            dir().path(),
            server_env({{"XRAY_SDK_DISABLED", "1"},
                        {"AWS_XRAY_TRACING_NAME", segment_name},
                        {"NODE_PATH", npm_modules().string()}}));
    }

    // An unmodified Python service (hop.py leaf) named `name`.
    std::unique_ptr<TestServer> start_python_leaf(const std::string& name) {
        return start_script_server({python3_path(), "hop.py", name, "127.0.0.1"}, dir().path(),
                                   server_env({{"AWS_XRAY_TRACING_NAME", name}}));
    }

    // An unmodified Python caller (caller_server.py) calling `down`.
    std::unique_ptr<TestServer> start_python_caller(const std::string& name,
                                                    const TestServer& down) {
        return start_script_server(
            {python3_path(), "caller_server.py", "127.0.0.1", std::to_string(down.port())},
            dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", name}}));
    }

    // The X-Amzn-Trace-Id a hop.py/xray_sdk_express.js service reported for `target`.
    std::string header_received(TestServer& server, const std::string& target) {
        std::string escaped =
            std::regex_replace(target, std::regex(R"([.?*+^$()\[\]{}|\\])"), R"(\$&)");
        auto line = server.process().wait_for_line(
            Stream::kStdout, std::regex("^received (?:\\S+ )?" + escaped + " (\\S+)$"),
            deadline_in(kDocumentTimeout));
        return line ? line->groups[1] : "(no request for " + target + " arrived)";
    }

    std::optional<json> wait_for_doc(const std::function<bool(const json&)>& pred) {
        return collector().wait_for(pred, deadline_in(kDocumentTimeout));
    }
    std::optional<json> sdk_doc_for(const std::string& url) {
        return wait_for_doc(
            [&](const json& d) { return from_sdk(d) && field(d, "http.request.url") == url; });
    }
    std::optional<json> passport_doc_for(const std::string& url) {
        return wait_for_doc(
            [&](const json& d) { return from_passport(d) && field(d, "http.request.url") == url; });
    }

    AgentExit stop_and_report() {
        AgentExit exit = stop_agent_and_sync();
        std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;
        return exit;
    }

    // Runs the Passport → SDK exchange (caller_server.py traced, the SDK service not) and
    // returns, per request: Passport's caller segment, its call subsegment, the SDK's segment
    // and the header the SDK service received on the wire. Shared by the injection and the
    // --no-inject tests.
    struct PassportToSdk {
        json caller;
        json call;
        json sdk;
        std::string received;
        bool with_incoming_header = false;
    };
    std::vector<PassportToSdk> run_passport_to_sdk(const std::vector<std::string>& extra_args,
                                                   bool also_select_sdk_service);
};

// ---------------------------------------------------------------------------------------------
// 1. SDK → Passport: Passport continues the SDK's trace under the SDK's subsegment.
TEST_F(XraySdkInteropE2E, SdkCallerPassportTracedCalleeContinuesTheSdkTrace) {
    auto leaf = start_python_leaf("passport-leaf");
    auto sdk = start_sdk_service("sdk-front", leaf.get());
    start_agent({"--pid", std::to_string(leaf->pid())});

    const std::string tag = unique_tag();
    struct Case {
        std::string target;  // at the leaf; the SDK service is asked for "/call" + target
        bool with_header;    // the client sends kIncomingTraceHeader to the SDK service
        int leaf_status;
        int sdk_status;
    };
    const std::vector<Case> cases = {
        {"/ok/" + tag + "/new", false, 200, 200},
        {"/ok/" + tag + "/continued?q=1", true, 200, 200},
        {"/missing/" + tag, false, 404, 502},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.target + (c.with_header ? " (client sends a trace header)" : ""));
        std::vector<std::string> headers;
        if (c.with_header) {
            headers.push_back("X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader));
        }
        HttpResponse response = http_get(sdk->url("/call" + c.target), headers);
        ASSERT_EQ(response.status, c.sdk_status) << response.curl_stderr << response.body;

        auto sdk_doc = sdk_doc_for(sdk->url("/call" + c.target));
        auto leaf_doc = passport_doc_for(leaf->url(c.target));
        ASSERT_TRUE(sdk_doc && leaf_doc)
            << "SDK segment " << bool(sdk_doc) << ", Passport segment " << bool(leaf_doc) << "\n"
            << agent_diagnostics();

        // The SDK's half: its segment and the remote subsegment of the call.
        EXPECT_TRUE(
            is_sdk_segment(*sdk_doc, "sdk-front", sdk->url("/call" + c.target), c.sdk_status));
        if (c.with_header) {
            EXPECT_TRUE(continues_trace(*sdk_doc, kIncomingRoot, kIncomingParent));
        } else {
            EXPECT_TRUE(is_new_trace(*sdk_doc, response.started_at, response.finished_at));
        }
        json subs = field(*sdk_doc, "subsegments");
        ASSERT_TRUE(subs.is_array() && subs.size() == 1) << brief(*sdk_doc);
        const json& call = subs[0];
        const uint64_t leaf_length =
            std::string("passport-leaf ").size() +
            trace_header(str(*sdk_doc, "trace_id"), str(call, "id")).size() + 1;
        EXPECT_TRUE(is_sdk_call(call, "127.0.0.1", c.target, c.leaf_status, leaf_length));

        // On the wire: the SDK's own header, naming its subsegment.
        const std::string trace_id = str(*sdk_doc, "trace_id");
        EXPECT_EQ(header_received(*leaf, c.target), trace_header(trace_id, str(call, "id")));

        // Passport's half: the callee's segment continues the SDK's trace under that subsegment.
        EXPECT_TRUE(is_valid_segment(*leaf_doc));
        EXPECT_EQ(field(*leaf_doc, "name"), "passport-leaf") << brief(*leaf_doc);
        EXPECT_TRUE(continues_trace(*leaf_doc, trace_id, str(call, "id")))
            << "Passport did not continue the SDK's trace under the SDK's subsegment";
        EXPECT_TRUE(has_http(*leaf_doc, "GET", leaf->url(c.target), c.leaf_status, leaf_length));
        EXPECT_TRUE(has_status_flags(*leaf_doc, c.leaf_status));
        EXPECT_EQ(field(*leaf_doc, "http.request.client_ip"), "127.0.0.1") << brief(*leaf_doc);
        EXPECT_TRUE(times_within(*leaf_doc, response.started_at, response.finished_at));
        EXPECT_TRUE(is_inside_call(*leaf_doc, call, kSdkRounding));
        EXPECT_FALSE(leaf_doc->contains("subsegments")) << brief(*leaf_doc);
        EXPECT_NE(str(*leaf_doc, "id"), str(call, "id"));
        EXPECT_NE(str(*leaf_doc, "id"), str(*sdk_doc, "id"));
    }

    AgentExit exit = stop_and_report();
    // Passport wrote exactly the leaf's segments: the SDK service is not selected.
    size_t passport_docs = 0;
    for (const auto& doc : collector().documents()) passport_docs += from_passport(doc) ? 1 : 0;
    EXPECT_EQ(passport_docs, cases.size());
    EXPECT_EQ(exit.counter("correlate.stitched_same_node"), 0u) << "the header, not stitching";
}

// The same under concurrent load: the SDK service reuses keep-alive connections to the callee, each
// request with its own header, and every Passport segment must take the header of its own request.
TEST_F(XraySdkInteropE2E, SdkCallerUnderLoadEveryCalleeSegmentUnderItsOwnSdkSubsegment) {
    constexpr int kRequests = 200;
    constexpr int kConcurrency = 8;
    std::filesystem::copy_file(fixture("load_client.py"), dir().path() / "load_client.py",
                               std::filesystem::copy_options::overwrite_existing);
    auto leaf = start_python_leaf("passport-leaf");
    auto sdk = start_sdk_service("sdk-front", leaf.get());
    start_agent({"--pid", std::to_string(leaf->pid())});

    CommandResult run = run_command(
        ChildOptions{{python3_path(), "load_client.py", "127.0.0.1", std::to_string(sdk->port()),
                      std::to_string(kRequests), std::to_string(kConcurrency)},
                     {},
                     {},
                     dir().path(),
                     true},
        deadline_in(std::chrono::seconds(180)));
    ASSERT_TRUE(run.status.success() && !run.timed_out) << run.status.describe() << run.err;
    size_t ok = 0;
    std::istringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string kind;
        long id = 0;
        int status = 0;
        words >> kind >> id >> status;
        if (kind == "result" && status == 200) ++ok;
    }
    ASSERT_EQ(ok, size_t(kRequests)) << run.out.substr(0, 2000);

    const std::string sdk_prefix = sdk->url("/work?id=");
    const std::string leaf_prefix = leaf->url("/item?id=");
    auto sdk_docs = collector().wait_for_count(
        [&](const json& d) { return from_sdk(d) && url_contains(d, sdk_prefix); }, kRequests,
        deadline_in(std::chrono::seconds(60)));
    auto leaf_docs = collector().wait_for_count(
        [&](const json& d) { return from_passport(d) && url_contains(d, leaf_prefix); }, kRequests,
        deadline_in(std::chrono::seconds(60)));
    stop_and_report();
    ASSERT_EQ(sdk_docs.size(), size_t(kRequests));
    ASSERT_EQ(leaf_docs.size(), size_t(kRequests)) << agent_diagnostics();

    std::map<std::string, std::pair<std::string, json>> sdk_by_id;  // N → (trace id, subsegment)
    for (const auto& doc : sdk_docs) {
        const std::string url = str(doc, "http.request.url");
        json subs = field(doc, "subsegments");
        ASSERT_TRUE(subs.is_array() && subs.size() == 1) << brief(doc);
        EXPECT_TRUE(is_sdk_call(subs[0], "127.0.0.1", "/item", 200, std::nullopt));
        sdk_by_id[url.substr(sdk_prefix.size())] = {str(doc, "trace_id"), subs[0]};
    }
    size_t correct = 0;
    std::string first_wrong;
    for (const auto& doc : leaf_docs) {
        EXPECT_TRUE(is_valid_segment(doc));
        const std::string n = str(doc, "http.request.url").substr(leaf_prefix.size());
        auto it = sdk_by_id.find(n);
        bool right = it != sdk_by_id.end() &&
                     continues_trace(doc, it->second.first, str(it->second.second, "id")) &&
                     is_inside_call(doc, it->second.second, kSdkRounding);
        if (right) {
            ++correct;
        } else if (first_wrong.empty()) {
            first_wrong = brief(doc);
        }
    }
    std::cout << "SDK -> Passport under load: " << correct << "/" << leaf_docs.size()
              << " callee segments under their own SDK subsegment (" << kRequests << " requests, "
              << kConcurrency << " concurrent)" << std::endl;
    EXPECT_EQ(correct, leaf_docs.size()) << "first wrong: " << first_wrong;
}

// ---------------------------------------------------------------------------------------------
// 2. Passport → SDK.
std::vector<XraySdkInteropE2E::PassportToSdk> XraySdkInteropE2E::run_passport_to_sdk(
    const std::vector<std::string>& extra_args, bool also_select_sdk_service) {
    std::vector<PassportToSdk> out;
    auto sdk = start_sdk_service("sdk-back");
    auto caller = start_python_caller("passport-front", *sdk);
    std::vector<std::string> args = {"--pid", std::to_string(caller->pid())};
    if (also_select_sdk_service) args.insert(args.end(), {"--pid", std::to_string(sdk->pid())});
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    start_agent(args);

    const std::string tag = unique_tag();
    for (bool with_header : {false, true}) {
        const std::string target = "/trace-header/" + tag + (with_header ? "/continued" : "/new");
        SCOPED_TRACE(target);
        std::vector<std::string> headers;
        if (with_header) headers.push_back("X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader));
        HttpResponse response = http_get(caller->url("/call" + target), headers);
        EXPECT_EQ(response.status, 200) << response.curl_stderr << response.body;

        auto caller_doc = passport_doc_for(caller->url("/call" + target));
        auto sdk_doc = sdk_doc_for(sdk->url(target));
        if (!caller_doc || !sdk_doc) {
            ADD_FAILURE() << "Passport segment " << bool(caller_doc) << ", SDK segment "
                          << bool(sdk_doc) << "\n"
                          << agent_diagnostics();
            return out;
        }
        EXPECT_TRUE(is_valid_segment(*caller_doc));
        EXPECT_EQ(field(*caller_doc, "name"), "passport-front");
        EXPECT_TRUE(
            has_http(*caller_doc, "GET", caller->url("/call" + target), 200, response.body.size()));
        if (with_header) {
            EXPECT_TRUE(continues_trace(*caller_doc, kIncomingRoot, kIncomingParent));
        } else {
            EXPECT_TRUE(is_new_trace(*caller_doc, response.started_at, response.finished_at));
        }
        json subs = field(*caller_doc, "subsegments");
        if (!subs.is_array() || subs.size() != 1) {
            ADD_FAILURE() << "want one call subsegment: " << brief(*caller_doc);
            return out;
        }
        // The SDK service echoes the header it received: its body is what the caller relays.
        EXPECT_TRUE(is_passport_call(subs[0], "127.0.0.1", sdk->url(target), 200,
                                     response.body.size(), *caller_doc));
        EXPECT_TRUE(is_sdk_segment(*sdk_doc, "sdk-back", sdk->url(target), 200));
        std::string received = response.body;
        if (!received.empty() && received.back() == '\n') received.pop_back();
        EXPECT_EQ(header_received(*sdk, target), received);
        out.push_back({*caller_doc, subs[0], *sdk_doc, received, with_header});
    }
    return out;
}

// Needs header injection (sock_ops + sk_msg): without it the SDK service would receive no header
// ("none").
TEST_F(XraySdkInteropE2E, PassportTracedCallerSdkCalleeNamesPassportsSubsegment) {
    auto runs = run_passport_to_sdk({}, /*also_select_sdk_service=*/false);
    ASSERT_EQ(runs.size(), 2u);
    for (const auto& r : runs) {
        SCOPED_TRACE(r.with_incoming_header ? "client sent a trace header" : "new trace");
        const std::string trace_id = str(r.caller, "trace_id");
        const std::string call_id = str(r.call, "id");
        EXPECT_EQ(r.received, trace_header(trace_id, call_id))
            << "the header that reached the SDK service is not Passport's for this call"
            << (r.received == "none" ? " (none arrived: the header was not injected)" : "");
        EXPECT_TRUE(continues_trace(r.sdk, trace_id, call_id))
            << "the SDK's segment does not name Passport's subsegment as its parent";
        // The SDK service is not traced by Passport: nothing on this node says a segment under
        // the call exists, so it is not claimed (the SDK's segment joins by parent_id anyway).
        EXPECT_NE(field(r.call, "http.request.traced"), true)
            << "traced, though Passport cannot see the callee: " << brief(r.call);
        EXPECT_TRUE(is_inside_call(r.sdk, r.call, kSdkRounding));
    }
    stop_and_report();
}

// The stitching-only picture (--no-inject): no header reaches the SDK service, so nothing links
// the SDK's segment to the caller and the SDK starts its own trace. The SDK service is selected
// too, so Passport's own segment for it is stitched under the call (which is therefore marked
// traced), next to the SDK's separate trace.
TEST_F(XraySdkInteropE2E, WithoutInjectionTheSdkCalleeStartsItsOwnTrace) {
    // --sdk-segments keep: Passport's own view of the SDK service is part of the picture here
    // (by default Passport leaves a process with its own SDK to it: sdk_dedupe_e2e_test.cpp).
    auto runs = run_passport_to_sdk({"--no-inject", "--sdk-segments", "keep"},
                                    /*also_select_sdk_service=*/true);
    ASSERT_EQ(runs.size(), 2u);
    for (const auto& r : runs) {
        SCOPED_TRACE(r.with_incoming_header ? "client sent a trace header" : "new trace");
        EXPECT_EQ(r.received, "none") << "--no-inject, yet a header reached the SDK service";
        EXPECT_FALSE(r.sdk.contains("parent_id")) << brief(r.sdk);
        EXPECT_NE(str(r.sdk, "trace_id"), str(r.caller, "trace_id"));
        // Passport's own segment of the SDK service's request is stitched under the call.
        auto own = collector().wait_for(
            [&](const json& d) {
                return from_passport(d) &&
                       field(d, "http.request.url") == field(r.sdk, "http.request.url");
            },
            deadline_in(kDocumentTimeout));
        ASSERT_TRUE(own) << agent_diagnostics();
        EXPECT_TRUE(continues_trace(*own, str(r.caller, "trace_id"), str(r.call, "id")));
        EXPECT_EQ(field(r.call, "http.request.traced"), true) << brief(r.call);
    }
    stop_and_report();
}

// ---------------------------------------------------------------------------------------------
// 3. The app's own SDK wins: a selected, SDK-instrumented process calls a traced service. The
// request already carries the SDK's header; the downstream continues the SDK's trace under the
// SDK's subsegment, not under Passport's view of the same call.
TEST_F(XraySdkInteropE2E, AppsOwnSdkHeaderWinsOverPassport) {
    auto leaf = start_python_leaf("passport-leaf");
    auto sdk = start_sdk_service("sdk-front", leaf.get());
    // --sdk-segments keep: Passport's own view of the SDK service is compared below (by default
    // it is suppressed: sdk_dedupe_e2e_test.cpp).
    start_agent({"--pid", std::to_string(sdk->pid()), "--pid", std::to_string(leaf->pid()),
                 "--sdk-segments", "keep"});

    const std::string tag = unique_tag();
    for (bool with_header : {false, true}) {
        const std::string target = "/ok/" + tag + (with_header ? "/continued" : "/new");
        SCOPED_TRACE(target);
        std::vector<std::string> headers;
        if (with_header) headers.push_back("X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader));
        HttpResponse response = http_get(sdk->url("/call" + target), headers);
        ASSERT_EQ(response.status, 200) << response.curl_stderr;

        auto sdk_doc = sdk_doc_for(sdk->url("/call" + target));
        auto own_doc = passport_doc_for(sdk->url("/call" + target));
        auto leaf_doc = passport_doc_for(leaf->url(target));
        ASSERT_TRUE(sdk_doc && own_doc && leaf_doc)
            << "SDK " << bool(sdk_doc) << ", Passport's view of the SDK service " << bool(own_doc)
            << ", leaf " << bool(leaf_doc) << "\n"
            << agent_diagnostics();

        EXPECT_TRUE(is_sdk_segment(*sdk_doc, "sdk-front", sdk->url("/call" + target), 200));
        json sdk_subs = field(*sdk_doc, "subsegments");
        ASSERT_TRUE(sdk_subs.is_array() && sdk_subs.size() == 1) << brief(*sdk_doc);
        const json& sdk_call = sdk_subs[0];
        const std::string trace_id = str(*sdk_doc, "trace_id");
        const std::string header = trace_header(trace_id, str(sdk_call, "id"));
        EXPECT_TRUE(is_sdk_call(sdk_call, "127.0.0.1", target, 200, std::nullopt));

        // The header on the wire is the SDK's, unchanged.
        EXPECT_EQ(header_received(*leaf, target), header);
        EXPECT_EQ(response.body, "passport-leaf " + header + "\n");

        // The downstream: the SDK's trace, the SDK's subsegment as parent.
        EXPECT_TRUE(is_valid_segment(*leaf_doc));
        EXPECT_EQ(field(*leaf_doc, "name"), "passport-leaf");
        EXPECT_TRUE(continues_trace(*leaf_doc, trace_id, str(sdk_call, "id")))
            << "the downstream segment is not under the app's own SDK subsegment";
        EXPECT_TRUE(has_http(*leaf_doc, "GET", leaf->url(target), 200, response.body.size()));
        EXPECT_TRUE(is_inside_call(*leaf_doc, sdk_call, kSdkRounding));

        // Passport's own view of the selected SDK service: a valid segment with the call as a
        // subsegment, not claiming the callee (its segment lives in the SDK's trace).
        EXPECT_TRUE(is_valid_segment(*own_doc));
        EXPECT_TRUE(
            has_http(*own_doc, "GET", sdk->url("/call" + target), 200, response.body.size()));
        if (with_header) {
            EXPECT_TRUE(continues_trace(*own_doc, kIncomingRoot, kIncomingParent));
        } else {
            EXPECT_TRUE(is_new_trace(*own_doc, response.started_at, response.finished_at));
        }
        json own_subs = field(*own_doc, "subsegments");
        ASSERT_TRUE(own_subs.is_array() && own_subs.size() == 1) << brief(*own_doc);
        EXPECT_TRUE(is_passport_call(own_subs[0], "127.0.0.1", leaf->url(target), 200,
                                     response.body.size(), *own_doc));
        EXPECT_NE(field(own_subs[0], "http.request.traced"), true)
            << "the callee's segment is not a child of Passport's subsegment: "
            << brief(own_subs[0]);
        EXPECT_NE(str(*leaf_doc, "parent_id"), str(own_subs[0], "id"));
    }
    AgentExit exit = stop_and_report();
    EXPECT_EQ(exit.counter("correlate.stitched_same_node"), 0u)
        << "the SDK's header, not stitching";
}

// ---------------------------------------------------------------------------------------------
// 4. Field by field with the SDK, on the same service.

// The epoch seconds the service printed when its connection for `tag` was established.
double connected_at(TestServer& service, const std::string& tag) {
    const std::string escaped =
        std::regex_replace(tag, std::regex(R"([.?*+^$()\[\]{}|\\])"), R"(\$&)");
    auto line = service.process().wait_for_line(Stream::kStdout,
                                                std::regex("^connected " + escaped + " (\\S+)$"),
                                                deadline_in(kDocumentTimeout));
    return line ? std::stod(line->groups[1]) : -1;
}

// The callee's status and Content-Length as the service relayed them ("STATUS LENGTH BODY").
std::pair<int, uint64_t> relayed(const std::string& body) {
    std::istringstream in(body);
    int status = 0;
    uint64_t length = 0;
    in >> status >> length;
    return {status, length};
}

TEST_F(XraySdkInteropE2E, CallSubsegmentsMatchTheSdkOnTheSameService) {
    auto untraced_leaf = start_python_leaf("plain-leaf");
    auto traced_leaf = start_python_leaf("passport-leaf");
    auto sdk = start_sdk_service("front", untraced_leaf.get());  // DOWN_HOST 127.0.0.1
    auto plain = start_plain_express("front");
    start_agent(
        {"--pid", std::to_string(plain->pid()), "--pid", std::to_string(traced_leaf->pid())});

    struct Case {
        TestServer* leaf;
        bool leaf_traced;
        std::string method;
        std::string path;
        int status;
    };
    const std::string tag = unique_tag();
    std::vector<Case> cases;
    for (auto [leaf, is_traced] :
         {std::pair{untraced_leaf.get(), false}, std::pair{traced_leaf.get(), true}}) {
        const std::string who = is_traced ? "/traced" : "/untraced";
        cases.push_back({leaf, is_traced, "GET", "/ok/" + tag + who + "?q=1", 200});
        cases.push_back({leaf, is_traced, "GET", "/missing/" + tag + who, 404});
        cases.push_back({leaf, is_traced, "HEAD", "/ok/" + tag + who + "/head", 200});
    }
    for (const Case& c : cases) {
        const std::string port = std::to_string(c.leaf->port());
        const std::string route = port + "/" + c.method + c.path;
        const std::string target = "/to/" + route;
        SCOPED_TRACE(c.method + " " + c.path);
        HttpResponse via_sdk = http_get(sdk->url(target));
        HttpResponse via_plain = http_get(plain->url(target));
        ASSERT_EQ(via_sdk.status, 200) << via_sdk.curl_stderr << via_sdk.body;
        ASSERT_EQ(via_plain.status, 200) << via_plain.curl_stderr << via_plain.body;
        const auto [sdk_status, sdk_length] = relayed(via_sdk.body);
        const auto [plain_status, plain_length] = relayed(via_plain.body);
        ASSERT_EQ(sdk_status, c.status) << via_sdk.body;
        ASSERT_EQ(plain_status, c.status) << via_plain.body;

        auto sdk_doc = sdk_doc_for(sdk->url(target));
        auto pp_doc = passport_doc_for(plain->url(target));
        ASSERT_TRUE(sdk_doc && pp_doc)
            << "SDK segment " << bool(sdk_doc) << ", Passport segment " << bool(pp_doc) << "\n"
            << agent_diagnostics();
        EXPECT_EQ(str(*pp_doc, "name"), str(*sdk_doc, "name"));
        json sdk_subs = field(*sdk_doc, "subsegments");
        json pp_subs = field(*pp_doc, "subsegments");
        ASSERT_TRUE(sdk_subs.is_array() && sdk_subs.size() == 1) << brief(*sdk_doc);
        ASSERT_TRUE(pp_subs.is_array() && pp_subs.size() == 1) << brief(*pp_doc);
        const json& sdk_call = sdk_subs[0];
        const json& pp_call = pp_subs[0];

        // Equal: name, namespace, method, status, flags; the content length of a GET.
        for (const char* f : {"name", "namespace", "http.request.method", "http.response.status",
                              "error", "fault", "throttle"}) {
            EXPECT_EQ(field(pp_call, f), field(sdk_call, f))
                << f << "\n  SDK: " << brief(sdk_call) << "\n  Passport: " << brief(pp_call);
        }
        EXPECT_EQ(field(pp_call, "http.request.method"), c.method);
        EXPECT_TRUE(has_status_flags(pp_call, c.status));
        EXPECT_TRUE(is_passport_call(pp_call, "127.0.0.1", "http://127.0.0.1:" + port + c.path,
                                     c.status, c.method == "HEAD" ? 0 : plain_length, *pp_doc,
                                     c.method));
        // Differs by design (docs/xray-mapping.md): the URL keeps the port and the query.
        EXPECT_EQ(str(sdk_call, "http.request.url"), "http://127.0.0.1" + without_query(c.path));
        // HEAD: the SDK copies the Content-Length header; Passport writes the body's length, 0.
        EXPECT_EQ(field(sdk_call, "http.response.content_length"), sdk_length);
        if (c.method == "HEAD") {
            EXPECT_EQ(field(pp_call, "http.response.content_length"), 0) << brief(pp_call);
        }
        // traced: the SDK writes it because the app enabled downstreamXRayEnabled; Passport only
        // when the callee's segment under the call exists.
        EXPECT_EQ(field(sdk_call, "traced"), true) << brief(sdk_call);
        if (c.leaf_traced) {
            EXPECT_EQ(field(pp_call, "http.request.traced"), true) << brief(pp_call);
            // (The leaf also served the SDK's twin of this call: its segment names the SDK's.)
            auto callee = wait_for_doc([&](const json& d) {
                return from_passport(d) && field(d, "http.request.url") == c.leaf->url(c.path) &&
                       str(d, "parent_id") == str(pp_call, "id");
            });
            ASSERT_TRUE(callee) << "no callee segment under " << brief(pp_call) << "\n"
                                << agent_diagnostics();
            EXPECT_TRUE(continues_trace(*callee, str(*pp_doc, "trace_id"), str(pp_call, "id")));
            EXPECT_LE(num(pp_call, "start_time"), num(*callee, "start_time")) << brief(*callee);
            // The callee's own segment of a HEAD request: no body, whatever Content-Length says.
            if (c.method == "HEAD") {
                EXPECT_EQ(field(*callee, "http.response.content_length"), 0) << brief(*callee);
            }
        } else {
            EXPECT_NE(field(pp_call, "http.request.traced"), true) << brief(pp_call);
        }
        // The call starts at connect(): no later than the connection was established (the
        // service sends the request 20 ms after that), as the SDK's starts before the socket.
        // The only slack is the microsecond rounding of the two clocks' conversions.
        const double connected = connected_at(*plain, route);
        ASSERT_GT(connected, 0) << "the service printed no connect time for " << route;
        EXPECT_LE(num(pp_call, "start_time"), connected + 0.0001)
            << "Passport's call starts after its connection was made: " << brief(pp_call);
        const double sdk_connected = connected_at(*sdk, route);
        EXPECT_LE(num(sdk_call, "start_time"), sdk_connected + kSdkRounding) << brief(sdk_call);
    }
    AgentExit exit = stop_and_report();
    EXPECT_GE(exit.counter("correlate.inject_matched"), cases.size()) << exit.counters_text();
    // Every call opened its connection (agent: false); half went to the traced callee.
    EXPECT_EQ(exit.counter("correlate.calls_from_connect"), cases.size());
    EXPECT_EQ(exit.counter("correlate.calls_traced"), cases.size() / 2);
}

}  // namespace
}  // namespace passport::testing::e2e
