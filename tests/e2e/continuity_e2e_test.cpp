// Trace continuity across services, with no code in any of them: an HTTP/1 call a traced process
// makes while serving a request is a subsegment of that request's segment, and a callee traced
// on the same node (any network namespace of this host) is stitched into the caller's trace by
// the mirrored connection tuple (userspace/correlate/correlator.hpp).
//
// Fixtures: caller_server.py (stdlib ThreadingHTTPServer calling out with http.client),
// node_continuity.js (a Node callee, and a Node event-loop caller), load_client.py (an untraced
// threaded load driver), call_loop.py (a traced script that is not a server), nginx as a reverse
// proxy (config generated here).
//
// The agent runs with --no-inject here: these tests pin same-node stitching, which is what
// links services when injection is off or impossible (TLS). Injection has its own tests
// (inject_e2e_test.cpp).
#include <csignal>
#include <ctime>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/e2e/e2e_common.hpp"
#include "tests/support/netns.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

// The header caller_server.py's /with-header/ route sends on its call (FIXED_TRACE_HEADER).
constexpr std::string_view kFixedRoot = "1-65a1b2c3-0123456789abcdef01234567";
constexpr std::string_view kFixedParent = "0f1e2d3c4b5a6978";

bool is_independent_subsegment(const json& doc) { return field(doc, "type") == "subsegment"; }

// The `id=N` a URL ends with ("…?id=N"), or -1.
long id_in_url(const std::string& url) {
    auto pos = url.rfind("id=");
    if (pos == std::string::npos) return -1;
    const std::string digits = url.substr(pos + 3);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
    return std::stol(digits);
}

// Length of the callee's /item?id=N body, "item N\n".
uint64_t item_body_length(long n) { return ("item " + std::to_string(n) + "\n").size(); }

// What one outgoing call must look like as a subsegment.
struct CallExpect {
    std::string name;  // Host header without port
    std::string url;   // "http://" + Host header + target
    int status = 200;
    std::optional<uint64_t> content_length;
    bool traced = false;  // the callee is traced on this node and stitched under this call
};

// Every field of a call subsegment (embedded or independent), and its times inside `parent`'s.
AssertionResult is_call_subsegment(const json& sub, const CallExpect& want, const json& parent) {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  subsegment: " << brief(sub)
                                  << "\n  parent: " << brief(parent).substr(0, 600);
    };
    if (!sub.is_object()) return fail("subsegment is not an object");
    if (!is_segment_id(str(sub, "id"))) return fail("id is not 16 hex digits");
    if (str(sub, "name") != want.name) return fail("name is not " + want.name);
    if (str(sub, "namespace") != "remote") return fail("namespace is not \"remote\"");
    if (auto r = has_http(sub, "GET", want.url, want.status, want.content_length); !r) {
        return fail(r.message());
    }
    if (auto r = has_status_flags(sub, want.status); !r) return fail(r.message());
    json traced = field(sub, "http.request.traced");
    if (want.traced && traced != true) return fail("http.request.traced is not true");
    if (!want.traced && !(traced.is_null() || traced == false)) {
        return fail("http.request.traced is set, but no segment of the callee is its child");
    }
    if (sub.contains("in_progress")) return fail("complete call carries in_progress");
    double s = num(sub, "start_time");
    double e = num(sub, "end_time");
    if (s < 0 || e < 0 || s > e) return fail("start_time/end_time missing or reversed");
    double ps = num(parent, "start_time");
    double pe = num(parent, "end_time");
    if (s < ps || e > pe) {
        char text[200];
        std::snprintf(text, sizeof text, "times [%.6f, %.6f] not inside the parent's [%.6f, %.6f]",
                      s, e, ps, pe);
        return fail(text);
    }
    return AssertionSuccess();
}

// A subsegment sent as its own document: `type`, `trace_id` and `parent_id` well formed.
AssertionResult is_valid_independent(const json& doc) {
    if (!is_independent_subsegment(doc)) return AssertionFailure() << "no type:subsegment";
    if (!is_segment_id(str(doc, "id")) || !is_trace_id(str(doc, "trace_id")) ||
        !is_segment_id(str(doc, "parent_id")) || str(doc, "name").empty() ||
        num(doc, "start_time") < 0) {
        return AssertionFailure() << "malformed independent subsegment: " << brief(doc);
    }
    return AssertionSuccess();
}

// A callee segment stitched under `call` (made in trace `trace_id`): that trace, the call as
// parent, and its times inside the call's (the end with cross-process slack).
AssertionResult is_stitched_under(const json& callee, const json& call,
                                  const std::string& trace_id) {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  callee segment: " << brief(callee)
                                  << "\n  call subsegment: " << brief(call);
    };
    if (str(callee, "trace_id") != trace_id) {
        return fail("trace_id is \"" + str(callee, "trace_id") + "\", want the caller's " +
                    trace_id);
    }
    if (str(callee, "parent_id") != str(call, "id")) {
        return fail("parent_id is \"" + str(callee, "parent_id") +
                    "\", want the call's subsegment id " + str(call, "id"));
    }
    double s = num(callee, "start_time");
    double e = num(callee, "end_time");
    // The callee reads the request only after the caller began writing it: exact.
    if (s < num(call, "start_time")) return fail("callee starts before the call was written");
    if (e > num(call, "end_time") + kCrossProcessSlack) return fail("callee ends after the call");
    return AssertionSuccess();
}

// Everything the agent sent, split into segments and independent subsegments.
struct Sent {
    std::vector<json> segments;
    std::vector<json> independents;

    explicit Sent(const std::vector<json>& docs) {
        for (const auto& doc : docs) {
            (is_independent_subsegment(doc) ? independents : segments).push_back(doc);
        }
    }
    // Subsegments of `segment`: embedded ones, then independent ones naming it as parent.
    std::vector<json> subsegments_of(const json& segment, size_t* late = nullptr) const {
        std::vector<json> out;
        if (auto it = segment.find("subsegments"); it != segment.end() && it->is_array()) {
            for (const auto& sub : *it) out.push_back(sub);
        }
        const std::string id = str(segment, "id");
        for (const auto& doc : independents) {
            if (str(doc, "parent_id") == id) {
                out.push_back(doc);
                if (late) ++*late;
            }
        }
        return out;
    }
    std::vector<json> segments_where(const std::function<bool(const json&)>& pred) const {
        std::vector<json> out;
        for (const auto& s : segments) {
            if (pred(s)) out.push_back(s);
        }
        return out;
    }
};

bool named(const json& doc, std::string_view name) {
    return field(doc, "name") == std::string(name);
}

// One request of load_client.py.
struct LoadResult {
    int status = 0;
    double started_at = 0;
    double finished_at = 0;
};

struct LoadRun {
    std::map<long, LoadResult> results;
    std::vector<std::string> errors;
    std::string summary;
};

LoadRun parse_load_output(const CommandResult& run) {
    LoadRun out;
    std::istringstream lines(run.out);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string kind;
        words >> kind;
        if (kind == "result") {
            long id = 0;
            LoadResult r;
            words >> id >> r.status >> r.started_at >> r.finished_at;
            out.results[id] = r;
        } else if (kind == "error") {
            out.errors.push_back(line);
        } else if (kind == "done") {
            out.summary = line;
        }
    }
    return out;
}

// Appends a measured fraction to ${PASSPORT_BINARY_DIR}/continuity-fractions.txt (for the docs).
void record_fraction(const std::string& label, size_t correct, size_t total) {
    std::ofstream out(std::filesystem::path(PASSPORT_BINARY_DIR) / "continuity-fractions.txt",
                      std::ios::app);
    std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    char fraction[32];
    std::snprintf(fraction, sizeof fraction, "%.4f", total ? double(correct) / double(total) : 0.0);
    out << when << " " << label << ": " << correct << "/" << total << " correct (" << fraction
        << ")\n";
}

class ContinuityE2E : public E2eTest {
  protected:
    // The Node callee (node_continuity.js callee) on 127.0.0.1.
    std::unique_ptr<TestServer> start_node_callee(const std::string& name) {
        copy_fixture("node_continuity.js");
        return start_script_server({node_path(), "node_continuity.js", "callee"}, dir().path(),
                                   server_env({{"AWS_XRAY_TRACING_NAME", name}}));
    }
    // The Node event-loop caller, calling `callee`.
    std::unique_ptr<TestServer> start_node_caller(const std::string& name,
                                                  const TestServer& callee) {
        copy_fixture("node_continuity.js");
        return start_script_server({node_path(), "node_continuity.js", "caller", "127.0.0.1",
                                    std::to_string(callee.port())},
                                   dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", name}}));
    }
    // The Python ThreadingHTTPServer caller, calling `callee`.
    std::unique_ptr<TestServer> start_python_caller(const std::string& name,
                                                    const TestServer& callee) {
        copy_fixture("caller_server.py");
        return start_script_server(
            {python3_path(), "caller_server.py", "127.0.0.1", std::to_string(callee.port())},
            dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", name}}));
    }

    void copy_fixture(const std::string& name, const std::string& as = "") {
        std::filesystem::copy_file(fixture(name), dir().path() / (as.empty() ? name : as),
                                   std::filesystem::copy_options::overwrite_existing);
    }

    // Runs load_client.py against 127.0.0.1:port (untraced) and returns what it saw.
    LoadRun drive(uint16_t port, int count, int concurrency, int first_id) {
        copy_fixture("load_client.py");
        CommandResult run =
            run_command(ChildOptions{{python3_path(), "load_client.py", "127.0.0.1",
                                      std::to_string(port), std::to_string(count),
                                      std::to_string(concurrency), std::to_string(first_id)},
                                     {},
                                     {},
                                     dir().path(),
                                     true},
                        deadline_in(std::chrono::seconds(180)));
        EXPECT_TRUE(run.status.success() && !run.timed_out)
            << "load client: " << run.status.describe() << "\n"
            << tail(run.err);
        return parse_load_output(run);
    }

    // Waits until `n` segments satisfy `pred`.
    std::vector<json> wait_for_segments(const std::function<bool(const json&)>& pred, size_t n,
                                        std::chrono::seconds timeout = std::chrono::seconds(60)) {
        return collector().wait_for_count(
            [&](const json& d) { return !is_independent_subsegment(d) && pred(d); }, n,
            deadline_in(timeout));
    }

    // Stops the agent and prints its counters (always: the numbers are part of the result).
    AgentExit stop_and_report() {
        AgentExit exit = stop_agent_and_sync();
        std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;
        return exit;
    }
};

// ---------------------------------------------------------------------------------------------
// 1. Python (ThreadingHTTPServer + http.client) calls Node: one trace, every field checked.
TEST_F(ContinuityE2E, PythonCallsNodeOneTrace) {
    auto b = start_node_callee("svc-b");
    auto a = start_python_caller("svc-a", *b);
    start_agent(
        {"--no-inject", "--pid", std::to_string(a->pid()), "--pid", std::to_string(b->pid())});

    const std::string tag = unique_tag();
    const std::string b_host = "127.0.0.1:" + std::to_string(b->port());
    struct Case {
        std::string a_path;                // request to A
        std::vector<std::string> b_paths;  // the calls A makes, in order
        std::vector<int> b_statuses;
        std::vector<uint64_t> b_lengths;
        int a_status;
        bool with_header;
    };
    const std::vector<Case> cases = {
        {"/call/ok/" + tag + "/plain", {"/ok/" + tag + "/plain"}, {200}, {3}, 200, false},
        {"/call/ok/" + tag + "/header", {"/ok/" + tag + "/header"}, {200}, {3}, 200, true},
        {"/call/missing/" + tag, {"/missing/" + tag}, {404}, {10}, 502, false},
        {"/call/boom/" + tag, {"/boom/" + tag}, {500}, {5}, 502, true},
        {"/twice/ok/" + tag + "/two",
         {"/ok/" + tag + "/two?n=1", "/ok/" + tag + "/two?n=2"},
         {200, 200},
         {3, 3},
         200,
         false},
    };

    for (const Case& c : cases) {
        SCOPED_TRACE(c.a_path + (c.with_header ? " (with X-Amzn-Trace-Id)" : " (no trace header)"));
        std::vector<std::string> headers;
        if (c.with_header)
            headers.push_back("X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader));
        HttpResponse response = http_get(a->url(c.a_path), headers);
        ASSERT_EQ(response.status, c.a_status) << response.curl_stderr << response.body;

        auto a_doc = collector().wait_for(
            [&](const json& d) { return field(d, "http.request.url") == a->url(c.a_path); },
            deadline_in(kDocumentTimeout));
        ASSERT_TRUE(a_doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*a_doc));
        EXPECT_EQ(field(*a_doc, "name"), "svc-a") << brief(*a_doc);
        EXPECT_TRUE(has_http(*a_doc, "GET", a->url(c.a_path), c.a_status, response.body.size()));
        EXPECT_TRUE(has_status_flags(*a_doc, c.a_status));
        EXPECT_TRUE(times_within(*a_doc, response.started_at, response.finished_at));
        if (c.with_header) {
            EXPECT_TRUE(continues_trace(*a_doc, kIncomingRoot, kIncomingParent));
        } else {
            EXPECT_TRUE(is_new_trace(*a_doc, response.started_at, response.finished_at));
        }
        const std::string trace_id = str(*a_doc, "trace_id");

        // Exactly one embedded subsegment per call, in call order, never overlapping.
        json subs = field(*a_doc, "subsegments");
        ASSERT_TRUE(subs.is_array()) << "A's segment has no subsegments: " << brief(*a_doc);
        ASSERT_EQ(subs.size(), c.b_paths.size()) << brief(*a_doc);
        for (size_t i = 0; i < c.b_paths.size(); ++i) {
            SCOPED_TRACE("call " + c.b_paths[i]);
            const json& sub = subs[i];
            EXPECT_TRUE(
                is_call_subsegment(sub,
                                   CallExpect{"127.0.0.1", "http://" + b_host + c.b_paths[i],
                                              c.b_statuses[i], c.b_lengths[i], /*traced=*/true},
                                   *a_doc));
            EXPECT_FALSE(sub.contains("type") || sub.contains("trace_id") ||
                         sub.contains("parent_id"))
                << "an embedded subsegment carries independent-subsegment fields: " << brief(sub);
            if (i > 0) {
                EXPECT_LE(num(subs[i - 1], "end_time"), num(sub, "start_time"))
                    << "sequential calls overlap: " << brief(*a_doc);
            }

            // B's segment for this call: stitched under it.
            const std::string b_url = b->url(c.b_paths[i]);
            auto b_doc = collector().wait_for(
                [&](const json& d) { return field(d, "http.request.url") == b_url; },
                deadline_in(kDocumentTimeout));
            ASSERT_TRUE(b_doc) << agent_diagnostics();
            EXPECT_TRUE(is_valid_segment(*b_doc));
            EXPECT_EQ(field(*b_doc, "name"), "svc-b") << brief(*b_doc);
            EXPECT_TRUE(has_http(*b_doc, "GET", b_url, c.b_statuses[i], c.b_lengths[i]));
            EXPECT_TRUE(has_status_flags(*b_doc, c.b_statuses[i]));
            EXPECT_EQ(field(*b_doc, "http.request.client_ip"), "127.0.0.1") << brief(*b_doc);
            EXPECT_TRUE(is_stitched_under(*b_doc, sub, trace_id));
            EXPECT_FALSE(b_doc->contains("subsegments")) << "B made no calls: " << brief(*b_doc);
        }
        std::set<std::string> ids = {str(*a_doc, "id")};
        for (const auto& sub : subs) ids.insert(str(sub, "id"));
        EXPECT_EQ(ids.size(), 1 + subs.size()) << "ids repeat: " << brief(*a_doc);
    }

    // Exactly one document per request and per call; nothing went out as a late subsegment.
    AgentExit exit = stop_and_report();
    Sent sent(collector().documents());
    EXPECT_TRUE(sent.independents.empty())
        << "calls finished before their parent yet went out on their own: "
        << brief(sent.independents.front());
    for (const Case& c : cases) {
        EXPECT_EQ(sent.segments_where([&](const json& d) {
                          return field(d, "http.request.url") == a->url(c.a_path);
                      })
                      .size(),
                  1u)
            << c.a_path;
        for (const auto& p : c.b_paths) {
            EXPECT_EQ(sent.segments_where([&](const json& d) {
                              return field(d, "http.request.url") == b->url(p);
                          })
                          .size(),
                      1u)
                << p;
        }
    }
    EXPECT_EQ(exit.counter("correlate.stitched_same_node"), 6u);
}

// ---------------------------------------------------------------------------------------------
// 2. A thread pool (one thread per request) never puts a call under another request.
TEST_F(ContinuityE2E, ThreadPoolConcurrencyNeverMisattributes) {
    constexpr int kRequests = 300;
    constexpr int kConcurrency = 16;
    auto b = start_node_callee("pool-b");
    auto a = start_python_caller("pool-a", *b);
    start_agent(
        {"--no-inject", "--pid", std::to_string(a->pid()), "--pid", std::to_string(b->pid())});

    LoadRun run = drive(a->port(), kRequests, kConcurrency, 0);
    ASSERT_TRUE(run.errors.empty())
        << run.errors.size() << " failed, first: " << run.errors.front();
    ASSERT_EQ(run.results.size(), size_t(kRequests)) << run.summary;
    for (const auto& [id, r] : run.results) ASSERT_EQ(r.status, 200) << "request " << id;

    const std::string a_prefix = a->url("/work?id=");
    const std::string b_prefix = b->url("/item?id=");
    auto is_a = [&](const json& d) { return url_contains(d, a_prefix); };
    auto is_b = [&](const json& d) { return url_contains(d, b_prefix); };
    EXPECT_EQ(wait_for_segments(is_a, kRequests).size(), size_t(kRequests)) << agent_diagnostics();
    EXPECT_EQ(wait_for_segments(is_b, kRequests).size(), size_t(kRequests)) << agent_diagnostics();
    AgentExit exit = stop_and_report();

    Sent sent(collector().documents());
    for (const auto& doc : sent.independents) EXPECT_TRUE(is_valid_independent(doc));
    auto a_segments = sent.segments_where(is_a);
    auto b_segments = sent.segments_where(is_b);
    ASSERT_EQ(a_segments.size(), size_t(kRequests));
    ASSERT_EQ(b_segments.size(), size_t(kRequests));

    // Linking: every subsegment of segment /work?id=N is the call /item?id=N.
    std::map<std::string, std::pair<json, std::string>> call_by_id;  // sub id → (sub, trace id)
    size_t correct = 0;
    size_t late = 0;
    std::string first_wrong;
    for (const auto& seg : a_segments) {
        EXPECT_TRUE(is_valid_segment(seg));
        const long n = id_in_url(str(seg, "http.request.url"));
        auto it = run.results.find(n);
        if (it != run.results.end()) {
            EXPECT_TRUE(times_within(seg, it->second.started_at, it->second.finished_at));
        }
        auto subs = sent.subsegments_of(seg, &late);
        bool ok = subs.size() == 1;
        for (const auto& sub : subs) {
            call_by_id[str(sub, "id")] = {sub, str(seg, "trace_id")};
            // A thread serves one request at a time: the link is known, not inferred.
            EXPECT_EQ(field(sub, "metadata.passport.link.inferred"), false) << brief(sub);
            ok = ok && id_in_url(str(sub, "http.request.url")) == n &&
                 is_call_subsegment(sub,
                                    CallExpect{"127.0.0.1", b_prefix + std::to_string(n), 200,
                                               item_body_length(n), true},
                                    seg);
        }
        if (ok) {
            ++correct;
        } else if (first_wrong.empty()) {
            first_wrong = brief(seg);
        }
    }
    std::cout << "thread-pool linking: " << correct << "/" << a_segments.size() << " correct"
              << " (" << late << " sent as late subsegments)" << std::endl;
    record_fraction("thread-pool linking (python ThreadingHTTPServer, 300 requests, 16 threads)",
                    correct, a_segments.size());
    EXPECT_EQ(correct, a_segments.size()) << "first misattributed: " << first_wrong;

    // Stitching: every B segment /item?id=N hangs under the call /item?id=N, in its trace.
    size_t stitched = 0;
    std::string first_bad;
    for (const auto& seg : b_segments) {
        EXPECT_TRUE(is_valid_segment(seg));
        const long n = id_in_url(str(seg, "http.request.url"));
        auto parent = call_by_id.find(str(seg, "parent_id"));
        bool ok = parent != call_by_id.end() &&
                  id_in_url(str(parent->second.first, "http.request.url")) == n &&
                  is_stitched_under(seg, parent->second.first, parent->second.second);
        if (ok) {
            ++stitched;
        } else if (first_bad.empty()) {
            first_bad = brief(seg);
        }
    }
    std::cout << "thread-pool stitching: " << stitched << "/" << b_segments.size() << " correct"
              << std::endl;
    EXPECT_EQ(stitched, b_segments.size()) << "first wrong: " << first_bad;
    EXPECT_EQ(exit.counter("correlate.call_parent_forgotten"), 0u);
}

// ---------------------------------------------------------------------------------------------
// 3. One event-loop thread serving interleaved requests: "the latest open request on the thread"
// is a guess. The fraction is measured and recorded; sequential requests must all be right.
TEST_F(ContinuityE2E, NodeEventLoopLinkingFractionIsMeasured) {
    constexpr int kSequential = 50;
    constexpr int kSequentialFirstId = 100000;
    constexpr int kConcurrent = 200;
    constexpr int kConcurrency = 8;
    auto b = start_node_callee("loop-b");
    auto a = start_node_caller("loop-a", *b);
    start_agent(
        {"--no-inject", "--pid", std::to_string(a->pid()), "--pid", std::to_string(b->pid())});

    const std::string a_prefix = a->url("/work?id=");
    const std::string b_prefix = b->url("/item?id=");
    auto is_a = [&](const json& d) { return url_contains(d, a_prefix); };
    auto is_b = [&](const json& d) { return url_contains(d, b_prefix); };

    LoadRun sequential = drive(a->port(), kSequential, 1, kSequentialFirstId);
    ASSERT_TRUE(sequential.errors.empty()) << sequential.errors.front();
    ASSERT_EQ(sequential.results.size(), size_t(kSequential)) << sequential.summary;
    ASSERT_EQ(wait_for_segments(is_a, kSequential).size(), size_t(kSequential))
        << agent_diagnostics();

    LoadRun concurrent = drive(a->port(), kConcurrent, kConcurrency, 0);
    ASSERT_TRUE(concurrent.errors.empty()) << concurrent.errors.front();
    ASSERT_EQ(concurrent.results.size(), size_t(kConcurrent)) << concurrent.summary;
    for (const auto& [id, r] : concurrent.results) ASSERT_EQ(r.status, 200) << "request " << id;

    const size_t total = kSequential + kConcurrent;
    EXPECT_EQ(wait_for_segments(is_a, total).size(), total) << agent_diagnostics();
    EXPECT_EQ(wait_for_segments(is_b, total).size(), total) << agent_diagnostics();
    AgentExit exit = stop_and_report();

    Sent sent(collector().documents());
    for (const auto& doc : sent.independents) EXPECT_TRUE(is_valid_independent(doc));
    auto a_segments = sent.segments_where(is_a);
    auto b_segments = sent.segments_where(is_b);
    ASSERT_EQ(a_segments.size(), total);
    ASSERT_EQ(b_segments.size(), total);
    EXPECT_TRUE(
        sent.segments_where([](const json& d) { return named(d, "loop-a") && !d.contains("http"); })
            .empty())
        << "a call made while serving became a segment of its own";

    struct Tally {
        size_t correct = 0, total = 0, late = 0;
        size_t silently_wrong = 0;  // misplaced and not marked inferred
        size_t inferred = 0;
    };
    Tally seq, conc;
    std::map<std::string, std::pair<json, std::string>> call_by_id;  // sub id → (sub, trace id)
    std::set<long> calls_seen;
    for (const auto& seg : a_segments) {
        EXPECT_TRUE(is_valid_segment(seg));
        const long n = id_in_url(str(seg, "http.request.url"));
        Tally& t = n >= kSequentialFirstId ? seq : conc;
        auto subs = sent.subsegments_of(seg, &t.late);
        for (const auto& sub : subs) {
            const long call_n = id_in_url(str(sub, "http.request.url"));
            calls_seen.insert(call_n);
            call_by_id[str(sub, "id")] = {sub, str(seg, "trace_id")};
            EXPECT_EQ(str(sub, "namespace"), "remote") << brief(sub);
            EXPECT_EQ(field(sub, "http.response.status"), 200) << brief(sub);
            // The call belongs to the run of the request it was attributed to.
            Tally& owner = call_n >= kSequentialFirstId ? seq : conc;
            ++owner.total;
            const bool inferred = field(sub, "metadata.passport.link.inferred") == true;
            owner.inferred += inferred ? 1 : 0;
            if (call_n != n && !inferred) ++owner.silently_wrong;
            if (call_n == n) {
                ++owner.correct;
                // Attributed correctly: every field, nested in the parent's times.
                EXPECT_TRUE(is_call_subsegment(sub,
                                               CallExpect{"127.0.0.1", b_prefix + std::to_string(n),
                                                          200, item_body_length(n), true},
                                               seg));
            }
        }
    }
    // Every call is attached somewhere, exactly once.
    EXPECT_EQ(seq.total + conc.total, total) << "subsegments found for " << total << " calls";
    EXPECT_EQ(calls_seen.size(), total);

    std::cout << "event-loop linking (sequential): " << seq.correct << "/" << seq.total
              << " correct (" << seq.late << " late)" << std::endl;
    std::cout << "event-loop linking: " << conc.correct << "/" << conc.total << " correct ("
              << conc.late << " late; " << kConcurrent << " requests, concurrency " << kConcurrency
              << ")" << std::endl;
    record_fraction("event-loop linking (node, 50 requests, concurrency 1)", seq.correct,
                    seq.total);
    record_fraction("event-loop linking (node, 200 requests, concurrency 8)", conc.correct,
                    conc.total);
    EXPECT_EQ(seq.correct, size_t(kSequential)) << "sequential requests must all link correctly";
    EXPECT_EQ(seq.total, size_t(kSequential));
    EXPECT_GT(conc.total, 0u) << "no fraction measured";
    // Never a silent guess: a call placed under another request says its link is inferred.
    std::cout << "event-loop links marked inferred: " << seq.inferred << "/" << seq.total
              << " sequential, " << conc.inferred << "/" << conc.total << " concurrent"
              << std::endl;
    EXPECT_EQ(seq.silently_wrong + conc.silently_wrong, 0u);
    EXPECT_EQ(seq.inferred, 0u) << "one request at a time: every link is known";
    EXPECT_EQ(exit.counter("correlate.links_inferred"), seq.inferred + conc.inferred);

    // Stitching is by connection tuple, not by guess: exact even when linking is not.
    size_t stitched = 0;
    std::string first_bad;
    for (const auto& seg : b_segments) {
        EXPECT_TRUE(is_valid_segment(seg));
        const long n = id_in_url(str(seg, "http.request.url"));
        auto parent = call_by_id.find(str(seg, "parent_id"));
        bool ok = parent != call_by_id.end() &&
                  id_in_url(str(parent->second.first, "http.request.url")) == n &&
                  is_stitched_under(seg, parent->second.first, parent->second.second);
        if (ok) {
            ++stitched;
        } else if (first_bad.empty()) {
            first_bad = brief(seg);
        }
    }
    std::cout << "event-loop stitching: " << stitched << "/" << b_segments.size() << " correct"
              << std::endl;
    EXPECT_EQ(stitched, b_segments.size()) << "first wrong: " << first_bad;
    EXPECT_EQ(exit.counter("correlate.call_parent_forgotten"), 0u);
}

// ---------------------------------------------------------------------------------------------
// 4. A script that serves nothing: each call is a segment of its own, named after the script.
// An event loop holds request 1 (it waits before calling out) while it serves request 2 on another
// connection, which then closes: the thread's kernel context, which named request 2, goes back
// to request 1 (still unanswered), so request 1's call carries request 1's trace instead of
// starting a trace of its own.
TEST_F(ContinuityE2E, EventLoopKeepsAHeldRequestsTraceWhenAnotherConnectionCloses) {
    auto b = start_node_callee("held-b");
    auto a = start_node_caller("held-a", *b);
    start_agent({"--pid", std::to_string(a->pid()), "--pid", std::to_string(b->pid())});

    HttpResponse held;
    std::thread first([&] { held = http_get(a->url("/hold?id=1&ms=1500")); });
    // Request 2 is read after request 1 (ordering only; request 1 waits 1.5 s before its call).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    HttpResponse quick = http_get(a->url("/hold?id=2&ms=0"));
    first.join();
    EXPECT_EQ(quick.status, 200) << quick.body;
    EXPECT_EQ(held.status, 200) << held.body;

    auto is_b1 = [&](const json& d) { return url_contains(d, b->url("/item?id=1")); };
    auto is_a1 = [&](const json& d) { return url_contains(d, a->url("/hold?id=1")); };
    EXPECT_EQ(wait_for_segments(is_b1, 1).size(), 1u) << agent_diagnostics();
    EXPECT_EQ(wait_for_segments(is_a1, 1).size(), 1u) << agent_diagnostics();
    AgentExit exit = stop_and_report();
    EXPECT_GE(exit.counter("kernel.ctx_restored"), 1u) << exit.counters_text();

    Sent sent(collector().documents());
    auto a1 = sent.segments_where(is_a1);
    auto b1 = sent.segments_where(is_b1);
    ASSERT_EQ(a1.size(), 1u);
    ASSERT_EQ(b1.size(), 1u);
    size_t late = 0;
    auto subs = sent.subsegments_of(a1[0], &late);
    ASSERT_EQ(subs.size(), 1u) << brief(a1[0]);
    EXPECT_TRUE(is_stitched_under(b1[0], subs[0], str(a1[0], "trace_id")))
        << "request 1's call must carry request 1's trace: " << brief(b1[0]);
    // Two requests were open on the thread at once: the link is marked as inferred.
    EXPECT_EQ(field(subs[0], "metadata.passport.link.inferred"), true) << brief(subs[0]);
}

TEST_F(ContinuityE2E, CallOutsideAnyRequestIsItsOwnSegment) {
    constexpr int kLoops = 3;
    auto traced = start_node_callee("loop-target");
    const std::string file = unique_tag() + ".txt";
    dir().write_file("www/" + file, "hello\n");
    auto untraced = start_python_http_server(dir().path() / "www", server_env());

    copy_fixture("call_loop.py", "inventory_sync.py");
    const std::string traced_url = traced->url("/ok/" + unique_tag());
    const std::string untraced_url = untraced->url("/" + file);
    ServerOptions env = server_env({{"PYTHONUNBUFFERED", "1"}});
    ChildProcess script(ChildOptions{
        {python3_path(), "inventory_sync.py", std::to_string(kLoops), traced_url, untraced_url},
        env.env,
        env.env_remove,
        dir().path(),
        true});
    ASSERT_TRUE(script.wait_for_line(Stream::kStdout, std::regex("^ready$"),
                                     deadline_in(std::chrono::seconds(20))))
        << script.describe();
    start_agent({"--no-inject", "--pid", std::to_string(script.pid()), "--pid",
                 std::to_string(traced->pid())});

    double started = wall_clock_now();
    ASSERT_TRUE(script.send_signal(SIGUSR1));
    ASSERT_TRUE(script.wait_for_line(Stream::kStdout, std::regex("^done$"),
                                     deadline_in(std::chrono::seconds(30))))
        << script.describe();
    double finished = wall_clock_now();
    for (const auto& line : script.lines(Stream::kStdout)) {
        if (line.rfind("got ", 0) == 0) {
            EXPECT_EQ(line.substr(0, 7), "got 200") << line;
        }
    }

    auto is_script = [](const json& d) { return named(d, "inventory_sync.py"); };
    EXPECT_EQ(wait_for_segments(is_script, size_t{2} * kLoops).size(), size_t(2 * kLoops))
        << agent_diagnostics();
    auto is_callee = [&](const json& d) { return url_contains(d, traced_url + "?i="); };
    EXPECT_EQ(wait_for_segments(is_callee, kLoops).size(), size_t(kLoops)) << agent_diagnostics();
    stop_and_report();

    Sent sent(collector().documents());
    EXPECT_TRUE(sent.independents.empty()) << brief(sent.independents.front());
    auto script_segments = sent.segments_where(is_script);
    ASSERT_EQ(script_segments.size(), size_t(2 * kLoops)) << "one segment per call";
    std::set<std::string> urls;
    std::set<std::string> traces;
    for (const auto& seg : script_segments) {
        EXPECT_TRUE(is_valid_segment(seg));
        EXPECT_TRUE(is_new_trace(seg, started, finished));
        EXPECT_TRUE(times_within(seg, started, finished));
        EXPECT_TRUE(json_has_key_value(field(seg, "metadata"), "pid", script.pid())) << brief(seg);
        traces.insert(str(seg, "trace_id"));
        json subs = field(seg, "subsegments");
        ASSERT_TRUE(subs.is_array() && subs.size() == 1)
            << "want exactly one subsegment: " << brief(seg);
        const json& sub = subs[0];
        const std::string url = str(sub, "http.request.url");
        urls.insert(url);
        const bool to_traced = url.rfind(traced_url + "?i=", 0) == 0;
        EXPECT_TRUE(is_call_subsegment(
            sub, CallExpect{"127.0.0.1", url, 200, to_traced ? 3u : 6u, to_traced}, seg));
        EXPECT_TRUE(to_traced || url.rfind(untraced_url + "?i=", 0) == 0) << url;
        EXPECT_EQ(num(seg, "start_time"), num(sub, "start_time")) << brief(seg);
        EXPECT_EQ(num(seg, "end_time"), num(sub, "end_time")) << brief(seg);
        if (to_traced) {
            auto callee = sent.segments_where(
                [&](const json& d) { return field(d, "http.request.url") == url; });
            ASSERT_EQ(callee.size(), 1u) << url;
            EXPECT_TRUE(is_valid_segment(callee[0]));
            EXPECT_EQ(field(callee[0], "name"), "loop-target");
            EXPECT_TRUE(is_stitched_under(callee[0], sub, str(seg, "trace_id")));
        }
    }
    EXPECT_EQ(urls.size(), size_t(2 * kLoops)) << "every call once";
    EXPECT_EQ(traces.size(), size_t(2 * kLoops)) << "each call its own trace";
}

// ---------------------------------------------------------------------------------------------
// 5. Python (ns-a) → nginx reverse proxy (ns-b) → Node (ns-c): one trace across three hosts.
class ContinuityNetnsE2E : public ContinuityE2E {
  protected:
    void SetUp() override {
        ContinuityE2E::SetUp();
        if (IsSkipped()) return;
        std::string why = netns_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        why = nginx_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
    }
};

std::string proxy_config(const std::filesystem::path& dir, const std::string& listen,
                         const std::string& upstream) {
    std::ostringstream c;
    c << nginx_config_preamble(dir) << "  server {\n"
      << "    listen " << listen << ";\n"
      << "    location / {\n"
      << "      proxy_pass http://" << upstream << ";\n"
      << "      proxy_http_version 1.1;\n"
      << "    }\n"
      << "  }\n"
      << "}\n";
    return c.str();
}

TEST_F(ContinuityNetnsE2E, ThreeServicesAcrossNamespacesOneTrace) {
    NetNs ns_a("a");
    NetNs ns_b("b");
    NetNs ns_c("c");
    VethLink ab(ns_a, "192.0.2.1/24", ns_b, "192.0.2.2/24");
    VethLink bc(ns_b, "198.51.100.1/24", ns_c, "198.51.100.2/24");
    copy_fixture("node_continuity.js");
    copy_fixture("caller_server.py");
    const auto start_deadline = [] { return deadline_in(std::chrono::seconds(20)); };
    const std::regex banner(R"(listening on port (\d+))");

    // C: Node in ns-c.
    ServerOptions c_env = server_env({{"AWS_XRAY_TRACING_NAME", "svc-c"}});
    ChildProcess c(
        ChildOptions{ns_c.wrap({node_path(), "node_continuity.js", "callee", "198.51.100.2"}),
                     c_env.env, c_env.env_remove, dir().path(), true});
    auto c_line = c.wait_for_line(Stream::kStdout, banner, start_deadline());
    ASSERT_TRUE(c_line) << c.describe();
    const std::string c_authority = "198.51.100.2:" + c_line->groups[1];

    // B: nginx in ns-b, proxying to C. A fresh namespace has every port free.
    const std::string b_authority = "192.0.2.2:8080";
    const std::filesystem::path nginx_dir = dir().path() / "nginx";
    const auto nginx =
        start_nginx_in(ns_b, nginx_dir, proxy_config(nginx_dir, b_authority, c_authority));

    // A: Python in ns-a, calling B.
    ServerOptions a_env =
        server_env({{"AWS_XRAY_TRACING_NAME", "svc-a"}, {"PYTHONUNBUFFERED", "1"}});
    ChildProcess a(ChildOptions{
        ns_a.wrap({python3_path(), "caller_server.py", "192.0.2.2", "8080", "192.0.2.1"}),
        a_env.env, a_env.env_remove, dir().path(), true});
    auto a_line = a.wait_for_line(Stream::kStdout, banner, start_deadline());
    ASSERT_TRUE(a_line) << a.describe();
    const std::string a_authority = "192.0.2.1:" + a_line->groups[1];

    auto curl = [&](const std::string& url, const std::vector<std::string>& headers) {
        std::vector<std::string> argv = {"curl", "-sS", "--noproxy", "*",  "--max-time",
                                         "15",   "-o",  "/dev/null", "-w", "%{http_code}"};
        for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
        argv.push_back(url);
        return ns_a.run(argv, deadline_in(std::chrono::seconds(20)));
    };
    // The whole chain answers before the agent starts (nginx and its worker are up).
    bool chain_up = wait_until(
        [&] {
            return nginx->running() &&
                   curl("http://" + b_authority + "/ok/warmup", {}).out == "200";
        },
        start_deadline(), std::chrono::milliseconds(100));
    ASSERT_TRUE(chain_up) << nginx->describe() << "\n" << dir().read_file("nginx/error.log");
    ASSERT_FALSE(child_pids(nginx->pid()).empty());

    start_agent({"--no-inject", "--pid", std::to_string(a.pid()), "--pid",
                 std::to_string(nginx->pid()), "--pid", std::to_string(c.pid())});

    const std::string tag = unique_tag();
    struct Case {
        std::string rest;  // path at B and C
        int c_status;
        uint64_t c_length;
        int a_status;
    };
    for (const Case& k : {Case{"/ok/" + tag, 200, 3, 200}, Case{"/missing/" + tag, 404, 10, 502}}) {
        SCOPED_TRACE(k.rest);
        const std::string a_url = "http://" + a_authority + "/call" + k.rest;
        const std::string b_url = "http://" + b_authority + k.rest;
        const std::string c_url = "http://" + c_authority + k.rest;
        double started = wall_clock_now();
        CommandResult r = curl(a_url, {"X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader)});
        double finished = wall_clock_now();
        ASSERT_TRUE(r.status.success()) << r.status.describe() << r.err;
        ASSERT_EQ(r.out, std::to_string(k.a_status));

        auto by_url = [&](const std::string& url) {
            return collector().wait_for(
                [&](const json& d) { return field(d, "http.request.url") == url; },
                deadline_in(kDocumentTimeout));
        };
        auto a_doc = by_url(a_url);
        auto b_doc = by_url(b_url);
        auto c_doc = by_url(c_url);
        ASSERT_TRUE(a_doc && b_doc && c_doc)
            << "A " << bool(a_doc) << " B " << bool(b_doc) << " C " << bool(c_doc) << "\n"
            << agent_diagnostics();

        // A: continues the client's trace, one call to B.
        EXPECT_TRUE(is_valid_segment(*a_doc));
        EXPECT_EQ(field(*a_doc, "name"), "svc-a");
        EXPECT_TRUE(continues_trace(*a_doc, kIncomingRoot, kIncomingParent));
        EXPECT_TRUE(has_http(*a_doc, "GET", a_url, k.a_status));
        EXPECT_TRUE(has_status_flags(*a_doc, k.a_status));
        EXPECT_TRUE(times_within(*a_doc, started, finished));
        json a_subs = field(*a_doc, "subsegments");
        ASSERT_TRUE(a_subs.is_array() && a_subs.size() == 1) << brief(*a_doc);
        EXPECT_TRUE(is_call_subsegment(
            a_subs[0], CallExpect{"192.0.2.2", b_url, k.c_status, k.c_length, true}, *a_doc));

        // B (nginx worker): under A's call, one call to C.
        EXPECT_TRUE(is_valid_segment(*b_doc));
        EXPECT_EQ(field(*b_doc, "name"), "nginx");
        EXPECT_EQ(field(*b_doc, "http.request.client_ip"), "192.0.2.1") << brief(*b_doc);
        EXPECT_TRUE(has_http(*b_doc, "GET", b_url, k.c_status, k.c_length));
        EXPECT_TRUE(has_status_flags(*b_doc, k.c_status));
        EXPECT_TRUE(is_stitched_under(*b_doc, a_subs[0], std::string(kIncomingRoot)));
        json b_subs = field(*b_doc, "subsegments");
        ASSERT_TRUE(b_subs.is_array() && b_subs.size() == 1) << brief(*b_doc);
        EXPECT_TRUE(is_call_subsegment(
            b_subs[0], CallExpect{"198.51.100.2", c_url, k.c_status, k.c_length, true}, *b_doc));

        // C: under nginx's call.
        EXPECT_TRUE(is_valid_segment(*c_doc));
        EXPECT_EQ(field(*c_doc, "name"), "svc-c");
        EXPECT_EQ(field(*c_doc, "http.request.client_ip"), "198.51.100.1") << brief(*c_doc);
        EXPECT_TRUE(has_http(*c_doc, "GET", c_url, k.c_status, k.c_length));
        EXPECT_TRUE(has_status_flags(*c_doc, k.c_status));
        EXPECT_TRUE(is_stitched_under(*c_doc, b_subs[0], std::string(kIncomingRoot)));
        EXPECT_FALSE(c_doc->contains("subsegments"));
    }
    stop_and_report();
    Sent sent(collector().documents());
    EXPECT_TRUE(sent.independents.empty()) << brief(sent.independents.front());
    EXPECT_EQ(sent.segments.size(), 6u) << "three segments per request, nothing else";
}

// ---------------------------------------------------------------------------------------------
// 6. A callee request that carries its own X-Amzn-Trace-Id keeps it: no stitching.
TEST_F(ContinuityE2E, CalleeWithOwnTraceHeaderKeepsIt) {
    auto b = start_node_callee("hdr-b");
    auto a = start_python_caller("hdr-a", *b);
    // A writes its own X-Amzn-Trace-Id, which marks it as having its own tracer: --sdk-segments
    // keep, so its segment (whose call this test checks) is still sent.
    start_agent({"--no-inject", "--sdk-segments", "keep", "--pid", std::to_string(a->pid()),
                 "--pid", std::to_string(b->pid())});

    const std::string rest = "/trace-header/" + unique_tag();
    HttpResponse response = http_get(a->url("/with-header" + rest));
    ASSERT_EQ(response.status, 200) << response.curl_stderr;
    ASSERT_EQ(response.body, "Root=" + std::string(kFixedRoot) +
                                 ";Parent=" + std::string(kFixedParent) + ";Sampled=1\n")
        << "the callee did not receive the header A set";

    auto a_doc = collector().wait_for(
        [&](const json& d) {
            return field(d, "http.request.url") == a->url("/with-header" + rest);
        },
        deadline_in(kDocumentTimeout));
    auto b_doc = collector().wait_for(
        [&](const json& d) { return field(d, "http.request.url") == b->url(rest); },
        deadline_in(kDocumentTimeout));
    ASSERT_TRUE(a_doc && b_doc) << agent_diagnostics();

    EXPECT_TRUE(is_valid_segment(*a_doc));
    EXPECT_TRUE(is_new_trace(*a_doc, response.started_at, response.finished_at));
    json subs = field(*a_doc, "subsegments");
    ASSERT_TRUE(subs.is_array() && subs.size() == 1) << brief(*a_doc);
    // The callee's segment is not a child of this call (it lives in the header's trace).
    EXPECT_TRUE(is_call_subsegment(
        subs[0], CallExpect{"127.0.0.1", b->url(rest), 200, response.body.size(), /*traced=*/false},
        *a_doc));

    EXPECT_TRUE(is_valid_segment(*b_doc));
    EXPECT_EQ(field(*b_doc, "name"), "hdr-b");
    EXPECT_TRUE(continues_trace(*b_doc, kFixedRoot, kFixedParent));
    EXPECT_NE(field(*b_doc, "trace_id"), field(*a_doc, "trace_id"));
    EXPECT_NE(field(*b_doc, "parent_id"), field(subs[0], "id"));

    AgentExit exit = stop_and_report();
    EXPECT_EQ(exit.counter("correlate.stitched_same_node"), 0u);
}

}  // namespace
}  // namespace passport::testing::e2e
