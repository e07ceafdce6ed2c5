#include "agent/identity/pod_facts.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace passport::identity {
namespace {

constexpr size_t kMaxNamespaceFile = 256;
constexpr size_t kMaxRuntimeBody = size_t{1} << 20;
constexpr long kRuntimeTimeoutMs = 1000;
constexpr auto kUtsTimeout = std::chrono::seconds(1);

// A file descriptor closed when it goes out of scope.
class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

std::string pid_path(const std::string& proc_root, uint32_t pid, const char* tail) {
    return proc_root + "/" + std::to_string(pid) + "/" + tail;
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {};
    struct stat sb {};
    if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return true;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// uname() inside the UTS namespace at `ns_path`, on a thread of its own: setns() moves only the
// calling thread, which ends right after, so the caller's namespaces never change.
std::string nodename_in(const std::string& ns_path) {
    auto done = std::make_shared<std::promise<std::string>>();
    std::future<std::string> result = done->get_future();
    std::thread reader([ns_path, done] {
        std::string name;
        Fd fd(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0 || ::setns(fd.get(), CLONE_NEWUTS) != 0) {
            spdlog::debug("identity: UTS namespace {}: {}", ns_path, std::strerror(errno));
        } else if (struct utsname u{}; ::uname(&u) == 0) {
            name = u.nodename;
        }
        done->set_value(std::move(name));
    });
    if (result.wait_for(kUtsTimeout) != std::future_status::ready) {
        reader.detach();  // it holds its own state and ends by itself
        return {};
    }
    reader.join();
    return result.get();
}

// `rel` opened below `root` as if `root` were "/" (absolute symlinks in the container resolve
// inside it, never to the agent's files), read-only, not blocking on a FIFO.
int open_in_root(const std::string& root, const char* rel) {
    Fd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) return -1;
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, dir.get(), rel, &how, sizeof(how)));
}

// At most `cap` bytes of a regular file.
std::optional<std::string> read_regular(int raw_fd, size_t cap) {
    Fd fd(raw_fd);
    struct stat st {};
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    std::string text(cap, '\0');
    const ssize_t n = ::read(fd.get(), text.data(), cap);
    if (n < 0) return std::nullopt;
    text.resize(static_cast<size_t>(n));
    return text;
}

// The container's /etc/hostname, which container runtimes bind-mount with the hostname they
// gave its UTS namespace: read without joining the namespace (no CAP_SYS_ADMIN needed). The
// agent's own hostname there means the container shares the node's file: not a pod's name.
std::string hostname_file_of(uint32_t pid, const std::string& proc_root) {
    auto text = read_regular(open_in_root(pid_path(proc_root, pid, "root"), "etc/hostname"),
                             kMaxNamespaceFile);
    if (!text) return {};
    while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
    struct utsname own {};
    if (::uname(&own) == 0 && *text == own.nodename) return {};  // the node's file, shared
    return is_dns1123_label(*text) ? *text : std::string();
}

// libcurl handle and its cleanup.
using Curl = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

struct Body {
    std::string data;
    bool too_big = false;
};

size_t on_body(char* ptr, size_t size, size_t nmemb, void* user) {
    auto* body = static_cast<Body*>(user);
    const size_t n = size * nmemb;
    if (body->data.size() + n > kMaxRuntimeBody) {
        body->too_big = true;
        return 0;  // aborts the transfer
    }
    body->data.append(ptr, n);
    return n;
}

// GET `path` over the unix socket: the body of a 200 answer, bounded in time and size.
std::optional<std::string> unix_get(const std::string& socket, const std::string& path) {
    Curl c(curl_easy_init(), &curl_easy_cleanup);
    if (!c) return std::nullopt;
    Body body;
    const std::string url = "http://localhost" + path;
    curl_easy_setopt(c.get(), CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
    curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.get(), CURLOPT_TIMEOUT_MS, kRuntimeTimeoutMs);
    curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, kRuntimeTimeoutMs);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
    const CURLcode rc = curl_easy_perform(c.get());
    long status = 0;
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
    if (body.too_big) {
        spdlog::warn("identity: {} {}: answer larger than {} bytes, ignored", socket, path,
                     kMaxRuntimeBody);
        return std::nullopt;
    }
    if (rc != CURLE_OK || status != 200) {
        spdlog::debug("identity: {} {}: {} (HTTP {})", socket, path, curl_easy_strerror(rc),
                      status);
        return std::nullopt;
    }
    return std::move(body.data);
}

bool is_socket(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool is_crio(const std::string& socket) {
    const size_t slash = socket.rfind('/');
    return socket.compare(slash == std::string::npos ? 0 : slash + 1, 4, "crio") == 0;
}

bool is_hex_id(const std::string& id) {
    return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
}

// One runtime's answer for the container; false when it has none.
bool ask_runtime(const std::string& socket, const std::string& container_id, NodePodFacts& out) {
    const bool crio = is_crio(socket);
    auto body = unix_get(socket, "/containers/" + container_id + (crio ? "" : "/json"));
    if (!body) return false;
    const auto doc = nlohmann::json::parse(*body, nullptr, false);
    const bool ok = crio ? runtime_facts_from_crio(doc, out) : runtime_facts_from_docker(doc, out);
    if (!ok) spdlog::warn("identity: {}: malformed answer for container {}", socket, container_id);
    return ok;
}

}  // namespace

RuntimeSockets runtime_sockets_from(const std::vector<std::string>& given) {
    if (!given.empty()) return {given};
    RuntimeSockets s;
    for (const char* prefix : {"", "/host"}) {
        for (const char* path :
             {"/run/docker.sock", "/run/podman/podman.sock", "/run/crio/crio.sock"})
            s.paths.push_back(std::string(prefix) + path);
    }
    return s;
}

std::string uts_hostname_of(uint32_t pid, const std::string& proc_root) {
    const std::string ns = pid_path(proc_root, pid, "ns/uts");
    if (same_file(ns, "/proc/self/ns/uts")) return {};  // the node's own hostname
    std::string name = nodename_in(ns);
    return name.empty() ? hostname_file_of(pid, proc_root) : name;
}

std::string sa_namespace_of(uint32_t pid, const std::string& proc_root) {
    const std::string root = pid_path(proc_root, pid, "root");
    for (const char* rel : {"var/run/secrets/kubernetes.io/serviceaccount/namespace",
                            "run/secrets/kubernetes.io/serviceaccount/namespace"}) {
        auto text = read_regular(open_in_root(root, rel), kMaxNamespaceFile);
        if (!text) continue;
        while (!text->empty() && (text->back() == '\n' || text->back() == ' ')) text->pop_back();
        if (is_dns1123_label(*text)) return *text;
        spdlog::debug("identity: pid {}: {} is not a namespace name", pid, rel);
    }
    return {};
}

bool runtime_facts_of(const std::string& container_id, const RuntimeSockets& sockets,
                      NodePodFacts& out) {
    if (!is_hex_id(container_id)) return false;
    return std::any_of(sockets.paths.begin(), sockets.paths.end(), [&](const std::string& s) {
        return is_socket(s) && ask_runtime(s, container_id, out);
    });
}

NodePodFacts read_node_pod_facts(uint32_t pid, const std::string& container_id,
                                 const RuntimeSockets& sockets, const std::string& proc_root) {
    NodePodFacts f;
    f.uts_hostname = uts_hostname_of(pid, proc_root);
    f.sa_namespace = sa_namespace_of(pid, proc_root);
    runtime_facts_of(container_id, sockets, f);
    return f;
}

}  // namespace passport::identity
