// Blocking clients are never harmed by injection. A socket in a sockhash gets the kernel's
// tcp_bpf receive path, whose blocking recv() returned EAGAIN after large uploads (measured: 3 of
// 20 uploads of 4 MB failed, Python and C alike, before sockets left the sockhash). Here real
// blocking clients (a raw Python socket, http.client, urllib and requests without timeouts, a
// socket that turns blocking after sending, curl, and a blocking C program) upload 0 to 64 MB to
// a traced server that reads the body and answers late; every run must succeed, and the agent
// must really have injected into them (so the check cannot pass with injection off).
//
// The full matrix (100 runs per client and size, with and without Passport) is
// bench/blocking_matrix.sh.
#include <fstream>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using namespace std::chrono_literals;

// The interpreter that has the requests package (Debian's python3-requests is installed for
// /usr/bin/python3; another python3 first on PATH may have its own).
std::string python_with_requests() {
    for (std::string py : {"python3", "/usr/bin/python3"}) {
        ChildOptions o;
        o.argv = {py, "-c", "import requests"};
        ChildProcess p(o);
        auto st = p.wait_exit(deadline_in(20s));
        if (st && st->success()) return py;
    }
    return "";
}

class BlockingClientsE2e : public E2eTest {
  protected:
    // Starts the matrix server (traced too: it is a python3 process like the clients).
    std::unique_ptr<ChildProcess> start_server(uint16_t port, const std::string& delay) {
        ChildOptions o;
        o.argv = {"python3", fixture("blocking_matrix.py").string(), "server", std::to_string(port),
                  delay};
        auto p = std::make_unique<ChildProcess>(o);
        if (!p->wait_for_line(Stream::kStdout, std::regex("^listening"), deadline_in(20s)))
            throw std::runtime_error("matrix server did not start: " + p->describe());
        return p;
    }

    // One client kind: `runs` requests over `sizes`, gated on `go` so that the agent selects it
    // (and the programs it runs) before its first connect.
    std::unique_ptr<ChildProcess> client(const std::string& python, const std::filesystem::path& go,
                                         uint16_t port, const std::string& kind,
                                         const std::string& sizes, int runs) {
        std::string cmd = python + " '" + fixture("blocking_matrix.py").string() + "' client " +
                          std::to_string(port) + " '" + kind + "' " + sizes + " " +
                          std::to_string(runs);
        ChildOptions o;
        o.argv = {"sh", "-c",
                  "while [ ! -e '" + go.string() + "' ]; do sleep 0.02; done; exec " + cmd};
        return std::make_unique<ChildProcess>(o);
    }
};

TEST_F(BlockingClientsE2e, UploadsAndLateAnswersSeeNoErrorAndAreInjected) {
    const std::string with_requests = python_with_requests();
    ASSERT_FALSE(with_requests.empty()) << "no python3 with requests: run .ci/install-deps.sh";
    const uint16_t port = free_tcp_port(), slow_port = free_tcp_port();
    auto server = start_server(port, "0.2");
    auto slow = start_server(slow_port, "2");
    const std::string c_client = std::string("c:") + PASSPORT_BLOCKING_UPLOAD_PATH;
    const std::string sizes = "0,1000000,4000000,8000000,16000000,64000000";
    struct Run {
        std::string kind;
        uint16_t port;
        std::string sizes;
        int runs;
    };
    const std::vector<Run> matrix = {
        {"socket", port, sizes, 6},
        {"httpclient", port, sizes, 6},
        {"urllib", port, sizes, 6},
        {"requests", port, sizes, 6},
        {"late_blocking", port, sizes, 6},
        {"curl", port, sizes, 6},
        {c_client, port, sizes, 6},
        {"socket", slow_port, "4000000", 2},
        {"httpclient", slow_port, "8000000", 2},
        {c_client, slow_port, "16000000", 2},
    };
    auto go = dir().path() / "go";
    std::vector<std::unique_ptr<ChildProcess>> clients;
    std::vector<std::string> args = {"--pid", std::to_string(server->pid()), "--pid",
                                     std::to_string(slow->pid())};
    for (const auto& r : matrix) {
        clients.push_back(client(r.kind == "requests" ? with_requests : "python3", go, r.port,
                                 r.kind, r.sizes, r.runs));
        args.insert(args.end(), {"--pid", std::to_string(clients.back()->pid())});
    }
    start_agent(args);
    std::ofstream(go).put('\n');
    for (size_t i = 0; i < matrix.size(); i++) {
        SCOPED_TRACE(matrix[i].kind + " on port " + std::to_string(matrix[i].port));
        auto st = clients[i]->wait_exit(deadline_in(600s));
        ASSERT_TRUE(st && st->success()) << clients[i]->describe();
        std::string last = clients[i]->lines(Stream::kStdout).back();
        EXPECT_EQ(last, "ok " + std::to_string(matrix[i].runs) + " errors 0")
            << clients[i]->text(Stream::kStdout);
    }
    AgentExit exit = stop_agent_and_sync();
    std::cout << "[ blocking ] " << exit.counters_text() << std::endl;
    // The clients' requests went through the injector, and their sockets left the sockhash.
    EXPECT_GE(exit.counter("inject.injected"), 40u);
    EXPECT_GT(exit.counter("inject.left_blocking"), 0u);
    EXPECT_EQ(exit.counter("inject.framing_lost"), 0u);
    EXPECT_EQ(exit.counter("kernel.conns_evicted"), 0u)
        << "the default table holds these connections";
}

// A kernel connection table smaller than the connections a traced server holds open: the kernel
// evicts the least recently used entries, and the agent says how many (never silently).
TEST_F(BlockingClientsE2e, ConnectionTableEvictionsAreCounted) {
    const uint16_t port = free_tcp_port();
    auto server = start_server(port, "0");
    start_agent({"--pid", std::to_string(server->pid()), "--max-connections", "32"});
    ChildOptions o;
    o.argv = {"python3", fixture("blocking_matrix.py").string(), "hold", std::to_string(port),
              "200"};
    ChildProcess c(o);
    auto st = c.wait_exit(deadline_in(120s));
    ASSERT_TRUE(st && st->success()) << c.describe();
    EXPECT_EQ(c.lines(Stream::kStdout).back(), "ok 400 errors 0");
    AgentExit exit = stop_agent_and_sync();
    EXPECT_GT(exit.counter("kernel.conns_evicted"), 0u) << exit.counters_text();
}

}  // namespace
}  // namespace passport::testing::e2e
