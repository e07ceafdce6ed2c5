#include "tests/support/test_servers.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "tests/support/http_client.hpp"
#include "tests/support/net.hpp"
#include "tests/support/temp_dir.hpp"

namespace passport::testing {

std::string nginx_config_preamble(const std::filesystem::path& dir) {
    std::ostringstream c;
    c << "daemon off;\n"
      << "master_process on;\n"
      << "worker_processes 1;\n"
      << "pid " << (dir / "nginx.pid").string() << ";\n"
      << "error_log " << (dir / "error.log").string() << " info;\n"
      << "events { worker_connections 128; }\n"
      << "http {\n"
      << "  access_log " << (dir / "access.log").string() << ";\n"
      << "  client_body_temp_path " << (dir / "client_body").string() << ";\n"
      << "  proxy_temp_path " << (dir / "proxy").string() << ";\n"
      << "  fastcgi_temp_path " << (dir / "fastcgi").string() << ";\n"
      << "  uwsgi_temp_path " << (dir / "uwsgi").string() << ";\n"
      << "  scgi_temp_path " << (dir / "scgi").string() << ";\n";
    return c.str();
}

namespace {

constexpr const char* kNginxPath = "/usr/sbin/nginx";

std::unique_ptr<ChildProcess> spawn(const std::vector<std::string>& argv,
                                    const std::filesystem::path& cwd,
                                    const ServerOptions& options) {
    ChildOptions child;
    child.argv = argv;
    child.env = options.env;
    child.env_remove = options.env_remove;
    child.cwd = cwd;
    return std::make_unique<ChildProcess>(std::move(child));
}

uint16_t wait_for_port_line(ChildProcess& process, const std::regex& pattern,
                            const ServerOptions& options) {
    auto line = process.wait_for_line(Stream::kStdout, pattern, deadline_in(options.start_timeout));
    if (!line) {
        // Some servers print their banner on stderr.
        line =
            process.wait_for_line(Stream::kStderr, pattern, deadline_in(std::chrono::seconds(0)));
    }
    if (!line || line->groups.size() < 2) {
        throw std::runtime_error("server did not report its port: " + process.describe());
    }
    return static_cast<uint16_t>(std::stoi(line->groups[1]));
}

std::string nginx_config(const std::filesystem::path& dir, uint16_t port) {
    std::ostringstream c;
    c << nginx_config_preamble(dir) << "  default_type text/plain;\n"
      << "  keepalive_requests 1000;\n"
      << "  large_client_header_buffers 4 32k;\n"
      << "  server {\n"
      << "    listen 127.0.0.1:" << port << ";\n"
      << "    server_name localhost;\n"
      << "    location /ok/ { return 200 \"ok\\n\"; }\n"
      << "    location /missing/ { return 404 \"not found\\n\"; }\n"
      << "    location /throttle/ { return 429 \"slow down\\n\"; }\n"
      << "    location /boom/ { return 500 \"boom\\n\"; }\n"
      << "    location /empty/ { return 204; }\n"
      << "    location / { return 200 \"root\\n\"; }\n"
      << "  }\n"
      << "}\n";
    return c.str();
}

}  // namespace

TestServer::TestServer(std::unique_ptr<ChildProcess> process, uint16_t port, std::string host)
    : process_(std::move(process)), port_(port), host_(std::move(host)) {}

TestServer::~TestServer() = default;

std::string TestServer::url(std::string_view path) const {
    return "http://" + host_ + ":" + std::to_string(port_) + std::string(path);
}

std::unique_ptr<TestServer> start_python_http_server(const std::filesystem::path& directory,
                                                     const ServerOptions& options, bool http11) {
    ServerOptions with_unbuffered = options;
    with_unbuffered.env["PYTHONUNBUFFERED"] = "1";  // the banner must reach the pipe at once
    std::vector<std::string> argv = {python3_path(), "-m",          "http.server",     "--bind",
                                     "127.0.0.1",    "--directory", directory.string()};
    if (http11) argv.insert(argv.end(), {"--protocol", "HTTP/1.1"});
    argv.emplace_back("0");
    auto process = spawn(argv, directory, with_unbuffered);
    static const std::regex banner(R"(Serving HTTP on \S+ port (\d+))");
    uint16_t port = wait_for_port_line(*process, banner, options);
    return std::make_unique<TestServer>(std::move(process), port, "127.0.0.1");
}

std::unique_ptr<TestServer> start_script_server(const std::vector<std::string>& argv,
                                                const std::filesystem::path& cwd,
                                                const ServerOptions& options) {
    ServerOptions with_unbuffered = options;
    with_unbuffered.env.emplace("PYTHONUNBUFFERED", "1");
    auto process = spawn(argv, cwd, with_unbuffered);
    static const std::regex banner(R"(listening on port (\d+))");
    uint16_t port = wait_for_port_line(*process, banner, options);
    return std::make_unique<TestServer>(std::move(process), port, "127.0.0.1");
}

std::string nginx_unavailable_reason() {
    if (::access(kNginxPath, X_OK) != 0) return std::string(kNginxPath) + " is not installed";
    if (::geteuid() != 0) return "nginx e2e runs as root (master_process on)";
    return {};
}

std::unique_ptr<NginxServer> start_nginx(const TempDir& dir, const ServerOptions& options) {
    // nginx has no "port 0": pick a free port and retry if someone else took it meanwhile.
    for (int attempt = 0; attempt < 5; ++attempt) {
        uint16_t port = free_tcp_port();
        auto conf = dir.write_file("nginx.conf", nginx_config(dir.path(), port));
        auto process = spawn({kNginxPath, "-p", dir.path().string() + "/", "-e",
                              (dir.path() / "error.log").string(), "-c", conf.string()},
                             dir.path(), options);
        auto server = std::make_unique<NginxServer>(std::move(process), port, "127.0.0.1");
        Deadline deadline = deadline_in(options.start_timeout);
        bool up = wait_until(
            [&] {
                return !server->running() ||
                       (!server->worker_pids().empty() &&
                        wait_for_tcp_listen(port, deadline_in(std::chrono::milliseconds(200))));
            },
            deadline, std::chrono::milliseconds(20));
        if (up && server->running()) return server;
        std::string why =
            server->process().describe() + "\n--- error.log ---\n" + dir.read_file("error.log");
        server->stop();
        if (why.find("Address already in use") == std::string::npos) {
            throw std::runtime_error("nginx did not start: " + why);
        }
    }
    throw std::runtime_error("nginx: no free port after 5 attempts");
}

std::vector<pid_t> child_pids(pid_t parent) {
    std::vector<pid_t> children;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        std::ifstream stat(entry.path() / "stat");
        std::string text;
        if (!std::getline(stat, text)) continue;
        // pid (comm) state ppid …; comm may contain spaces and parentheses: use the last ')'.
        size_t close = text.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(text.substr(close + 1));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == parent && state != 'Z' && state != 'X') children.push_back(std::stoi(name));
    }
    std::sort(children.begin(), children.end());
    return children;
}

std::vector<pid_t> NginxServer::worker_pids() const { return child_pids(pid()); }

std::vector<pid_t> NginxServer::reload(Deadline deadline) {
    std::vector<pid_t> old_workers = worker_pids();
    if (!process().send_signal(SIGHUP)) return {};
    std::vector<pid_t> fresh;
    bool done = wait_until(
        [&] {
            fresh = worker_pids();
            if (fresh.empty()) return false;
            for (pid_t pid : fresh) {
                if (std::find(old_workers.begin(), old_workers.end(), pid) != old_workers.end()) {
                    return false;
                }
            }
            return true;
        },
        deadline, std::chrono::milliseconds(20));
    return done ? fresh : std::vector<pid_t>{};
}

}  // namespace passport::testing
