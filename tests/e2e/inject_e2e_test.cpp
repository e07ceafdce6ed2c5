// X-Amzn-Trace-Id injection (sock_ops + sk_msg) with real clients against a verifying server
// that records every byte it receives (fixtures/inject_server.py):
//  - what arrives is what was sent plus exactly one injected line per request, right after the
//    request line, with ids equal to the kernel's PP_EV_INJECT reports (agent --record);
//  - requests that carry their own X-Amzn-Trace-Id, unselected processes, denied ports,
//    --no-inject and a non-HTTP protocol (Redis) pass byte-identical;
//  - stream integrity over thousands of randomized requests;
//  - an unmodified traced Python service calling an untraced one: the callee receives the
//    header whose Parent is the caller's subsegment id in the X-Ray documents.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <utility>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The exact line Passport inserts.
const std::regex kInjectedLine(
    "X-Amzn-Trace-Id: Root=(1-[0-9a-f]{8}-[0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=([01?])\r\n");

// The ids of a received X-Amzn-Trace-Id value (inject_server.py's "trace" entries) when it is
// exactly the line Passport inserts; nullopt for any other value.
struct WireIds {
    std::string trace, parent, sampled;
};
std::optional<WireIds> wire_ids(const nlohmann::json& value) {
    std::string line = "X-Amzn-Trace-Id: " + value.get<std::string>() + "\r\n";
    std::smatch m;
    if (!std::regex_match(line, m, kInjectedLine)) return std::nullopt;
    return WireIds{m[1].str(), m[2].str(), m[3].str()};
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string hex16(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

// The verifying server.
class InjectServer {
  public:
    explicit InjectServer(std::filesystem::path dump_dir, uint16_t port = 0)
        : dump_(std::move(dump_dir)) {
        std::filesystem::create_directories(dump_);
        ChildOptions o;
        o.argv = {"python3", fixture("inject_server.py").string(), dump_.string(),
                  std::to_string(port)};
        proc_ = std::make_unique<ChildProcess>(o);
        auto m =
            proc_->wait_for_line(Stream::kStdout, std::regex("listening (\\d+)"), deadline_in(20s));
        if (!m) throw std::runtime_error("inject_server did not start: " + proc_->describe());
        port_ = static_cast<uint16_t>(std::stoi(m->groups[1]));
    }
    uint16_t port() const { return port_; }
    std::vector<json> requests() const {
        std::vector<json> out;
        for (const auto& l : proc_->lines(Stream::kStdout))
            if (!l.empty() && l[0] == '{') out.push_back(json::parse(l));
        return out;
    }
    // Waits until the server logged `n` requests whose target contains `part`.
    std::vector<json> wait_requests(const std::string& part, size_t n) {
        std::vector<json> got;
        wait_until(
            [&] {
                got.clear();
                for (auto& r : requests())
                    if (r["target"].get<std::string>().find(part) != std::string::npos)
                        got.push_back(r);
                return got.size() >= n;
            },
            deadline_in(30s));
        return got;
    }
    std::string received(int conn) const {
        return read_file(dump_ / ("conn-" + std::to_string(conn) + ".bin"));
    }
    ChildProcess& proc() { return *proc_; }

  private:
    std::filesystem::path dump_;
    std::unique_ptr<ChildProcess> proc_;
    uint16_t port_ = 0;
};

struct InjectEvent {
    uint32_t tgid = 0;
    int outcome = 0;
    uint64_t app_pos = 0;
    std::string parent;    // hex subsegment id
    std::string trace_id;  // "1-…"
};

std::vector<InjectEvent> inject_events(const std::filesystem::path& record) {
    std::vector<InjectEvent> out;
    std::ifstream in(record);
    std::string line;
    while (std::getline(in, line)) {
        if (line.find("\"inject\"") == std::string::npos) continue;
        json j = json::parse(line);
        if (j["type"] != "inject") continue;
        out.push_back({j["tgid"].get<uint32_t>(), j["outcome"].get<int>(),
                       j["app_pos"].get<uint64_t>(), hex16(j["subsegment_id"].get<uint64_t>()),
                       j["trace_id"].get<std::string>()});
    }
    return out;
}

// `got` with every injected line whose Parent is in `ids` removed; counts them.
std::string strip_injected(const std::string& got, const std::set<std::string>& ids,
                           size_t& removed) {
    std::string out;
    removed = 0;
    auto begin = got.cbegin();
    std::smatch m;
    while (std::regex_search(begin, got.cend(), m, kInjectedLine)) {
        out.append(begin, m[0].first);
        if (ids.count(m[2].str())) {
            removed++;
        } else {
            out.append(m[0].first, m[0].second);
        }
        begin = m[0].second;
    }
    out.append(begin, got.cend());
    return out;
}

// A client that waits for `go` to exist before it connects, so the agent can select it first.
std::unique_ptr<ChildProcess> gated(std::vector<std::string> argv) {
    ChildOptions o;
    o.argv = std::move(argv);
    return std::make_unique<ChildProcess>(o);
}

std::vector<std::string> sh_gated(const std::filesystem::path& go, const std::string& cmd) {
    return {"sh", "-c", "while [ ! -e '" + go.string() + "' ]; do sleep 0.02; done; exec " + cmd};
}

void touch(const std::filesystem::path& p) { std::ofstream(p).put('\n'); }

class InjectE2e : public E2eTest {
  protected:
    std::filesystem::path record() { return dir().path() / "events.jsonl"; }

    // The first document with a top-level subsegment of this id (waits up to kDocumentTimeout).
    std::optional<json> document_with_subsegment(const std::string& id) {
        return collector().wait_for(
            [&](const json& d) {
                if (!d.contains("subsegments")) return false;
                for (const auto& s : d["subsegments"])
                    if (s.value("id", "") == id) return true;
                return false;
            },
            deadline_in(kDocumentTimeout));
    }

    std::set<std::string> injected_ids(uint32_t tgid) {
        std::set<std::string> ids;
        for (const auto& e : inject_events(record()))
            if (e.tgid == tgid && e.outcome == PP_INJ_OUTCOME_INJECTED) ids.insert(e.parent);
        return ids;
    }
    static constexpr int PP_INJ_OUTCOME_INJECTED = 1;
};

struct Scenario {
    std::string name;
    size_t injected;     // header lines the server must see inserted
    size_t app_headers;  // requests that carried their own header (left identical)
    size_t split;        // requests reported as not injectable because of a split (none expected)
};

// Requests whose head the client writes over several sends: their line goes before the blank
// line (the request line has left by then); every other injected line right after the request
// line.
bool injected_last(const std::string& target) {
    static const std::set<std::string> kSplit = {
        "/split", "/split-reqline", "/split-h1", "/split-h2", "/sp2", "/sp3", "/split-bytes"};
    return kSplit.count(target) != 0;
}

TEST_F(InjectE2e, RawClientsAreInjectedByteExactAndUnselectedOnesAreNot) {
    InjectServer server(dir().path() / "dump");
    const std::vector<Scenario> scenarios = {
        {"pipelined", 5, 0, 0},     {"split_line", 2, 0, 0},    {"split_blank", 2, 0, 0},
        {"split_reqline", 1, 0, 0}, {"split_headers", 2, 0, 0}, {"split_pipelined", 3, 0, 0},
        {"split_bytes", 1, 0, 0},   {"writev", 3, 0, 0},        {"body_get", 2, 0, 0},
        {"app_header", 1, 2, 0},
    };
    std::vector<std::unique_ptr<ChildProcess>> clients;
    std::vector<std::string> args = {"--record", record().string()};
    for (const auto& s : scenarios) {
        auto out = dir().path() / ("out-" + s.name);
        std::filesystem::create_directories(out);
        clients.push_back(gated({"python3", fixture("inject_client.py").string(), s.name,
                                 std::to_string(server.port()), out.string(), "--wait",
                                 (dir().path() / ("go-" + s.name)).string()}));
        args.emplace_back("--pid");
        args.push_back(std::to_string(clients.back()->pid()));
    }
    // Not selected: must pass untouched.
    auto plain_out = dir().path() / "out-plain";
    std::filesystem::create_directories(plain_out);
    auto plain = gated({"python3", fixture("inject_client.py").string(), "plain",
                        std::to_string(server.port()), plain_out.string(), "--wait",
                        (dir().path() / "go-plain").string()});
    start_agent(args);

    // One client at a time, so the server's connection numbers follow the scenarios.
    int conn = 0;
    for (size_t i = 0; i < scenarios.size(); i++) {
        touch(dir().path() / ("go-" + scenarios[i].name));
        auto st = clients[i]->wait_exit(deadline_in(60s));
        ASSERT_TRUE(st && st->success()) << scenarios[i].name << ": " << clients[i]->describe();
        conn++;
    }
    touch(dir().path() / "go-plain");
    auto pst = plain->wait_exit(deadline_in(60s));
    ASSERT_TRUE(pst && pst->success()) << plain->describe();
    conn++;
    stop_agent_and_sync();

    for (size_t i = 0; i < scenarios.size(); i++) {
        const auto& s = scenarios[i];
        SCOPED_TRACE(s.name);
        auto tgid = static_cast<uint32_t>(clients[i]->pid());
        std::string sent = read_file(dir().path() / ("out-" + s.name) / "sent-1.bin");
        std::string got = server.received(static_cast<int>(i + 1));
        auto ids = injected_ids(tgid);
        size_t removed = 0;
        std::string stripped = strip_injected(got, ids, removed);
        EXPECT_EQ(stripped, sent) << "bytes other than the injected lines changed";
        EXPECT_EQ(removed, s.injected);
        EXPECT_EQ(ids.size(), s.injected) << "one INJECT report per injected line";
        size_t app = 0, split = 0;
        for (const auto& e : inject_events(record())) {
            if (e.tgid != tgid) continue;
            app += e.outcome == 2;
            split += e.outcome == 3;
        }
        EXPECT_EQ(app, s.app_headers);
        EXPECT_EQ(split, s.split);
        // Every injected line sits right after its request line (before the blank line when the
        // head was written over several sends), with the reported trace id.
        for (const auto& r : server.requests()) {
            if (r["conn"].get<int>() != static_cast<int>(i + 1)) continue;
            size_t mine = 0;
            for (const auto& t : r["trace"]) {
                auto w = wire_ids(t);
                if (w && ids.count(w->parent)) {
                    mine++;
                    if (injected_last(r["target"]))
                        EXPECT_TRUE(r["trace_last"].get<bool>()) << r.dump();
                    else
                        EXPECT_TRUE(r["trace_first"].get<bool>()) << r.dump();
                    bool root_ok = false;
                    for (const auto& e : inject_events(record()))
                        root_ok = root_ok || (e.parent == w->parent && e.trace_id == w->trace);
                    EXPECT_TRUE(root_ok) << "Root differs from the reported trace id: " << t;
                }
            }
            EXPECT_LE(mine, 1u) << "at most one injected header per request: " << r.dump();
            // One X-Amzn-Trace-Id per request (its own or the injected one).
            EXPECT_EQ(r["trace"].size(), 1u) << r.dump();
        }
    }
    // The unselected process: byte-identical, nothing reported.
    EXPECT_EQ(server.received(conn), read_file(plain_out / "sent-1.bin"));
    EXPECT_TRUE(injected_ids(static_cast<uint32_t>(plain->pid())).empty());
}

TEST_F(InjectE2e, RealClientsCurlPythonNode) {
    InjectServer server(dir().path() / "dump");
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    auto big = dir().path() / "big.bin";
    {
        std::ofstream out(big, std::ios::binary);
        for (int i = 0; i < 3 * 1024 * 1024; i++) out.put(static_cast<char>((i * 7) & 0xff));
    }
    auto go = dir().path() / "go";
    auto curl_keepalive = gated(sh_gated(
        go, "curl -sS -o /dev/null " + base + "/curl-a " + base + "/curl-b " + base + "/curl-c"));
    auto curl_post = gated(sh_gated(
        go, "curl -sS -o /dev/null --data-binary @" + big.string() + " " + base + "/curl-big"));
    auto py = gated({"python3", fixture("inject_http_client.py").string(),
                     std::to_string(server.port()), go.string(), "4"});
    auto node = gated({"node", fixture("inject_node_client.js").string(),
                       std::to_string(server.port()), go.string()});
    start_agent({"--record", record().string(), "--pid", std::to_string(curl_keepalive->pid()),
                 "--pid", std::to_string(curl_post->pid()), "--pid", std::to_string(py->pid()),
                 "--pid", std::to_string(node->pid())});
    touch(go);
    for (auto* c : {curl_keepalive.get(), curl_post.get(), py.get(), node.get()}) {
        auto st = c->wait_exit(deadline_in(120s));
        ASSERT_TRUE(st && st->success()) << c->describe();
    }
    stop_agent_and_sync();

    std::set<std::string> ids;
    for (const auto& e : inject_events(record()))
        if (e.outcome == 1) ids.insert(e.parent);
    size_t n = 0;
    for (const auto& r : server.requests()) {
        SCOPED_TRACE(r.dump());
        n++;
        ASSERT_EQ(r["trace"].size(), 1u);
        auto w = wire_ids(r["trace"][0]);
        ASSERT_TRUE(w);
        EXPECT_TRUE(ids.count(w->parent)) << "Parent not reported by the kernel";
        EXPECT_TRUE(r["trace_first"].get<bool>());
        EXPECT_TRUE(r["body_ok"].get<bool>());
    }
    EXPECT_EQ(n, 3u + 1u + 5u + 2u) << "every request arrived";
    EXPECT_EQ(ids.size(), n) << "one distinct subsegment id per request";
    auto big_req = server.wait_requests("/curl-big", 1);
    ASSERT_EQ(big_req.size(), 1u);
    EXPECT_EQ(big_req[0]["body_len"].get<size_t>(), 3u * 1024 * 1024);

    // Calls made outside any served request: each is a segment of its own whose trace id and
    // subsegment id are the ones on the wire. The callee traces nothing, so the subsegment is not
    // marked traced (X-Ray would wait for a segment that never comes).
    for (const auto& r : server.requests()) {
        auto w = wire_ids(r["trace"][0]);
        ASSERT_TRUE(w) << r.dump();
        const std::string trace = w->trace, parent = w->parent;
        auto doc = document_with_subsegment(parent);
        ASSERT_TRUE(doc) << "no document holds subsegment " << parent << "\n"
                         << agent_diagnostics();
        EXPECT_EQ((*doc)["trace_id"], trace);
        for (const auto& s : (*doc)["subsegments"])
            if (s.value("id", "") == parent) {
                EXPECT_NE(field(s, "http.request.traced"), true) << s.dump();
            }
    }
}

TEST_F(InjectE2e, DeniedPortAndKillSwitchLeaveBytesIdentical) {
    InjectServer server(dir().path() / "dump");
    for (int round = 0; round < 2; round++) {
        SCOPED_TRACE(round == 0 ? "--inject-deny PORT" : "--no-inject");
        auto out = dir().path() / ("out-" + std::to_string(round));
        std::filesystem::create_directories(out);
        auto go = dir().path() / ("go-" + std::to_string(round));
        auto c = gated({"python3", fixture("inject_client.py").string(), "pipelined",
                        std::to_string(server.port()), out.string(), "--wait", go.string()});
        std::vector<std::string> args = {"--pid", std::to_string(c->pid())};
        if (round == 0) {
            args.insert(args.end(), {"--inject-deny", "10.0.0.0/8", "--inject-deny",
                                     std::to_string(server.port())});
        } else {
            args.emplace_back("--no-inject");
        }
        start_agent(args);
        if (round == 1) {
            EXPECT_NE(agent().stderr_text().find("[no]  injection - off (--no-inject)"),
                      std::string::npos);
        }
        touch(go);
        auto st = c->wait_exit(deadline_in(60s));
        ASSERT_TRUE(st && st->success()) << c->describe();
        AgentExit exit = stop_agent_and_sync();
        EXPECT_EQ(server.received(round + 1), read_file(out / "sent-1.bin"));
        EXPECT_EQ(exit.counter("inject.injected"), 0u) << exit.counters_text();
        if (round == 0) {
            EXPECT_GE(exit.counter("inject.denied"), 1u) << exit.counters_text();
        }
    }
}

// Well-known ports of protocols that are not HTTP/1 (telnet's 23 here) are never injected, with
// no --inject-deny: their sockets never join the sockhash.
TEST_F(InjectE2e, WellKnownNonHttpPortsAreNeverInjected) {
    InjectServer server(dir().path() / "dump", 23);
    auto out = dir().path() / "out";
    std::filesystem::create_directories(out);
    auto go = dir().path() / "go";
    auto c = gated({"python3", fixture("inject_client.py").string(), "pipelined",
                    std::to_string(server.port()), out.string(), "--wait", go.string()});
    start_agent({"--pid", std::to_string(c->pid())});
    touch(go);
    auto st = c->wait_exit(deadline_in(60s));
    ASSERT_TRUE(st && st->success()) << c->describe();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(server.received(1), read_file(out / "sent-1.bin"));
    EXPECT_EQ(exit.counter("inject.injected"), 0u) << exit.counters_text();
    EXPECT_GE(exit.counter("inject.denied"), 1u) << exit.counters_text();
    EXPECT_EQ(exit.counter("inject.sockets"), 0u) << exit.counters_text();
}

TEST_F(InjectE2e, RedisTrafficOfATracedClientIsUntouched) {
    if (find_executable("redis-server").empty() || find_executable("redis-cli").empty())
        GTEST_FAIL() << "redis-server/redis-cli missing: run .ci/install-deps.sh";
    uint16_t port = free_tcp_port();
    ChildOptions so;
    so.argv = {"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
               "--save",       "",       "--appendonly",       "no"};
    ChildProcess redis(so);
    ASSERT_TRUE(redis.wait_for_line(Stream::kStdout, std::regex("Ready to accept connections"),
                                    deadline_in(20s)))
        << redis.describe();
    // Binary values, one of them an HTTP request line: RESP frames them, injection must not.
    auto value = dir().write_file(
        "value.bin", std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\x01\xff binary", 36));
    auto go = dir().path() / "go";
    const std::string cli = "redis-cli -p " + std::to_string(port);
    auto script = dir().write_file(
        "redis.sh", "set -e\n" + cli + " -x SET k < '" + value.string() + "'\n" + cli +
                        " --raw GET k > '" + (dir().path() / "got.bin").string() + "'\n" + cli +
                        " SET 'GET / HTTP/1.1' 'POST /x HTTP/1.1'\n" + cli +
                        " --raw GET 'GET / HTTP/1.1' > '" + (dir().path() / "got2.txt").string() +
                        "'\n");
    auto client = gated(sh_gated(go, "sh '" + script.string() + "'"));
    start_agent({"--pid", std::to_string(client->pid())});
    touch(go);
    auto st = client->wait_exit(deadline_in(60s));
    ASSERT_TRUE(st && st->success()) << client->describe();
    AgentExit exit = stop_agent_and_sync();
    // redis-cli --raw adds a newline after the value.
    EXPECT_EQ(read_file(dir().path() / "got.bin"), read_file(value) + "\n");
    EXPECT_EQ(read_file(dir().path() / "got2.txt"), "POST /x HTTP/1.1\n");
    EXPECT_EQ(exit.counter("inject.injected"), 0u) << exit.counters_text();
    EXPECT_GE(exit.counter("inject.not_http"), 1u) << exit.counters_text();
    EXPECT_GE(exit.counter("inject.left_not_http"), 1u) << "a non-HTTP socket leaves the sockhash";
    // The untraced check: what the server stored is exactly what the client sent.
    ChildOptions co;
    co.argv = {"redis-cli", "-p", std::to_string(port), "--raw", "GET", "k"};
    auto check = run_command(co, deadline_in(20s));
    EXPECT_EQ(check.out, read_file(value) + "\n");
    redis.stop();
}

TEST_F(InjectE2e, StreamIntegrityThousandsOfRandomizedRequests) {
    InjectServer server(dir().path() / "dump");
    auto out = dir().path() / "out";
    std::filesystem::create_directories(out);
    auto go = dir().path() / "go";
    const int count = 1200;
    auto c =
        gated({"python3", fixture("inject_client.py").string(), "stress",
               std::to_string(server.port()), out.string(), "--wait", go.string(), "--count",
               std::to_string(count), "--seed", std::to_string(std::random_device{}() % 100000)});
    start_agent({"--record", record().string(), "--pid", std::to_string(c->pid())});
    touch(go);
    auto st = c->wait_exit(deadline_in(300s));  // generous: the test must finish, not be fast
    ASSERT_TRUE(st && st->success()) << c->describe();
    AgentExit exit = stop_agent_and_sync();
    auto summary = json::parse(c->lines(Stream::kStdout).back());
    EXPECT_EQ(summary["responses_ok"], summary["requests"]);
    EXPECT_TRUE(summary["send_ok"].get<bool>()) << "a send() returned more than the app gave it";
    auto ids = injected_ids(static_cast<uint32_t>(c->pid()));
    size_t total_removed = 0;
    int conns = summary["connections"].get<int>();
    for (int k = 1; k <= conns; k++) {
        size_t removed = 0;
        std::string sent = read_file(out / ("sent-" + std::to_string(k) + ".bin"));
        std::string got = strip_injected(server.received(k), ids, removed);
        EXPECT_EQ(got.size(), sent.size()) << "connection " << k;
        EXPECT_TRUE(got == sent) << "connection " << k << ": bytes differ";
        total_removed += removed;
    }
    std::cout << "[ inject   ] " << count << " requests over " << conns << " connections, "
              << total_removed << " injected; " << exit.counters_text() << std::endl;
    EXPECT_EQ(total_removed, static_cast<size_t>(summary["requests"].get<int>()))
        << "every request (heads split across sends included) got exactly one header";
    EXPECT_EQ(exit.counter("inject.framing_lost"), 0u);
    EXPECT_EQ(exit.counter("inject.skipped_split_head"), 0u);
    EXPECT_GT(exit.counter("inject.split_heads_injected"), 0u)
        << "no head was split: the mix lost its split case";
    EXPECT_EQ(exit.counter("inject.left_blocking"), 0u) << "the client's sockets are nonblocking";
}

TEST_F(InjectE2e, SecondSkMsgUserGetsEbusyAndTheSocketIsInjectedOnce) {
    // Two agents select the same client: both sock_ops programs see the connect, the first to
    // add the socket to its sockhash owns it, the other gets EBUSY and leaves it alone (the same
    // situation as Cilium's sockmap acceleration owning a socket).
    InjectServer server(dir().path() / "dump");
    auto out = dir().path() / "out";
    std::filesystem::create_directories(out);
    auto go = dir().path() / "go";
    auto c = gated({"python3", fixture("inject_client.py").string(), "pipelined",
                    std::to_string(server.port()), out.string(), "--wait", go.string()});
    start_agent({"--pid", std::to_string(c->pid())});
    AgentOptions second;
    second.agent_path = agent_path();
    second.args = {"--pid", std::to_string(c->pid()), "--sampling-rules", rules_path().string()};
    AgentRunner other(collector(), second);
    touch(go);
    auto st = c->wait_exit(deadline_in(60s));
    ASSERT_TRUE(st && st->success()) << c->describe();
    AgentExit b = other.stop();
    AgentExit a = stop_agent_and_sync();
    EXPECT_TRUE(b.status.success()) << b.stderr_text;
    EXPECT_EQ(a.counter("inject.ebusy") + b.counter("inject.ebusy"), 1u)
        << a.counters_text() << "\n"
        << b.counters_text();
    EXPECT_EQ(a.counter("inject.injected") + b.counter("inject.injected"), 5u);
    size_t removed = 0;
    std::string sent = read_file(out / "sent-1.bin");
    std::string got = server.received(1);
    std::string stripped = strip_injected(
        got,
        [&] {
            std::set<std::string> all;
            std::smatch m;
            for (auto it = got.cbegin(); std::regex_search(it, got.cend(), m, kInjectedLine);
                 it = m[0].second)
                all.insert(m[2].str());
            return all;
        }(),
        removed);
    EXPECT_EQ(removed, 5u) << "one header per request, not two";
    EXPECT_EQ(stripped, sent);
}

TEST_F(InjectE2e, TracedPythonServiceCallingAnUntracedOneSendsItsSubsegmentIdAsParent) {
    InjectServer callee(dir().path() / "dump");
    ChildOptions o;
    o.argv = {"python3", fixture("caller_server.py").string(), "127.0.0.1",
              std::to_string(callee.port())};
    ChildProcess caller(o);
    auto m = caller.wait_for_line(Stream::kStdout, std::regex("listening on port (\\d+)"),
                                  deadline_in(20s));
    ASSERT_TRUE(m) << caller.describe();
    // Only the caller is traced: same-node stitching cannot help, the header must carry it.
    start_agent({"--pid", std::to_string(caller.pid())});
    const std::string tag = unique_tag();
    auto resp = http_get("http://127.0.0.1:" + m->groups[1] + "/call/" + tag);
    EXPECT_EQ(resp.status, 200) << caller.describe();
    auto got = callee.wait_requests(tag, 1);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0]["trace"].size(), 1u) << got[0].dump();
    auto w = wire_ids(got[0]["trace"][0]);
    ASSERT_TRUE(w) << got[0].dump();
    const std::string trace = w->trace, parent = w->parent;
    // The callee would make its segment with parent_id = Parent: that must be the caller's
    // subsegment for this call, in the same trace.
    auto doc = collector().wait_for(
        [&](const json& d) {
            std::function<bool(const json&)> has = [&](const json& n) {
                if (n.value("id", "") == parent) return true;
                if (n.contains("subsegments"))
                    for (const auto& s : n["subsegments"])
                        if (has(s)) return true;
                return false;
            };
            return has(d);
        },
        deadline_in(kDocumentTimeout));
    ASSERT_TRUE(doc) << "no document holds subsegment " << parent << "\n" << agent_diagnostics();
    EXPECT_EQ((*doc)["trace_id"], trace);
    // The callee traces nothing: the subsegment must not say a segment under it will come.
    for (const auto& s : (*doc)["subsegments"])
        if (s.value("id", "") == parent) {
            EXPECT_NE(field(s, "http.request.traced"), true) << s.dump();
        }
    caller.stop();
}

// A call made outside any served request (a script, a worker loop) starts its own trace in the
// kernel, which also applies the local sampling rules to it (method, path and Host of the call):
// the header says Sampled=1 or Sampled=0, and the call's own segment follows the same decision,
// so the callee and Passport never disagree.
constexpr std::string_view kCallRules = R"({
  "version": 2,
  "default": {"fixed_target": 0, "rate": 0.0},
  "rules": [{"description": "other host", "host": "other.example", "http_method": "*",
             "url_path": "*", "fixed_target": 0, "rate": 1.0},
            {"description": "keep local GETs", "host": "127.0.0.1", "http_method": "GET",
             "url_path": "/keep/*", "fixed_target": 0, "rate": 1.0}]
})";

TEST_F(InjectE2e, CallsOutsideRequestsCarryTheKernelSamplingDecision) {
    constexpr int kLoops = 4;
    InjectServer server(dir().path() / "dump");
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    ChildOptions o;
    o.argv = {"python3", fixture("call_loop.py").string(), std::to_string(kLoops), base + "/keep/a",
              base + "/drop/b"};
    ChildProcess script(o);
    ASSERT_TRUE(script.wait_for_line(Stream::kStdout, std::regex("^ready$"), deadline_in(20s)))
        << script.describe();
    auto rules = dir().write_file("rules.json", kCallRules);
    start_agent({"--record", record().string(), "--sampling-rules", rules.string(), "--pid",
                 std::to_string(script.pid())});
    ASSERT_TRUE(script.send_signal(SIGUSR1));
    ASSERT_TRUE(script.wait_for_line(Stream::kStdout, std::regex("^done$"), deadline_in(30s)))
        << script.describe();

    std::map<std::string, std::string> keep, drop;  // trace id -> injected parent (subsegment) id
    for (const auto& [part, want, out] :
         {std::tuple{"/keep/a", "1", &keep}, std::tuple{"/drop/b", "0", &drop}}) {
        auto got = server.wait_requests(part, kLoops);
        ASSERT_EQ(got.size(), size_t(kLoops)) << part;
        for (const auto& r : got) {
            ASSERT_EQ(r["trace"].size(), 1u) << r.dump();
            auto w = wire_ids(r["trace"][0]);
            ASSERT_TRUE(w) << r.dump();
            EXPECT_EQ(w->sampled, want)
                << "decided in the kernel, not left to the callee: " << r.dump();
            (*out)[w->trace] = w->parent;
        }
    }
    EXPECT_EQ(keep.size(), size_t(kLoops)) << "each call its own trace";
    EXPECT_EQ(drop.size(), size_t(kLoops)) << "each call its own trace";
    for (const auto& [trace, parent] : keep) {
        auto doc = collector().wait_for(
            [&trace = trace](const json& d) { return d.value("trace_id", "") == trace; },
            deadline_in(kDocumentTimeout));
        ASSERT_TRUE(doc) << "no segment for sampled call " << trace << "\n" << agent_diagnostics();
        ASSERT_TRUE((*doc).contains("subsegments") && (*doc)["subsegments"].size() == 1)
            << doc->dump();
        EXPECT_EQ((*doc)["subsegments"][0]["id"], parent)
            << "the id on the wire is the subsegment's";
        EXPECT_EQ((*doc)["aws"]["xray"]["rule_name"], "keep local GETs") << doc->dump();
    }
    AgentExit exit = stop_agent_and_sync();
    for (const auto& d : collector().documents())
        EXPECT_FALSE(drop.count(d.value("trace_id", "")))
            << "a call the kernel sampled out was reported: " << d.dump();
    EXPECT_GE(exit.counter("correlate.not_sampled_rules"), uint64_t(kLoops));
    EXPECT_GE(exit.counter("kernel.ctx_sampled_in_kernel"), uint64_t(2 * kLoops))
        << exit.counters_text();
    script.stop();
}

// Passport's BPF objects still loaded: programs and maps whose names are Passport's (every
// program and map the agent loads is owned by its file descriptors and links, so none may
// outlive it). Empty when bpftool lists none.
std::vector<std::string> passport_bpf_objects() {
    static const std::regex kOurs(
        "\"name\":\"(inject_[a-z_]*|thread_ctx|clock_sync|pid_bits|task_stash|sample_rules|drop_"
        "counters|io_exit_shared)\"");
    std::vector<std::string> found;
    for (const char* what : {"prog", "map"}) {
        ChildOptions o;
        o.argv = {"bpftool", "-j", what, "show"};
        ChildProcess p(o);
        p.wait_exit(deadline_in(20s));
        std::string out = p.text(Stream::kStdout);
        for (std::sregex_iterator it(out.begin(), out.end(), kOurs), end; it != end; ++it)
            found.push_back(std::string(what) + " " + (*it)[1].str());
    }
    return found;
}

// The agent killed (SIGKILL) while a client is in the middle of writing a request head: nothing
// is held back in the kernel, so the rest of the head, written after the agent died, completes
// the request byte for byte, and nothing of the agent stays loaded.
TEST_F(InjectE2e, HeadSplitWhileTheAgentIsKilledArrivesWhole) {
    ASSERT_TRUE(passport_bpf_objects().empty())
        << "another agent is running; this test counts BPF objects";
    InjectServer server(dir().path() / "dump");
    auto out = dir().path() / "out";
    std::filesystem::create_directories(out);
    auto go = dir().path() / "go", then = dir().path() / "then";
    auto c = gated({"python3", fixture("inject_client.py").string(), "held_at_exit",
                    std::to_string(server.port()), out.string(), "--wait", go.string(), "--then",
                    then.string()});
    start_agent({"--pid", std::to_string(c->pid())});
    ASSERT_FALSE(passport_bpf_objects().empty())
        << "bpftool shows none of the running agent's objects";
    touch(go);
    ASSERT_TRUE(c->wait_for_line(Stream::kStdout, std::regex("^partial$"), deadline_in(20s)))
        << c->describe();
    AgentExit exit = kill_agent();
    EXPECT_FALSE(exit.status.success());
    touch(then);
    auto st = c->wait_exit(deadline_in(30s));
    ASSERT_TRUE(st && st->success()) << c->describe();
    EXPECT_EQ(server.received(1), read_file(out / "sent-1.bin"))
        << "the request did not arrive as written";
    EXPECT_TRUE(wait_until([] { return passport_bpf_objects().empty(); }, deadline_in(10s)))
        << "left loaded after SIGKILL: " << ::testing::PrintToString(passport_bpf_objects());
}

// The agent killed (SIGKILL, as the OOM killer would) at a random moment while thousands of
// randomized requests (pipelined, chunked, heads cut anywhere across sends) are being injected:
// every request arrives whole (its bytes as sent plus at most the one injected line), every
// response is right, and nothing of the agent stays loaded.
TEST_F(InjectE2e, KilledUnderInjectionLoadLosesNoByte) {
    ASSERT_TRUE(passport_bpf_objects().empty())
        << "another agent is running; this test counts BPF objects";
    InjectServer server(dir().path() / "dump");
    auto out = dir().path() / "out";
    std::filesystem::create_directories(out);
    auto go = dir().path() / "go";
    std::mt19937 rnd(std::random_device{}());
    auto c = gated({"python3", fixture("inject_client.py").string(), "stress",
                    std::to_string(server.port()), out.string(), "--wait", go.string(), "--count",
                    "1500", "--seed", std::to_string(rnd() % 100000)});
    start_agent({"--pid", std::to_string(c->pid())});
    touch(go);
    const size_t kill_after = 100 + rnd() % 600;
    server.wait_requests("/s", kill_after);
    AgentExit exit = kill_agent();
    EXPECT_FALSE(exit.status.success());
    auto st = c->wait_exit(deadline_in(300s));
    ASSERT_TRUE(st && st->success()) << c->describe();
    auto summary = json::parse(c->lines(Stream::kStdout).back());
    EXPECT_EQ(summary["responses_ok"], summary["requests"]);
    std::set<std::string> ids;
    size_t with = 0, without = 0;
    for (const auto& r : server.requests()) {
        EXPECT_LE(r["trace"].size(), 1u) << r.dump();
        for (const auto& t : r["trace"])
            if (auto w = wire_ids(t)) ids.insert(w->parent);
        (r["trace"].empty() ? without : with)++;
    }
    for (int k = 1; k <= summary["connections"].get<int>(); k++) {
        size_t removed = 0;
        std::string sent = read_file(out / ("sent-" + std::to_string(k) + ".bin"));
        EXPECT_TRUE(strip_injected(server.received(k), ids, removed) == sent)
            << "connection " << k << ": bytes differ";
    }
    std::cout << "[ inject   ] killed after " << kill_after << " requests: " << with
              << " injected, " << without << " sent after the kill without the header" << std::endl;
    EXPECT_GT(with, 0u);
    EXPECT_GT(without, 0u) << "the kill came after the last request";
    EXPECT_TRUE(wait_until([] { return passport_bpf_objects().empty(); }, deadline_in(10s)))
        << "left loaded after SIGKILL: " << ::testing::PrintToString(passport_bpf_objects());
}

// Connections opened before the agent started: a selected python http.client whose
// keep-alive connection was warmed up before the agent existed gets the header on the requests
// it sends afterwards (the agent adopts the connection), every other byte identical; each
// header names the subsegment Passport wrote for the call. An unselected process's connection,
// also opened before, stays byte-identical.
TEST_F(InjectE2e, ConnectionsOpenedBeforeTheAgentStartedAreAdopted) {
    InjectServer server(dir().path() / "dump");
    auto go = dir().path() / "go";
    auto start_client = [&](const std::string& name) {
        auto c = gated({"python3", fixture("inject_preexisting_client.py").string(),
                        std::to_string(server.port()), go.string(),
                        (dir().path() / ("sent-" + name + ".bin")).string()});
        auto warm = c->wait_for_line(Stream::kStdout, std::regex("warm (\\d+)"), deadline_in(20s));
        EXPECT_TRUE(warm) << c->describe();
        return c;
    };
    // One at a time, so the server numbers their connections 1 (selected) and 2 (not).
    auto selected = start_client("selected");
    auto unselected = start_client("unselected");
    ASSERT_FALSE(HasFailure());
    start_agent({"--record", record().string(), "-v", "--pid", std::to_string(selected->pid())});
    touch(go);
    for (auto* c : {selected.get(), unselected.get()}) {
        auto st = c->wait_exit(deadline_in(60s));
        ASSERT_TRUE(st && st->success()) << c->describe();
    }
    // Everything sent arrived before the clients saw their responses.
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("inject.adopted_sockets"), 1u) << exit.counters_text();
    EXPECT_NE(exit.stderr_text.find("injection adopted 1 established connection"),
              std::string::npos)
        << tail(exit.stderr_text);

    // Selected: the warm-up request as sent, each later request with exactly one injected line.
    const auto tgid = static_cast<uint32_t>(selected->pid());
    auto ids = injected_ids(tgid);
    std::string got = server.received(1);
    size_t removed = 0;
    EXPECT_EQ(strip_injected(got, ids, removed), read_file(dir().path() / "sent-selected.bin"))
        << "bytes other than the injected lines changed";
    EXPECT_EQ(removed, 5u);
    EXPECT_EQ(ids.size(), 5u);
    size_t seen = 0;
    for (const auto& r : server.requests()) {
        if (r["conn"].get<int>() != 1) continue;
        SCOPED_TRACE(r.dump());
        seen++;
        EXPECT_TRUE(r["body_ok"].get<bool>());
        if (r["target"] == "/pre-warmup") {
            EXPECT_EQ(r["trace"].size(), 0u) << "sent before the agent started";
            continue;
        }
        ASSERT_EQ(r["trace"].size(), 1u);
        EXPECT_TRUE(r["trace_first"].get<bool>());
        auto w = wire_ids(r["trace"][0]);
        ASSERT_TRUE(w);
        ASSERT_TRUE(ids.count(w->parent)) << "Parent not reported by the kernel";
        // The call's document holds the subsegment named on the wire, in the wire's trace: the
        // kernel numbered the adopted connection's bytes as the syscall probes do.
        const std::string trace = w->trace, parent = w->parent;
        auto doc = document_with_subsegment(parent);
        ASSERT_TRUE(doc) << "no document holds subsegment " << parent << "\n"
                         << agent_diagnostics();
        EXPECT_EQ((*doc)["trace_id"], trace);
    }
    EXPECT_EQ(seen, 6u) << "every request of the selected client arrived";

    // Not selected: byte-identical, no header, nothing reported.
    EXPECT_EQ(server.received(2), read_file(dir().path() / "sent-unselected.bin"));
    for (const auto& r : server.requests()) {
        if (r["conn"].get<int>() == 2) {
            EXPECT_EQ(r["trace"].size(), 0u) << r.dump();
        }
    }
    EXPECT_TRUE(injected_ids(static_cast<uint32_t>(unselected->pid())).empty());
}

// A connection opened earlier and caught in the middle of a request body: the first bytes the
// kernel sees after adoption are body bytes, not a request, so the connection is left alone
// for good: everything arrives byte-identical, including the next request.
TEST_F(InjectE2e, AdoptedConnectionCaughtMidBodyIsLeftAlone) {
    InjectServer server(dir().path() / "dump");
    auto go = dir().path() / "go";
    auto sent = dir().path() / "sent-mid.bin";
    auto client = gated({"python3", fixture("inject_midbody_client.py").string(),
                         std::to_string(server.port()), go.string(), sent.string()});
    ASSERT_TRUE(client->wait_for_line(Stream::kStdout, std::regex("mid"), deadline_in(20s)))
        << client->describe();
    start_agent({"--record", record().string(), "--pid", std::to_string(client->pid())});
    touch(go);
    auto st = client->wait_exit(deadline_in(60s));
    ASSERT_TRUE(st && st->success()) << client->describe();
    AgentExit exit = stop_agent_and_sync();
    EXPECT_EQ(exit.counter("inject.adopted_sockets"), 1u) << exit.counters_text();
    EXPECT_EQ(exit.counter("inject.injected"), 0u) << exit.counters_text();
    EXPECT_GE(exit.counter("inject.not_http") + exit.counter("inject.framing_lost"), 1u)
        << exit.counters_text();
    EXPECT_GE(exit.counter("inject.left_not_http"), 1u)
        << "the adopted socket was not sent out of the sockhash";
    EXPECT_EQ(server.received(1), read_file(sent));
    EXPECT_TRUE(injected_ids(static_cast<uint32_t>(client->pid())).empty());
}

}  // namespace
}  // namespace passport::testing::e2e
