#include "agent/demo.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/agent.hpp"
#include "userspace/report/summary.hpp"

extern char** environ;

namespace passport::agent {
namespace {

// The demo's services: ordinary programs with no tracing code in them.
constexpr const char* kInventoryJs = R"JS(
const http = require('http');
const stock = { apple: 12, pear: 0, plum: 7 };
const server = http.createServer((req, res) => {
  const m = req.url.match(/^\/stock\/([a-z]+)$/);
  setTimeout(() => {
    if (!m) { res.writeHead(404, {'content-type': 'text/plain'}); res.end('no such route\n'); return; }
    if (!(m[1] in stock)) { res.writeHead(404, {'content-type': 'application/json'}); res.end('{"error":"unknown item"}'); return; }
    res.writeHead(200, {'content-type': 'application/json'});
    res.end(JSON.stringify({ item: m[1], count: stock[m[1]] }));
  }, 2 + Math.floor(Math.random() * 6));
});
server.listen(0, '127.0.0.1', () => console.log('PORT ' + server.address().port));
)JS";

constexpr const char* kStorefrontPy = R"PY(
import http.client, json, os, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

INVENTORY_PORT = int(os.environ["INVENTORY_PORT"])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.path == "/boom":
            return self.reply(500, {"error": "storefront bug"})
        if not self.path.startswith("/buy/"):
            return self.reply(404, {"error": "no such page"})
        item = self.path[len("/buy/"):]
        conn = http.client.HTTPConnection("127.0.0.1", INVENTORY_PORT, timeout=5)
        conn.request("GET", "/stock/" + item)
        resp = conn.getresponse()
        stock = json.loads(resp.read() or b"{}")
        conn.close()
        if resp.status == 404:
            return self.reply(404, {"error": "unknown item " + item})
        if stock.get("count", 0) == 0:
            return self.reply(429, {"error": "sold out, try later"})
        return self.reply(200, {"bought": item})

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("PORT", server.server_address[1], flush=True)
server.serve_forever()
)PY";

constexpr const char* kClientPy = R"PY(
import http.client, sys
port = int(sys.argv[1])
paths = ["/buy/apple", "/buy/plum", "/buy/pear", "/buy/kiwi", "/boom", "/buy/apple", "/nowhere"]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
for i in range(3):
    for j, p in enumerate(paths):
        headers = {"User-Agent": "passport-demo-client/1.0"}
        if i == 0 and j == 0:  # one request arrives with an upstream trace
            headers["X-Amzn-Trace-Id"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        conn.request("GET", p, headers=headers)
        conn.getresponse().read()
conn.close()
print("client: %d requests" % (3 * len(paths)))
)PY";

struct Child {
    pid_t pid = -1;
    FILE* out = nullptr;
};

Child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env) {
    int fds[2];
    if (::pipe(fds) != 0) return {};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::vector<std::string> env_store;
    for (char** e = environ; *e; e++) env_store.emplace_back(*e);
    for (const auto& e : extra_env) env_store.push_back(e);
    std::vector<char*> envp, args;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_store = argv;
    for (auto& a : argv_store) args.push_back(a.data());
    args.push_back(nullptr);
    Child c;
    if (posix_spawnp(&c.pid, args[0], &fa, nullptr, args.data(), envp.data()) != 0) c.pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    c.out = ::fdopen(fds[0], "r");
    return c;
}

// Reads "PORT n" from the child's stdout.
int read_port(Child& c) {
    char line[256];
    while (c.out && std::fgets(line, sizeof line, c.out)) {
        int port = 0;
        if (std::sscanf(line, "PORT %d", &port) == 1) return port;
    }
    return 0;
}

void stop(Child& c) {
    if (c.pid > 0) {
        ::kill(c.pid, SIGTERM);
        int st = 0;
        for (int i = 0; i < 50 && ::waitpid(c.pid, &st, WNOHANG) == 0; i++)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (::waitpid(c.pid, &st, WNOHANG) == 0) {
            ::kill(c.pid, SIGKILL);
            ::waitpid(c.pid, &st, 0);
        }
    }
    if (c.out) std::fclose(c.out);
    c = {};
}

}  // namespace

int run_demo(Config cfg, const char* /*argv0*/) {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/passport-demo-XXXXXX";
    if (!::mkdtemp(tmpl)) {
        spdlog::error("demo: mkdtemp: {}", std::strerror(errno));
        return 1;
    }
    fs::path dir = tmpl;
    auto write = [&](const char* name, const char* text) {
        std::ofstream(dir / name) << text;
        return (dir / name).string();
    };
    std::string inventory = write("inventory.js", kInventoryJs);
    std::string storefront = write("storefront.py", kStorefrontPy);
    std::string client = write("client.py", kClientPy);
    // The demo records every request (the default rule would keep 1/s + 5%).
    std::string rules = write(
        "sampling.json", R"({"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]})");

    std::printf(
        "passport demo: starting a Node inventory service and a Python storefront on 127.0.0.1\n");
    Child inv = spawn({"node", inventory}, {});
    int inv_port = read_port(inv);
    Child shop = spawn({"python3", storefront}, {"INVENTORY_PORT=" + std::to_string(inv_port)});
    int shop_port = read_port(shop);
    if (inv_port == 0 || shop_port == 0) {
        spdlog::error("demo: a demo service did not start (is node/python3 installed?)");
        stop(inv);
        stop(shop);
        return 1;
    }

    cfg.demo = false;
    cfg.pids = {static_cast<uint32_t>(inv.pid), static_cast<uint32_t>(shop.pid)};
    cfg.sampling_rules = rules;
    if (!cfg.daemon_address_explicit) cfg.daemon_address.clear();  // embedded sink only
    if (cfg.daemon_address.empty()) cfg.sampling = "local";        // no daemon to ask for rules

    report::MemoryEmitter sink;
    std::thread driver;
    int rc = run_agent(cfg, &sink, [&]() {
        driver = std::thread([&]() {
            std::printf(
                "passport demo: tracing pids %d (inventory.js :%d) and %d (storefront.py :%d); "
                "driving requests\n",
                inv.pid, inv_port, shop.pid, shop_port);
            std::fflush(stdout);
            Child c = spawn({"python3", client, std::to_string(shop_port)}, {});
            char line[256];
            while (c.out && std::fgets(line, sizeof line, c.out))
                std::printf("passport demo: %s", line);
            int st = 0;
            ::waitpid(c.pid, &st, 0);
            if (c.out) std::fclose(c.out);
            // Let the last responses' events drain before stopping.
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            ::kill(::getpid(), SIGINT);
        });
    });
    if (driver.joinable()) driver.join();
    stop(shop);
    stop(inv);
    fs::remove_all(dir);
    if (rc != 0) return rc;

    size_t rejected = 0;
    auto docs = report::parse_datagrams(sink.datagrams(), &rejected);
    std::printf("\n=== Services (what the X-Ray service map shows) — %zu documents ===\n",
                docs.size());
    std::fputs(report::format_service_table(report::service_table(docs)).c_str(), stdout);
    std::printf("\n=== One trace ===\n");
    std::fputs(report::format_waterfall(docs).c_str(), stdout);
    std::printf(
        "\nThe storefront's calls are subsegments. The kernel wrote X-Amzn-Trace-Id (the trace "
        "and\n"
        "the call's subsegment id) into each call on the wire, so the inventory's segments join "
        "the\n"
        "caller's trace wherever the inventory runs (docs/injection.md); on this node they would\n"
        "also be linked by connection with --no-inject.\n");
    return docs.empty() ? 1 : 0;
}

}  // namespace passport::agent
