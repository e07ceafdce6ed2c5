// A traced reverse proxy (nginx, two worker processes, `proxy_pass`) under concurrency, with and
// without pooled upstream connections (`upstream keepalive`). Clients send their own
// X-Amzn-Trace-Id, which nginx forwards unchanged; the kernel rewrites the forwarded Parent in
// place so that it names nginx's call (docs/injection.md, "A header forwarded by a proxy").
// Checked per request, from the documents and from what the upstream really received:
//  - nginx's segment continues the client's header and holds one call subsegment;
//  - the upstream's segment is that subsegment's child;
//  - the header on the wire at the upstream is the client's, with only Parent's 16 digits
//    changed, to that subsegment's id.
// The upstream (hop.py) is traced too; the wire check alone shows what an upstream on another
// node, traced by another agent, would receive.
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/support/netns.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

constexpr int kRequests = 64;
constexpr int kConcurrency = 8;

std::string nginx_proxy_config(const std::filesystem::path& dir, const std::string& listen,
                               const std::string& upstream, bool keepalive) {
    std::string preamble = nginx_config_preamble(dir);
    preamble.replace(preamble.find("worker_processes 1;"), 19, "worker_processes 2;");
    std::ostringstream c;
    c << preamble << "  upstream leaf {\n    server " << upstream << ";\n";
    if (keepalive) c << "    keepalive 8;\n";
    // /warmup is answered by nginx itself: no upstream connection exists before the agent.
    c << "  }\n  server {\n    listen " << listen << ";\n"
      << "    location = /warmup {\n      return 200;\n    }\n    location / {\n"
      << "      proxy_pass http://leaf;\n      proxy_http_version 1.1;\n";
    if (keepalive) c << "      proxy_set_header Connection \"\";\n";
    c << "    }\n  }\n}\n";
    return c.str();
}

// "Root=…;Parent=…;Sampled=1" → its Parent.
std::string parent_of(const std::string& header) {
    const size_t at = header.find("Parent=");
    return at == std::string::npos ? "" : header.substr(at + 7, 16);
}

std::string root_of(const std::string& header) {
    const size_t at = header.find("Root=");
    return at == std::string::npos ? "" : header.substr(at + 5, 35);
}

class ProxyE2E : public E2eTest, public ::testing::WithParamInterface<bool> {};

TEST_P(ProxyE2E, ForwardedHeaderNamesTheProxysCall) {
    const bool keepalive = GetParam();
    std::filesystem::copy_file(fixture("hop.py"), dir().path() / "hop.py");
    std::filesystem::copy_file(fixture("proxy_load.py"), dir().path() / "proxy_load.py");
    NetNs ns_c("c");
    NetNs ns_d("d");
    VethLink cd(ns_c, "203.0.113.1/24", ns_d, "203.0.113.2/24");
    LeafHop leaf = start_leaf_hop(ns_d, dir().path(), "leaf", "203.0.113.2");
    ASSERT_FALSE(leaf.authority.empty()) << leaf.child->describe();
    ChildProcess& d = *leaf.child;
    const std::string d_authority = leaf.authority;
    const std::string c_authority = "203.0.113.1:8080";
    const auto nginx_dir = dir().path() / "nginx";
    auto nginx = start_nginx_in(ns_c, nginx_dir,
                                nginx_proxy_config(nginx_dir, c_authority, d_authority, keepalive));
    ASSERT_TRUE(wait_until(
        [&] {
            return nginx->running() &&
                   ns_c.run({"curl", "-s", "--noproxy", "*", "-o", "/dev/null", "-w",
                             "%{http_code}", "http://" + c_authority + "/warmup"},
                            deadline_in(std::chrono::seconds(5)))
                           .out == "200";
        },
        deadline_in(std::chrono::seconds(20)), std::chrono::milliseconds(100)))
        << nginx->describe() << "\n"
        << dir().read_file("nginx/error.log");
    start_agent({"--pid", std::to_string(nginx->pid()), "--pid", std::to_string(d.pid())});

    CommandResult load =
        ns_c.run({python3_path(), (dir().path() / "proxy_load.py").string(), "203.0.113.1", "8080",
                  std::to_string(kRequests), std::to_string(kConcurrency)},
                 deadline_in(std::chrono::seconds(120)));
    ASSERT_NE(load.out.find("done ok=" + std::to_string(kRequests) + " failed=0"),
              std::string::npos)
        << load.out << load.err;
    std::map<std::string, std::string> sent;  // path → the client's header
    std::smatch m;
    std::istringstream lines(load.out);
    for (std::string line; std::getline(lines, line);) {
        if (std::regex_match(line, m, std::regex(R"(sent (\d+) 200 (\S+))")))
            sent["/p/" + m[1].str()] = m[2];
    }
    ASSERT_EQ(sent.size(), static_cast<size_t>(kRequests));
    // hop.py's threads print concurrently: lines may run together, so search the raw text.
    std::map<std::string, std::string> received;  // path → the header the upstream got
    const std::string out = d.text(Stream::kStdout);
    const std::regex got(R"(received leaf (/p/\d+) (Root=[^;\s]+;Parent=[0-9a-f]{16};Sampled=1))");
    for (std::sregex_iterator it(out.begin(), out.end(), got), end; it != end; ++it)
        received[(*it)[1]] = (*it)[2];
    EXPECT_EQ(received.size(), sent.size()) << out.substr(0, 500);
    stop_agent_and_sync();

    // The upstream's URL names nginx's upstream block ("leaf"), as the Host header nginx sends.
    auto doc_for = [&](const std::string& name, const std::string& path) -> std::optional<json> {
        for (const auto& doc : collector().documents())
            if (field(doc, "name") == name && url_ends_with(doc, path)) return doc;
        return std::nullopt;
    };
    int exact = 0;
    for (const auto& [path, header] : sent) {
        auto proxy = doc_for("nginx", path);
        auto leaf = doc_for("leaf", path);
        ASSERT_TRUE(proxy && leaf) << path << (proxy ? "" : ": no nginx document")
                                   << (leaf ? "" : ": no upstream document") << "\n"
                                   << agent_diagnostics();
        EXPECT_TRUE(continues_trace(*proxy, root_of(header), parent_of(header))) << brief(*proxy);
        const json subs = field(*proxy, "subsegments");
        ASSERT_TRUE(subs.is_array() && subs.size() == 1) << path << ": " << brief(*proxy);
        const std::string call_id = subs[0].value("id", "");
        EXPECT_EQ(field(subs[0], "http.request.traced"), true)
            << "the upstream's segment exists: " << brief(subs[0]);
        EXPECT_EQ(field(*leaf, "trace_id"), root_of(header)) << path;
        EXPECT_EQ(field(*leaf, "parent_id"), call_id) << path << ": the upstream is not under "
                                                      << "nginx's call for its own request";
        std::string expected = header;
        expected.replace(expected.find("Parent=") + 7, 16, call_id);
        EXPECT_EQ(received[path], expected) << path << ": the header on the wire";
        if (field(*leaf, "parent_id") == call_id && received[path] == expected) exact++;
    }
    std::cout << "[ proxy    ] " << (keepalive ? "upstream keepalive" : "a connection per call")
              << ": " << exact << "/" << kRequests << " exact" << std::endl;
}

INSTANTIATE_TEST_SUITE_P(Upstream, ProxyE2E, ::testing::Values(false, true), [](const auto& info) {
    return std::string(info.param ? "Keepalive" : "NewConnections");
});

}  // namespace
}  // namespace passport::testing::e2e
