#include "agent/injection.hpp"
#include "agent/proc_list.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "passport_bpf.skel.h"
#include "userspace/common/clock.hpp"

#include <spdlog/spdlog.h>

namespace passport::agent {
namespace {

// A process's view of its network namespace's TCP sockets (/proc/PID/net/tcp and tcp6).
struct TcpTable {
    std::set<uint16_t> listening;              // local ports in LISTEN
    std::map<uint64_t, uint16_t> established;  // socket inode -> local port, ESTABLISHED only
};

void read_tcp_table(const std::string& path, TcpTable& t) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
        if (!(f >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
              inode))
            continue;
        auto colon = local.rfind(':');
        if (colon == std::string::npos) continue;
        char* end = nullptr;
        auto port = static_cast<uint16_t>(std::strtoul(local.c_str() + colon + 1, &end, 16));
        if (st == "0A") t.listening.insert(port);
        if (st == "01") t.established[std::strtoull(inode.c_str(), &end, 10)] = port;
    }
}

// Kernel's deny key for a remote address: IPv4 as ::ffff:a.b.c.d, full length.
pp_deny_key deny_key(const pp_endpoint& e) {
    pp_deny_key k{};
    k.prefixlen = 128;
    if (e.family == AF_INET) {
        k.addr[10] = k.addr[11] = 0xff;
        std::memcpy(&k.addr[12], e.addr, 4);
    } else {
        std::memcpy(k.addr, e.addr, 16);
    }
    return k;
}

bool endpoint_of(const sockaddr_storage& ss, pp_endpoint& e) {
    e = pp_endpoint{};
    auto fill = [&e](uint16_t family, in_port_t port, const void* addr, size_t len) {
        e.family = family;
        e.port = ntohs(port);
        std::memcpy(e.addr, addr, len);
        return true;
    };
    if (ss.ss_family == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
        return fill(AF_INET, a->sin_port, &a->sin_addr, sizeof a->sin_addr);
    }
    if (ss.ss_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        return fill(AF_INET6, a->sin6_port, &a->sin6_addr, sizeof a->sin6_addr);
    }
    return false;
}

std::string describe(const pp_endpoint& e) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(e.family == AF_INET ? AF_INET : AF_INET6, e.addr, buf, sizeof buf);
    return (e.family == AF_INET6 ? "[" + std::string(buf) + "]" : std::string(buf)) + ":" +
           std::to_string(e.port);
}

// Closes the fd on scope exit.
struct Fd {
    int fd = -1;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

const char* inject_counter_name(int c) {
    switch (c) {
        case PP_INJC_MARKED:
            return "marked";
        case PP_INJC_DENIED:
            return "denied";
        case PP_INJC_ADDED:
            return "sockets";
        case PP_INJC_EBUSY:
            return "ebusy";
        case PP_INJC_ADD_FAILED:
            return "sockhash_failed";
        case PP_INJC_INJECTED:
            return "injected";
        case PP_INJC_APP_HEADER:
            return "app_header";
        case PP_INJC_SKIP_SPLIT:
            return "skipped_split_head";
        case PP_INJC_SKIP_FAILED:
            return "skipped_helper_failed";
        case PP_INJC_NOT_HTTP:
            return "not_http";
        case PP_INJC_FRAMING_LOST:
            return "framing_lost";
        case PP_INJC_NO_STORAGE:
            return "no_storage";
        case PP_INJC_RESYNCED:
            return "resynced";
        case PP_INJC_SPLIT_INJECTED:
            return "split_heads_injected";
        case PP_INJC_LEFT_NOT_HTTP:
            return "left_not_http";
        case PP_INJC_LEFT_BLOCKING:
            return "left_blocking";
        case PP_INJC_LEFT_SNDBUF:
            return "left_sndbuf";
        case PP_INJC_KTHREAD:
            return "kernel_threads";
        case PP_INJC_NO_INJECT:
            return "process_no_inject";
        case PP_INJC_REWRITTEN:
            return "rewritten";
        default:
            return "unknown";
    }
}

Result<std::unique_ptr<Injection>> Injection::attach(BpfProbes& probes,
                                                     const std::vector<DenyEntry>& deny,
                                                     CgroupRoot root, bool trace_all) {
    if (!probes.injection_loaded())
        return make_error(probes.injection_error().empty() ? "injection programs not loaded"
                                                           : probes.injection_error());
    std::unique_ptr<Injection> inj(new Injection());
    inj->skel_ = probes.skeleton();
    inj->probes_ = &probes;
    inj->trace_all_ = trace_all;
    passport_bpf* skel = inj->skel_;

    for (const DenyEntry& d : deny) {
        uint8_t one = 1;
        if (d.is_port) {
            uint16_t port = d.port;
            if (bpf_map_update_elem(bpf_map__fd(skel->maps.inject_deny_ports), &port, &one,
                                    BPF_ANY) != 0)
                return make_error(std::string("inject deny port map: ") + std::strerror(errno));
            continue;
        }
        pp_deny_key k{};
        if (d.family == AF_INET) {
            k.addr[10] = k.addr[11] = 0xff;
            std::memcpy(&k.addr[12], d.addr, 4);
            k.prefixlen = 96 + d.prefix;
        } else {
            std::memcpy(k.addr, d.addr, 16);
            k.prefixlen = d.prefix;
        }
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.inject_deny_cidrs), &k, &one, BPF_ANY) != 0)
            return make_error(std::string("inject deny CIDR map: ") + std::strerror(errno));
    }

    // sk_msg on the sockhash: the map holds it; it goes when the map is freed at exit.
    inj->msg_prog_fd_ = bpf_program__fd(skel->progs.inject_msg);
    inj->sockhash_fd_ = bpf_map__fd(skel->maps.inject_socks);
    if (bpf_prog_attach(inj->msg_prog_fd_, inj->sockhash_fd_, BPF_SK_MSG_VERDICT, 0) != 0)
        return make_error(std::string("attach sk_msg to the sockhash: ") + std::strerror(errno));

    // sock_ops on the cgroup v2 root: every socket of every process passes it; the program
    // itself keeps only selected processes.
    if (root.fd.get() < 0) return make_error("no cgroup v2 root: " + root.why_not);
    inj->cgroup_path_ = root.path;
    inj->cgroup_fd_ = root.fd.release();
    inj->sockops_link_ = bpf_program__attach_cgroup(skel->progs.inject_sockops, inj->cgroup_fd_);
    // Only through a bpf_link (Linux 5.7 or later), which goes with the agent however it ends: a
    // plain attachment would stay on the cgroup after a SIGKILL, with no agent reading its
    // reports.
    if (!inj->sockops_link_)
        return make_error("attach sock_ops to cgroup " + inj->cgroup_path_ +
                          " through a bpf_link: " + std::strerror(errno));
    return inj;
}

// An adopted socket the sk_msg program found it must leave (adopted sockets have no
// header-option callback to leave by themselves): remove it from the sockhash.
void Injection::remove_socket(uint64_t cookie) {
    if (sockhash_fd_ >= 0 && bpf_map_delete_elem(sockhash_fd_, &cookie) == 0) adopt_.removed++;
}

Injection::~Injection() {
    if (sockops_link_) bpf_link__destroy(sockops_link_);
    if (msg_prog_fd_ >= 0 && sockhash_fd_ >= 0)
        bpf_prog_detach2(msg_prog_fd_, sockhash_fd_, BPF_SK_MSG_VERDICT);
    if (cgroup_fd_ >= 0) ::close(cgroup_fd_);
}

bool Injection::adoptable(uint32_t pid) const {
    if (pid == 0 || pid == static_cast<uint32_t>(::getpid())) return false;
    if (probes_->no_inject(pid)) return false;
    return trace_all_ || probes_->is_selected(pid);
}

bool Injection::denied(const pp_endpoint& remote) const {
    uint8_t v = 0;
    uint16_t port = remote.port;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.inject_deny_ports), &port, &v) == 0)
        return true;
    pp_deny_key k = deny_key(remote);
    return bpf_map_lookup_elem(bpf_map__fd(skel_->maps.inject_deny_cidrs), &k, &v) == 0;
}

namespace {

// The fds of a process (its /proc directory) that are sockets, with their inodes.
std::vector<std::pair<int, unsigned long long>> socket_fds(const std::string& proc) {
    std::vector<std::pair<int, unsigned long long>> socks;  // fd, socket inode
    DIR* d = ::opendir((proc + "/fd").c_str());
    if (!d) return socks;
    while (dirent* de = ::readdir(d)) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
        char target[64] = {};
        std::string link = proc + "/fd/" + de->d_name;
        ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
        unsigned long long inode = 0;
        if (n <= 0 || std::sscanf(target, "socket:[%llu]", &inode) != 1) continue;
        socks.emplace_back(std::atoi(de->d_name), inode);
    }
    ::closedir(d);
    return socks;
}

// The fds of pid's TCP client connections: ESTABLISHED sockets whose local port is not a
// listening port of the process's network namespace (an accepted connection has the listener's
// port). The process's sockets first: most processes that exec hold none (a shell's commands),
// and the namespace's TCP tables, which can hold tens of thousands of lines, are then not read.
std::vector<int> client_connection_fds(const std::string& proc) {
    std::vector<int> fds;
    const auto socks = socket_fds(proc);
    if (socks.empty()) return fds;
    TcpTable table;
    read_tcp_table(proc + "/net/tcp", table);
    read_tcp_table(proc + "/net/tcp6", table);
    for (const auto& [fd, inode] : socks) {
        auto it = table.established.find(inode);
        if (it == table.established.end() || table.listening.count(it->second)) continue;
        fds.push_back(fd);
    }
    return fds;
}

// The endpoints of an established TCP socket; false for anything else (checked again on the
// socket itself: the tables may be stale).
bool established_tcp_endpoints(int fd, pp_inject_adopt& a) {
    int proto = 0;
    socklen_t len = sizeof proto;
    tcp_info ti{};
    socklen_t tlen = sizeof ti;
    if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0 || proto != IPPROTO_TCP ||
        ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) != 0 ||
        ti.tcpi_state != TCP_ESTABLISHED)
        return false;
    sockaddr_storage la{}, ra{};
    socklen_t llen = sizeof la, rlen = sizeof ra;
    return ::getsockname(fd, reinterpret_cast<sockaddr*>(&la), &llen) == 0 &&
           ::getpeername(fd, reinterpret_cast<sockaddr*>(&ra), &rlen) == 0 &&
           endpoint_of(la, a.local) && endpoint_of(ra, a.remote);
}

uint32_t netns_of(const std::string& proc) {
    struct stat ns {};
    return ::stat((proc + "/ns/net").c_str(), &ns) == 0 ? static_cast<uint32_t>(ns.st_ino) : 0;
}

}  // namespace

// The egress offset the syscall probes counted on (pid, fd) so far (0 when they have not seen
// the connection): an adopted socket's bytes are numbered as the probes number them.
uint64_t Injection::probes_tx_pos(uint32_t pid, int fd) const {
    const int conns = bpf_map__fd(skel_->maps.conns);
    if (conns < 0 || bpf_map__value_size(skel_->maps.conns) != sizeof(pp_conn_state)) return 0;
    uint64_t key = (static_cast<uint64_t>(pid) << 32) | static_cast<uint32_t>(fd);
    pp_conn_state st{};
    return bpf_map_lookup_elem(conns, &key, &st) == 0 ? st.tx_pos : 0;
}

// Puts one socket (the agent's copy sock_fd of the process's fd) in inject_adopt and the
// sockhash. True when adopted.
bool Injection::join_sockhash(uint64_t cookie, const pp_inject_adopt& a, int sock_fd,
                              const std::string& what) {
    const int sockhash = bpf_map__fd(skel_->maps.inject_socks);
    const int adopt_map = bpf_map__fd(skel_->maps.inject_adopt);
    if (bpf_map_update_elem(adopt_map, &cookie, &a, BPF_ANY) != 0) {
        adopt_.failed++;
        spdlog::debug("inject {}: adopt map: {}", what, std::strerror(errno));
        return false;
    }
    auto value = static_cast<uint64_t>(sock_fd);  // the sockhash's values are 8 bytes
    if (bpf_map_update_elem(sockhash, &cookie, &value, BPF_NOEXIST) == 0) return true;
    int err = errno;
    bpf_map_delete_elem(adopt_map, &cookie);
    if (err == EEXIST) return false;
    if (err == EBUSY) {
        adopt_.ebusy++;
        spdlog::debug("inject {}: owned by another sk_msg user, left alone", what);
    } else {
        adopt_.failed++;
        spdlog::debug("inject {}: sockhash: {}", what, std::strerror(err));
    }
    return false;
}

// Adopts fd target_fd of process pid (reached through pidfd) when it is an established TCP
// client connection not yet in the sockhash, not denied and nonblocking. True when adopted.
bool Injection::adopt_socket(uint32_t pid, int pidfd, int target_fd, uint32_t netns) {
    Fd sock{static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target_fd, 0))};
    std::string what = "pid " + std::to_string(pid) + " fd " + std::to_string(target_fd);
    if (sock.fd < 0) {
        if (errno != EBADF) {  // EBADF: the process closed it meanwhile
            adopt_.failed++;
            spdlog::debug("inject {}: pidfd_getfd: {}", what, std::strerror(errno));
        }
        return false;
    }
    pp_inject_adopt a{};
    if (!established_tcp_endpoints(sock.fd, a)) return false;
    what += " " + describe(a.local) + " -> " + describe(a.remote);
    uint64_t cookie = 0;
    socklen_t clen = sizeof cookie;
    if (::getsockopt(sock.fd, SOL_SOCKET, SO_COOKIE, &cookie, &clen) != 0) {
        adopt_.failed++;
        spdlog::debug("inject {}: SO_COOKIE: {}", what, std::strerror(errno));
        return false;
    }
    uint64_t present = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.inject_socks), &cookie, &present) == 0)
        return false;  // marked at connect, or adopted
    if (denied(a.remote)) {
        adopt_.denied++;
        spdlog::debug("inject {}: denied, left alone", what);
        return false;
    }
    // A blocking socket in a sockhash can see EAGAIN from a blocking recv(); one joining from
    // userspace has no header-option callback to leave by in time: never adopted.
    if (const int fl = ::fcntl(sock.fd, F_GETFL); fl < 0 || !(fl & O_NONBLOCK)) {
        adopt_.blocking++;
        spdlog::debug("inject {}: blocking socket, left alone", what);
        return false;
    }
    a.netns = netns;
    a.app_pos = probes_tx_pos(pid, target_fd);
    if (!join_sockhash(cookie, a, sock.fd, what)) return false;
    adopt_.adopted++;
    spdlog::debug("inject {}: adopted", what);
    return true;
}

// Entries of adopted sockets that closed before sending anything: the sockhash dropped them.
void Injection::prune_adopt_map() {
    const int sockhash = bpf_map__fd(skel_->maps.inject_socks);
    const int adopt_map = bpf_map__fd(skel_->maps.inject_adopt);
    uint64_t key = 0, next = 0;
    std::vector<uint64_t> gone;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(adopt_map, prev, &next) == 0) {
        uint64_t v = 0;
        if (bpf_map_lookup_elem(sockhash, &next, &v) != 0 && errno == ENOENT) gone.push_back(next);
        key = next;
        prev = &key;
    }
    for (uint64_t c : gone) bpf_map_delete_elem(adopt_map, &c);
}

size_t Injection::adopt_process(uint32_t pid) {
    if (!skel_ || !probes_ || !adoptable(pid)) return 0;
    const std::string proc = "/proc/" + std::to_string(pid);
    const std::vector<int> fds = client_connection_fds(proc);
    if (fds.empty()) return 0;
    Fd pidfd{static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))};
    if (pidfd.fd < 0) {
        adopt_.failed += fds.size();
        spdlog::debug("inject pid {}: pidfd_open: {}", pid, std::strerror(errno));
        return 0;
    }
    const uint32_t netns = netns_of(proc);
    size_t adopted = 0;
    for (int target_fd : fds)
        if (adopt_socket(pid, pidfd.fd, target_fd, netns)) adopted++;
    prune_adopt_map();
    return adopted;
}

size_t Injection::adopt_selected() {
    size_t n = 0;
    for (uint32_t pid : list_pids())
        if (adoptable(pid)) n += adopt_process(pid);
    return n;
}

std::array<uint64_t, PP_INJC_COUNT> Injection::counters() const {
    if (!skel_) return {};
    return sum_percpu_counters<PP_INJC_COUNT>(bpf_map__fd(skel_->maps.inject_counters));
}

}  // namespace passport::agent
