// A Go net/http server calling out with http.DefaultClient: every call is placed under the
// request it was made for, one request at a time and 8 at a time. Go's transport writes a pooled
// connection's request from its own goroutine, on whichever OS thread runs it; the agent's
// uprobes on net/http (bpf/probes/go_http.bpf.c, agent/go_tracer.cpp) hand the handler's request
// context to that thread (docs/context-flow.md, "Go net/http").
//
// Fixtures: go_caller/ (built here with the Go toolchain into the build tree; the test skips
// when `go` is missing), hop.py (a Python leaf that answers with the X-Amzn-Trace-Id it got),
// load_client.py (an untraced load driver).
#include <map>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

// The `id=N` a URL ends with ("…?id=N"), or -1.
long id_in_url(const std::string& url) {
    auto pos = url.rfind("id=");
    if (pos == std::string::npos) return -1;
    const std::string digits = url.substr(pos + 3);
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
    return std::stol(digits);
}

bool is_subsegment_doc(const json& d) { return field(d, "type") == "subsegment"; }

// How the calls of one run were placed.
struct Placement {
    size_t total = 0;
    size_t own = 0;       // under the request that made it
    size_t inferred = 0;  // marked metadata.passport.link.inferred
    size_t other = 0;     // under another request (another trace: each request is its own)
    size_t other_unmarked = 0;
    size_t leaf_wrong_trace = 0;  // the leaf's segment is not in its caller's request's trace

    std::string line(const std::string& what) const {
        std::ostringstream s;
        s << what << ": " << own << "/" << total << " calls under their own request, " << other
          << " under another (" << other_unmarked << " unmarked), " << inferred
          << " marked inferred, " << leaf_wrong_trace << " leaf segments in another trace";
        return s.str();
    }
};

class GoHttpE2E : public E2eTest {
  protected:
    // Builds tests/e2e/fixtures/go_caller into the build tree; "" when it cannot.
    std::string build_go_caller(std::string& why) {
        const std::string go = find_executable("go");
        if (go.empty()) {
            why = "the Go toolchain (`go`, Debian package golang-go) is not installed";
            return "";
        }
        const auto out_dir = std::filesystem::path(PASSPORT_BINARY_DIR) / "go-fixtures";
        std::filesystem::create_directories(out_dir);
        const std::string binary = (out_dir / "go_caller").string();
        CommandResult r = run_command(ChildOptions{{go, "build", "-o", binary, "."},
                                                   {{"GOCACHE", (out_dir / "cache").string()},
                                                    {"GOPATH", (out_dir / "gopath").string()},
                                                    {"GOFLAGS", "-mod=mod"},
                                                    {"CGO_ENABLED", "0"}},
                                                   {},
                                                   fixture("go_caller"),
                                                   true},
                                      deadline_in(std::chrono::seconds(240)));
        if (!r.status.success() || r.timed_out) {
            ADD_FAILURE() << "go build failed: " << r.status.describe() << "\n" << tail(r.err);
            return "";
        }
        return binary;
    }

    // Runs load_client.py against 127.0.0.1:port; every request must succeed.
    void drive(uint16_t port, int count, int concurrency, int first_id) {
        std::filesystem::copy_file(fixture("load_client.py"), dir().path() / "load_client.py",
                                   std::filesystem::copy_options::overwrite_existing);
        CommandResult run =
            run_command(ChildOptions{{python3_path(), "load_client.py", "127.0.0.1",
                                      std::to_string(port), std::to_string(count),
                                      std::to_string(concurrency), std::to_string(first_id)},
                                     {},
                                     {},
                                     dir().path(),
                                     true},
                        deadline_in(std::chrono::seconds(120)));
        ASSERT_TRUE(run.status.success() && !run.timed_out) << tail(run.err);
        EXPECT_NE(run.out.find("failed=0"), std::string::npos) << tail(run.out);
    }

    std::vector<json> wait_for_segments(const std::string& name, size_t n) {
        return collector().wait_for_count(
            [&](const json& d) { return !is_subsegment_doc(d) && field(d, "name") == name; }, n,
            deadline_in(std::chrono::seconds(60)));
    }
    // Runs `sequential` requests one at a time, then `concurrent` 8 at a time, through the load
    // client, the Go server and the leaf, and checks where every Go call was placed. Without
    // injection the load client is traced too (--exe), so that each Go segment must be stitched
    // under the load client's call by the connection tuple, whose Go side is IPv4-mapped IPv6.
    void run(bool inject, int sequential, int concurrent) {
        constexpr int kSequentialFirstId = 100000;
        std::string why;
        const std::string go_caller = build_go_caller(why);
        if (!why.empty()) GTEST_SKIP() << why;
        ASSERT_FALSE(go_caller.empty());

        std::filesystem::copy_file(fixture("hop.py"), dir().path() / "hop.py",
                                   std::filesystem::copy_options::overwrite_existing);
        auto leaf = start_script_server(
            {python3_path(), "hop.py", "go-leaf", "127.0.0.1"}, dir().path(),
            server_env({{"AWS_XRAY_TRACING_NAME", "go-leaf"}, {"PYTHONUNBUFFERED", "1"}}));
        auto svc =
            start_script_server({go_caller, "127.0.0.1", std::to_string(leaf->port())},
                                dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", "go-svc"}}));
        std::vector<std::string> args = {"--pid", std::to_string(svc->pid()), "--verbose"};
        if (inject) {
            args.insert(args.end(), {"--pid", std::to_string(leaf->pid())});
        } else {
            args.insert(args.end(), {"--no-inject", "--exe", "python3*"});
        }
        auto& agent = start_agent(args);
        EXPECT_NE(agent.stderr_text().find("[yes] Go net/http client handoff"), std::string::npos)
            << tail(agent.stderr_text());
        EXPECT_NE(agent.stderr_text().find("go: attached pid " + std::to_string(svc->pid())),
                  std::string::npos)
            << tail(agent.stderr_text());

        drive(svc->port(), sequential, 1, kSequentialFirstId);
        ASSERT_EQ(wait_for_segments("go-svc", sequential).size(), size_t(sequential))
            << agent_diagnostics();
        drive(svc->port(), concurrent, 8, 0);
        const size_t total = sequential + concurrent;
        EXPECT_EQ(wait_for_segments("go-svc", total).size(), total) << agent_diagnostics();
        EXPECT_EQ(wait_for_segments("go-leaf", total).size(), total) << agent_diagnostics();
        AgentExit exit = stop_agent_and_sync();
        std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;

        const std::vector<json> docs = collector().documents();
        // Every call subsegment anywhere (embedded or independent): id → (request id in its
        // URL, trace of the document that holds it).
        std::map<std::string, std::pair<long, std::string>> subs;
        for (const auto& d : docs) {
            if (is_subsegment_doc(d)) {
                subs[str(d, "id")] = {id_in_url(str(d, "http.request.url")), str(d, "trace_id")};
            } else if (auto it = d.find("subsegments"); it != d.end() && it->is_array()) {
                for (const auto& sub : *it)
                    subs[str(sub, "id")] = {id_in_url(str(sub, "http.request.url")),
                                            str(d, "trace_id")};
            }
        }
        // Go segments by request id, their trace, and every call subsegment (embedded or late).
        std::map<std::string, long> request_of_segment;  // segment id → request id
        std::map<long, std::string> trace_of_request;
        std::vector<std::pair<json, long>> calls;  // (subsegment, id of the request it is under)
        size_t unstitched = 0;  // without injection: not under the load client's call for it
        for (const auto& d : docs) {
            if (is_subsegment_doc(d) || field(d, "name") != "go-svc") continue;
            const long n = id_in_url(str(d, "http.request.url"));
            request_of_segment[str(d, "id")] = n;
            trace_of_request[n] = str(d, "trace_id");
            if (auto it = d.find("subsegments"); it != d.end() && it->is_array())
                for (const auto& sub : *it) calls.emplace_back(sub, n);
            auto caller = subs.find(str(d, "parent_id"));
            if (!inject && (caller == subs.end() || caller->second.first != n ||
                            caller->second.second != str(d, "trace_id")))
                ++unstitched;
        }
        for (const auto& d : docs) {
            auto p = request_of_segment.find(str(d, "parent_id"));
            if (is_subsegment_doc(d) && p != request_of_segment.end())
                calls.emplace_back(d, p->second);
        }
        std::map<std::string, std::string> leaf_trace_by_parent;  // leaf's parent → its trace
        for (const auto& d : docs) {
            if (!is_subsegment_doc(d) && field(d, "name") == "go-leaf")
                leaf_trace_by_parent[str(d, "parent_id")] = str(d, "trace_id");
        }

        Placement seq, conc;
        for (const auto& [sub, under] : calls) {
            const long n = id_in_url(str(sub, "http.request.url"));
            Placement& p = n >= kSequentialFirstId ? seq : conc;
            ++p.total;
            const bool inferred = field(sub, "metadata.passport.link.inferred") == true;
            p.inferred += inferred ? 1 : 0;
            if (n == under) {
                ++p.own;
            } else {
                ++p.other;
                if (!inferred) ++p.other_unmarked;
            }
            auto leaf_trace = leaf_trace_by_parent.find(str(sub, "id"));
            if (leaf_trace == leaf_trace_by_parent.end() ||
                leaf_trace->second != trace_of_request[n])
                ++p.leaf_wrong_trace;
        }
        const std::string mode = inject ? "" : " (--no-inject)";
        std::cout << seq.line("go net/http, 1 at a time" + mode) << std::endl;
        std::cout << conc.line("go net/http, 8 at a time" + mode) << std::endl;
        EXPECT_EQ(seq.total, size_t(sequential));
        EXPECT_EQ(conc.total, size_t(concurrent));
        EXPECT_EQ(seq.own, seq.total) << "one at a time, every call is under its own request";
        EXPECT_EQ(seq.other + conc.other, 0U) << "no call under another request's trace";
        EXPECT_EQ(seq.leaf_wrong_trace + conc.leaf_wrong_trace, 0U)
            << "the leaf is in the trace of the request that made the call";
        EXPECT_EQ(conc.other_unmarked, 0U) << "a call placed by a guess says so";
        EXPECT_EQ(unstitched, 0U) << "Go segments not under the load client's call for them";
        EXPECT_EQ(exit.counter("correlate.links_go_handoff"), total) << exit.counters_text();
    }
};

TEST_F(GoHttpE2E, DefaultClientCallsAreUnderTheirOwnRequest) { run(true, 40, 120); }

// Without injection the calls are placed by userspace alone (the handoff events), and the Go
// server's IPv4-mapped side of each connection is stitched to its IPv4 caller.
TEST_F(GoHttpE2E, WithoutInjectionCallsAndDualStackServerAreStitched) { run(false, 20, 48); }

}  // namespace
}  // namespace passport::testing::e2e
