// Four unmodified services on four "hosts": A (Python) → B (Node) → C (nginx as a reverse proxy)
// → D (Python), each in its own network namespace, joined by veth pairs (addresses inside the
// namespaces this test creates). Passport traces all four (one agent on this node).
//
// What must hold, and what it needs:
//   - documents: one trace id across all four, each segment's parent_id exactly the caller's
//     subsegment id. Both same-node stitching and the injected header carry it, and they name
//     the same ids.
//   - the wire: the X-Amzn-Trace-Id each hop really received (hop.py/hop.js report it in their
//     bodies; nginx logs it) names the caller's subsegment, which only header injection can do.
//   - `--no-inject`: no header on the wire past A, and stitching still links everything.
//
// Fixtures: hop.py, hop.js (report the header they received, call the next hop), nginx with a
// generated proxy config that logs the header it received.
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/support/netns.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using ::testing::AssertionFailure;
using ::testing::AssertionResult;
using ::testing::AssertionSuccess;

// One hop's view of a request: its segment and (except for the leaf) its one call subsegment.
struct Hop {
    std::string name;       // segment name
    std::string authority;  // host:port it listens on
    std::string client_ip;  // the address its caller connects from
};

// The call subsegment `sub` of `parent` for GET http://<to.authority><target>.
AssertionResult is_call(const json& sub, const Hop& to, const std::string& target, int status,
                        uint64_t length, const json& parent) {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  subsegment: " << brief(sub)
                                  << "\n  in: " << brief(parent).substr(0, 600);
    };
    const std::string host = to.authority.substr(0, to.authority.find(':'));
    if (!is_segment_id(str(sub, "id"))) return fail("id is not 16 hex digits");
    if (str(sub, "name") != host) return fail("name is not " + host);
    if (str(sub, "namespace") != "remote") return fail("namespace is not remote");
    if (auto r = has_http(sub, "GET", "http://" + to.authority + target, status, length); !r) {
        return fail(r.message());
    }
    if (auto r = has_status_flags(sub, status); !r) return fail(r.message());
    if (field(sub, "http.request.traced") != true) return fail("http.request.traced is not true");
    if (num(sub, "start_time") < num(parent, "start_time") ||
        num(sub, "end_time") > num(parent, "end_time")) {
        return fail("times not inside the parent's");
    }
    return AssertionSuccess();
}

// `callee` continues `trace_id` with the call `call` as parent, inside the call's times.
AssertionResult is_child_of(const json& callee, const json& call, std::string_view trace_id) {
    auto fail = [&](const std::string& what) {
        return AssertionFailure() << what << "\n  segment: " << brief(callee)
                                  << "\n  caller's subsegment: " << brief(call);
    };
    if (str(callee, "trace_id") != trace_id) {
        return fail("trace_id is not the caller's " + std::string(trace_id));
    }
    if (str(callee, "parent_id") != str(call, "id")) {
        return fail("parent_id is \"" + str(callee, "parent_id") +
                    "\", want the caller's subsegment id " + str(call, "id"));
    }
    if (num(callee, "start_time") < num(call, "start_time")) {
        return fail("starts before the call was written");
    }
    if (num(callee, "end_time") > num(call, "end_time") + kCrossProcessSlack) {
        return fail("ends after the call");
    }
    return AssertionSuccess();
}

std::string proxy_config(const std::filesystem::path& dir, const std::string& listen,
                         const std::string& upstream) {
    std::ostringstream c;
    c << nginx_config_preamble(dir)
      << "  log_format trace_header '$request_uri $http_x_amzn_trace_id';\n"
      << "  server {\n"
      << "    listen " << listen << ";\n"
      << "    access_log " << (dir / "trace-header.log").string() << " trace_header;\n"
      << "    location / {\n"
      << "      proxy_pass http://" << upstream << ";\n"
      << "      proxy_http_version 1.1;\n"
      << "    }\n"
      << "  }\n"
      << "}\n";
    return c.str();
}

// What one request through the chain produced.
struct ChainRun {
    std::string target;
    int status_a = 0;  // what A answered the client
    std::string body;  // A's body: one "NAME HEADER" line per Python/Node hop (A, B, D)
    std::map<std::string, std::string> received;  // hop name → X-Amzn-Trace-Id it received
    json a, b, c, d;                              // the four segments
};

class ContinuityChainE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        std::string why = netns_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        why = nginx_unavailable_reason();
        if (!why.empty()) GTEST_SKIP() << why;
        if (find_executable("node").empty()) GTEST_SKIP() << "node is not installed";
        for (const char* name : {"hop.py", "hop.js"}) {
            std::filesystem::copy_file(fixture(name), dir().path() / name,
                                       std::filesystem::copy_options::overwrite_existing);
        }
    }

    // Builds the four namespaces and services, starts the agent with `agent_args` on all four,
    // sends one request per target from ns-a with kIncomingTraceHeader, and checks every document
    // field (the document-level assertions, which hold with or without injection).
    std::vector<ChainRun> run_chain(const std::vector<std::string>& targets,
                                    const std::vector<std::string>& agent_args);
};

std::vector<ChainRun> ContinuityChainE2E::run_chain(const std::vector<std::string>& targets,
                                                    const std::vector<std::string>& agent_args) {
    std::vector<ChainRun> runs;
    NetNs ns_a("a");
    NetNs ns_b("b");
    NetNs ns_c("c");
    NetNs ns_d("d");
    VethLink ab(ns_a, "192.0.2.1/24", ns_b, "192.0.2.2/24");
    VethLink bc(ns_b, "198.51.100.1/24", ns_c, "198.51.100.2/24");
    VethLink cd(ns_c, "203.0.113.1/24", ns_d, "203.0.113.2/24");
    const auto start_deadline = [] { return deadline_in(std::chrono::seconds(20)); };
    const std::regex banner(R"(listening on port (\d+))");
    auto start = [&](const NetNs& ns, const std::vector<std::string>& argv, const std::string& name,
                     const std::string& bind) -> std::pair<std::unique_ptr<ChildProcess>, Hop> {
        ServerOptions env =
            server_env({{"AWS_XRAY_TRACING_NAME", name}, {"PYTHONUNBUFFERED", "1"}});
        auto child = std::make_unique<ChildProcess>(
            ChildOptions{ns.wrap(argv), env.env, env.env_remove, dir().path(), true});
        auto line = child->wait_for_line(Stream::kStdout, banner, start_deadline());
        if (!line) throw std::runtime_error(name + " did not start: " + child->describe());
        return {std::move(child), Hop{name, bind + ":" + line->groups[1], ""}};
    };

    // D: Python leaf in ns-d.
    auto [d, hop_d] =
        start(ns_d, {python3_path(), "hop.py", "svc-d", "203.0.113.2"}, "svc-d", "203.0.113.2");
    hop_d.client_ip = "203.0.113.1";
    // C: nginx in ns-c, proxying to D (a fresh namespace has every port free).
    Hop hop_c{"nginx", "198.51.100.2:8080", "198.51.100.1"};
    const std::filesystem::path nginx_dir = dir().path() / "nginx";
    const auto nginx =
        start_nginx_in(ns_c, nginx_dir, proxy_config(nginx_dir, hop_c.authority, hop_d.authority));
    // B: Node in ns-b, calling C.
    auto [b, hop_b] =
        start(ns_b, {node_path(), "hop.js", "svc-b", "192.0.2.2", "198.51.100.2", "8080"}, "svc-b",
              "192.0.2.2");
    hop_b.client_ip = "192.0.2.1";
    // A: Python in ns-a, calling B.
    const std::string b_port = hop_b.authority.substr(hop_b.authority.find(':') + 1);
    auto [a, hop_a] =
        start(ns_a, {python3_path(), "hop.py", "svc-a", "192.0.2.1", "192.0.2.2", b_port}, "svc-a",
              "192.0.2.1");
    hop_a.client_ip = "192.0.2.1";

    auto curl = [&](const std::string& url, const std::vector<std::string>& headers) {
        std::vector<std::string> argv = {"curl",       "-sS", "--noproxy", "*",
                                         "--max-time", "15",  "-w",        "\n%{http_code}"};
        for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
        argv.push_back(url);
        return ns_a.run(argv, deadline_in(std::chrono::seconds(20)));
    };
    // The whole chain answers before the agent starts (nginx and its worker are up).
    bool chain_up = wait_until(
        [&, &hop_a = hop_a] {
            CommandResult r = curl("http://" + hop_a.authority + "/ok/warmup", {});
            return nginx->running() && r.out.size() >= 3 && r.out.substr(r.out.size() - 3) == "200";
        },
        start_deadline(), std::chrono::milliseconds(100));
    if (!chain_up) {
        ADD_FAILURE() << "chain not up\n"
                      << nginx->describe() << "\n"
                      << dir().read_file("nginx/error.log");
        return runs;
    }
    if (child_pids(nginx->pid()).empty()) {
        ADD_FAILURE() << "nginx has no worker";
        return runs;
    }

    std::vector<std::string> args = {
        "--pid", std::to_string(a->pid()),     "--pid", std::to_string(b->pid()),
        "--pid", std::to_string(nginx->pid()), "--pid", std::to_string(d->pid())};
    args.insert(args.end(), agent_args.begin(), agent_args.end());
    start_agent(args);

    for (const std::string& target : targets) {
        SCOPED_TRACE(target);
        ChainRun run;
        run.target = target;
        const bool missing = target.rfind("/missing/", 0) == 0;
        const int d_status = missing ? 404 : 200;  // nginx relays D's status
        const int b_status = missing ? 502 : 200;  // hop.js: 502 when the downstream said >= 400
        const int a_status = b_status == 200 ? 200 : 502;

        double started = wall_clock_now();
        CommandResult r = curl("http://" + hop_a.authority + target,
                               {"X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader)});
        double finished = wall_clock_now();
        if (!r.status.success()) {
            ADD_FAILURE() << "curl: " << r.status.describe() << r.err;
            return runs;
        }
        auto nl = r.out.rfind('\n');
        run.body = r.out.substr(0, nl);  // -w adds "\n<code>" after the body
        run.status_a = std::atoi(r.out.c_str() + nl + 1);
        EXPECT_EQ(run.status_a, a_status) << r.out;

        // What each hop received: A, B and D say it in the body, nginx in its log.
        std::istringstream lines(run.body);
        std::string line;
        while (std::getline(lines, line)) {
            auto space = line.find(' ');
            if (space != std::string::npos)
                run.received[line.substr(0, space)] = line.substr(space + 1);
        }
        std::string nginx_line;
        wait_until(
            [&] {
                std::ifstream log(nginx_dir / "trace-header.log");
                for (std::string l; std::getline(log, l);) {
                    if (l.rfind(target + " ", 0) == 0) nginx_line = l.substr(target.size() + 1);
                }
                return !nginx_line.empty();
            },
            deadline_in(kDocumentTimeout), std::chrono::milliseconds(20));
        run.received["nginx"] = nginx_line == "-" ? "none" : nginx_line;
        EXPECT_EQ(run.received.size(), 4u) << run.body;
        EXPECT_EQ(run.received["svc-a"], kIncomingTraceHeader);

        auto by_url = [&](const Hop& hop) {
            return collector().wait_for(
                [&](const json& doc) {
                    return field(doc, "http.request.url") == "http://" + hop.authority + target;
                },
                deadline_in(kDocumentTimeout));
        };
        auto a_doc = by_url(hop_a);
        auto b_doc = by_url(hop_b);
        auto c_doc = by_url(hop_c);
        auto d_doc = by_url(hop_d);
        if (!(a_doc && b_doc && c_doc && d_doc)) {
            ADD_FAILURE() << "A " << bool(a_doc) << " B " << bool(b_doc) << " C " << bool(c_doc)
                          << " D " << bool(d_doc) << "\n"
                          << agent_diagnostics();
            return runs;
        }
        run.a = *a_doc;
        run.b = *b_doc;
        run.c = *c_doc;
        run.d = *d_doc;

        // Body lengths: each hop prefixes its line to its downstream's body.
        const uint64_t d_len = ("svc-d " + run.received["svc-d"] + "\n").size();
        const uint64_t b_len = ("svc-b " + run.received["svc-b"] + "\n").size() + d_len;
        const uint64_t a_len = run.body.size();

        struct Level {
            const json& doc;
            const Hop& hop;
            int status;
            uint64_t length;
            const Hop* next;
            int next_status;
            uint64_t next_length;
        };
        const Level levels[] = {
            {run.a, hop_a, a_status, a_len, &hop_b, b_status, b_len},
            {run.b, hop_b, b_status, b_len, &hop_c, d_status, d_len},
            {run.c, hop_c, d_status, d_len, &hop_d, d_status, d_len},
            {run.d, hop_d, d_status, d_len, nullptr, 0, 0},
        };
        const json* caller_call = nullptr;
        for (const Level& l : levels) {
            SCOPED_TRACE(l.hop.name);
            EXPECT_TRUE(is_valid_segment(l.doc));
            EXPECT_EQ(field(l.doc, "name"), l.hop.name) << brief(l.doc);
            EXPECT_TRUE(
                has_http(l.doc, "GET", "http://" + l.hop.authority + target, l.status, l.length));
            EXPECT_TRUE(has_status_flags(l.doc, l.status));
            EXPECT_EQ(field(l.doc, "http.request.client_ip"), l.hop.client_ip) << brief(l.doc);
            EXPECT_TRUE(times_within(l.doc, started, finished));
            if (caller_call == nullptr) {
                EXPECT_TRUE(continues_trace(l.doc, kIncomingRoot, kIncomingParent));
            } else {
                EXPECT_TRUE(is_child_of(l.doc, *caller_call, kIncomingRoot));
            }
            json subs = field(l.doc, "subsegments");
            if (l.next == nullptr) {
                EXPECT_FALSE(l.doc.contains("subsegments")) << brief(l.doc);
                break;
            }
            if (!subs.is_array() || subs.size() != 1) {
                ADD_FAILURE() << "want exactly one call subsegment: " << brief(l.doc);
                break;
            }
            EXPECT_TRUE(is_call(subs[0], *l.next, target, l.next_status, l.next_length, l.doc));
            caller_call = &l.doc["subsegments"][0];
        }
        runs.push_back(std::move(run));
    }
    AgentExit exit = stop_agent_and_sync();
    std::cout << "[ agent    ] exit counters: " << exit.counters_text() << std::endl;
    size_t passport_docs = collector().documents().size();
    // Four segments per request, nothing else (no late subsegments, no stray segments).
    EXPECT_EQ(passport_docs, 4 * targets.size());
    return runs;
}

const json& call_of(const json& segment) { return segment["subsegments"][0]; }

// ---------------------------------------------------------------------------------------------
// Documents: one trace, each parent the caller's subsegment. Same-node stitching and the injected
// header agree (the ids on the wire and in the documents are the same ones).
TEST_F(ContinuityChainE2E, PythonNodeNginxPythonAcrossNamespacesOneTrace) {
    const std::string tag = unique_tag();
    auto runs = run_chain({"/ok/" + tag + "/one", "/missing/" + tag}, {});
    EXPECT_EQ(runs.size(), 2u);
}

// The wire: every hop received a header naming its caller's subsegment (header injection; without
// it B and nginx would receive no header, "none").
//
// nginx forwards the header it received (proxy_pass passes request headers through); the kernel
// rewrites that header's Parent in place to nginx's call subsegment, so D receives the same bytes
// as nginx did except those 16 digits, which name nginx's call (as an SDK in nginx would).
TEST_F(ContinuityChainE2E, WireHeadersNameTheCallersSubsegment) {
    const std::string tag = unique_tag();
    auto runs = run_chain({"/ok/" + tag + "/one", "/missing/" + tag}, {});
    ASSERT_EQ(runs.size(), 2u);
    for (const ChainRun& r : runs) {
        SCOPED_TRACE(r.target);
        EXPECT_EQ(r.received.at("svc-a"), kIncomingTraceHeader);
        EXPECT_EQ(r.received.at("svc-b"), trace_header(kIncomingRoot, str(call_of(r.a), "id")))
            << "B (Node) did not receive A's subsegment in X-Amzn-Trace-Id (no injection?)";
        EXPECT_EQ(r.received.at("nginx"), trace_header(kIncomingRoot, str(call_of(r.b), "id")))
            << "nginx did not receive B's subsegment in X-Amzn-Trace-Id (no injection?)";
        EXPECT_EQ(r.received.at("svc-d"), trace_header(kIncomingRoot, str(call_of(r.c), "id")))
            << "D did not receive nginx's subsegment in the header nginx forwarded";
        EXPECT_EQ(r.received.at("svc-d").size(), r.received.at("nginx").size());
    }
}

// `--no-inject`: nothing is added on the wire, and stitching alone still links all four.
TEST_F(ContinuityChainE2E, NoInjectStitchingStillLinksEverything) {
    const std::string tag = unique_tag();
    auto runs = run_chain({"/ok/" + tag + "/one", "/missing/" + tag}, {"--no-inject"});
    ASSERT_EQ(runs.size(), 2u);
    for (const ChainRun& r : runs) {
        SCOPED_TRACE(r.target);
        EXPECT_EQ(r.received.at("svc-a"), kIncomingTraceHeader);
        EXPECT_EQ(r.received.at("svc-b"), "none");
        EXPECT_EQ(r.received.at("nginx"), "none");
        EXPECT_EQ(r.received.at("svc-d"), "none");
    }
}

// A traced reverse proxy that receives X-Amzn-Trace-Id forwards it unchanged (nginx's
// proxy_pass passes request headers through). With injection off nothing rewrites it on the
// wire, and the upstream's segment must still hang under the proxy's call subsegment (the
// proxy's segment is its real caller in the trace), not under the client's parent beside the
// proxy: the correlator sees that nginx's call carried exactly the header nginx's own request
// came with, so the header is not nginx's and same-node stitching wins over it. (With injection
// on, the kernel rewrites the forwarded Parent: ProxyE2E.)
TEST_F(ContinuityChainE2E, ProxyForwardingTheHeaderStillParentsUpstreamUnderItsCall) {
    NetNs ns_c("c");
    NetNs ns_d("d");
    VethLink cd(ns_c, "203.0.113.1/24", ns_d, "203.0.113.2/24");
    LeafHop leaf = start_leaf_hop(ns_d, dir().path(), "svc-d", "203.0.113.2");
    ASSERT_FALSE(leaf.authority.empty()) << leaf.child->describe();
    ChildProcess& d = *leaf.child;
    const std::string d_authority = leaf.authority;
    const std::string c_authority = "203.0.113.1:8080";
    const std::filesystem::path nginx_dir = dir().path() / "nginx";
    const auto nginx =
        start_nginx_in(ns_c, nginx_dir, proxy_config(nginx_dir, c_authority, d_authority));
    auto curl = [&](const std::string& url, const std::vector<std::string>& headers) {
        std::vector<std::string> argv = {"curl", "-sS", "--noproxy", "*",  "--max-time",
                                         "15",   "-o",  "/dev/null", "-w", "%{http_code}"};
        for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
        argv.push_back(url);
        return ns_c.run(argv, deadline_in(std::chrono::seconds(20)));
    };
    ASSERT_TRUE(wait_until(
        [&] {
            return nginx->running() &&
                   curl("http://" + c_authority + "/ok/warmup", {}).out == "200";
        },
        deadline_in(std::chrono::seconds(20)), std::chrono::milliseconds(100)))
        << nginx->describe() << "\n"
        << dir().read_file("nginx/error.log");
    start_agent(
        {"--no-inject", "--pid", std::to_string(nginx->pid()), "--pid", std::to_string(d.pid())});

    const std::string target = "/ok/" + unique_tag();
    CommandResult r = curl("http://" + c_authority + target,
                           {"X-Amzn-Trace-Id: " + std::string(kIncomingTraceHeader)});
    ASSERT_EQ(r.out, "200") << r.err;
    auto by_url = [&](const std::string& url) {
        return collector().wait_for(
            [&](const json& doc) { return field(doc, "http.request.url") == url; },
            deadline_in(kDocumentTimeout));
    };
    auto c_doc = by_url("http://" + c_authority + target);
    auto d_doc = by_url("http://" + d_authority + target);
    ASSERT_TRUE(c_doc && d_doc) << agent_diagnostics();
    EXPECT_TRUE(continues_trace(*c_doc, kIncomingRoot, kIncomingParent));
    json subs = field(*c_doc, "subsegments");
    ASSERT_TRUE(subs.is_array() && subs.size() == 1) << brief(*c_doc);
    EXPECT_TRUE(is_child_of(*d_doc, subs[0], kIncomingRoot))
        << "the upstream of a proxy that forwarded the client's header is not under the proxy's "
           "call";
    EXPECT_EQ(field(subs[0], "http.request.traced"), true) << brief(subs[0]);
    stop_agent_and_sync();
}

}  // namespace
}  // namespace passport::testing::e2e
