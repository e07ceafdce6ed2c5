// Kernel layer: the real BPF programs, loaded and attached, observing sockets that child
// processes of this test create on loopback. Checks the raw events exactly (bytes, positions,
// roles, addresses), selection, fork inheritance, sockets opened before selection, the drop
// counter of a full ring, and that nothing stays attached afterwards. Needs root.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/kernel_features.hpp"
#include "tests/support/gated_child.hpp"
#include "userspace/events/decoder.hpp"

namespace passport::agent {
namespace {

using namespace std::chrono_literals;
using passport::testing::GatedChild;

// Server and client on 127.0.0.1 inside one process: one request, one response.
void loopback_exchange(const std::string& request, const std::string& resp_head,
                       const std::string& resp_body) {
    int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(ls, 4) != 0)
        ::_exit(3);
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &al);
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(4);
    int s = ::accept4(ls, nullptr, nullptr, 0);
    if (::send(c, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size()))
        ::_exit(5);
    std::string got(request.size(), '\0');
    size_t n = 0;
    while (n < got.size()) {
        ssize_t r = ::recv(s, got.data() + n, got.size() - n, 0);
        if (r <= 0) ::_exit(6);
        n += static_cast<size_t>(r);
    }
    iovec iov[2] = {{const_cast<char*>(resp_head.data()), resp_head.size()},
                    {const_cast<char*>(resp_body.data()), resp_body.size()}};
    if (::writev(s, iov, 2) != static_cast<ssize_t>(resp_head.size() + resp_body.size()))
        ::_exit(7);
    std::string back(resp_head.size() + resp_body.size(), '\0');
    n = 0;
    while (n < back.size()) {
        iovec riov{back.data() + n, back.size() - n};
        msghdr mh{};
        mh.msg_iov = &riov;
        mh.msg_iovlen = 1;
        ssize_t r = ::recvmsg(c, &mh, 0);
        if (r <= 0) ::_exit(8);
        n += static_cast<size_t>(r);
    }
    ::close(c);
    ::close(s);
    ::close(ls);
}

struct Collected {
    std::vector<events::Event> events;
    Counters counters;
};

int collect_cb(void* ctx, void* data, size_t size) {
    auto* c = static_cast<Collected*>(ctx);
    events::Event e;
    if (events::decode_counted({static_cast<const uint8_t*>(data), size}, c->counters, e))
        c->events.push_back(std::move(e));
    return 0;
}

class KernelProbes : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
        probe_kernel_features();  // mounts tracefs/bpffs when missing
    }
    static ProbeConfig selected_only(uint32_t ring_bytes = 16 * 1024 * 1024) {
        ProbeConfig c;
        c.trace_all = false;
        c.ringbuf_bytes = ring_bytes;
        return c;
    }
    std::unique_ptr<BpfProbes> load(const ProbeConfig& cfg = selected_only()) {
        auto p = BpfProbes::load(cfg);
        EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error());
        return p.ok() ? std::move(*p) : nullptr;
    }
    // Drains the ring until `done` holds or 5 s pass.
    void drain(BpfProbes& p, Collected& c, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 5000ms) {
        ring_buffer* rb = ring_buffer__new(p.events_map_fd(), collect_cb, &c, nullptr);
        ASSERT_NE(rb, nullptr);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done() && std::chrono::steady_clock::now() < deadline) ring_buffer__poll(rb, 20);
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
    }
    static std::vector<const events::Data*> data_of(const Collected& c, uint32_t tgid) {
        std::vector<const events::Data*> out;
        for (const auto& e : c.events)
            if (const auto* d = std::get_if<events::Data>(&e); d && d->conn.tgid == tgid)
                out.push_back(d);
        return out;
    }
};

std::set<std::string> loaded_prog_names() {
    std::set<std::string> names;
    uint32_t id = 0;
    while (bpf_prog_get_next_id(id, &id) == 0) {
        int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0) continue;
        bpf_prog_info info{};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) names.insert(info.name);
        ::close(fd);
    }
    return names;
}

// Ids of loaded programs named `name` (other agents on the machine may load their own).
std::set<uint32_t> loaded_prog_ids(const std::string& name) {
    std::set<uint32_t> ids;
    uint32_t id = 0;
    while (bpf_prog_get_next_id(id, &id) == 0) {
        int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0) continue;
        bpf_prog_info info{};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && name == info.name) ids.insert(id);
        ::close(fd);
    }
    return ids;
}

TEST_F(KernelProbes, LoadsAttachesAndLeavesNothingBehind) {
    const std::set<uint32_t> before = loaded_prog_ids("accept4_exit");
    std::set<uint32_t> ours;
    {
        auto p = load();
        ASSERT_TRUE(p);
        std::set<std::string> attached(p->attached().begin(), p->attached().end());
        for (const char* name :
             {"accept4_exit", "connect_exit", "read_enter", "writev_exit", "recvmsg_exit",
              "sendto_enter", "close_enter", "process_exec", "process_fork", "process_exit"})
            EXPECT_TRUE(attached.count(name)) << name << " not attached";
        EXPECT_TRUE(loaded_prog_names().count("accept4_exit"));
        for (uint32_t id : loaded_prog_ids("accept4_exit"))
            if (!before.count(id)) ours.insert(id);
        EXPECT_FALSE(ours.empty());
    }
    // The kernel frees a detached program asynchronously (after RCU grace periods, which take
    // seconds on a loaded machine): wait for ours to go, within a generous bound.
    auto ours_left = [&] {
        std::set<uint32_t> now = loaded_prog_ids("accept4_exit");
        for (uint32_t id : ours)
            if (now.count(id)) return true;
        return false;
    };
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (ours_left() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(ours_left()) << "programs left loaded after destruction";
}

TEST_F(KernelProbes, SelectedChildProducesExactEvents) {
    auto p = load();
    ASSERT_TRUE(p);
    const std::string req = "GET /kernel-test HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    GatedChild child([&] { loopback_exchange(req, head, "hello"); });
    ASSERT_TRUE(p->select_pid(static_cast<uint32_t>(child.pid())).ok());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    Collected c;
    auto tgid = static_cast<uint32_t>(child.pid());
    size_t closes = 0;
    drain(*p, c, [&] {
        closes = 0;
        for (const auto& e : c.events)
            if (const auto* cl = std::get_if<events::ConnClose>(&e); cl && cl->conn.tgid == tgid)
                closes++;
        return closes >= 2;
    });
    EXPECT_EQ(c.counters.get("decode.ok"), c.events.size());
    for (const auto& e : c.events)
        std::visit(
            [&](const auto& ev) {
                using T = std::decay_t<decltype(ev)>;
                if constexpr (std::is_same_v<T, events::ProcExec> ||
                              std::is_same_v<T, events::ProcExit> ||
                              std::is_same_v<T, events::Inject> ||
                              std::is_same_v<T, events::SdkDatagram> ||
                              std::is_same_v<T, events::GoHandoff>)
                    fprintf(stderr, "DBG proc %u\n", ev.tgid);
                else
                    fprintf(stderr, "DBG idx=%zu tgid=%u fd=%d (child %u)\n", e.index(),
                            ev.conn.tgid, ev.conn.fd, tgid);
            },
            e);

    // Two connections: the accepted (server) and the connected (client) socket.
    const events::ConnOpen* server = nullptr;
    const events::ConnOpen* client = nullptr;
    for (const auto& e : c.events)
        if (const auto* o = std::get_if<events::ConnOpen>(&e); o && o->conn.tgid == tgid) {
            if (o->role == events::Role::kServer) server = o;
            if (o->role == events::Role::kClient) client = o;
        }
    ASSERT_NE(server, nullptr);
    ASSERT_NE(client, nullptr);
    EXPECT_EQ(server->local.ip_string(), "127.0.0.1");
    EXPECT_EQ(server->local.port, client->remote.port);
    EXPECT_EQ(server->remote.port, client->local.port);
    EXPECT_NE(server->netns, 0u);

    std::string server_in, server_out, client_in, client_out;
    for (const auto* d : data_of(c, tgid)) {
        EXPECT_EQ(d->bytes.size(), d->len);
        EXPECT_LE(d->enter_ns, d->exit_ns);
        bool is_server = d->conn == server->conn;
        std::string& s =
            is_server ? (d->direction == events::Direction::kIngress ? server_in : server_out)
                      : (d->direction == events::Direction::kIngress ? client_in : client_out);
        EXPECT_EQ(d->pos, s.size()) << "positions are contiguous per direction";
        s += d->bytes;
    }
    EXPECT_EQ(client_out, req);
    EXPECT_EQ(server_in, req);
    EXPECT_EQ(server_out, head + "hello") << "writev segments captured in order";
    EXPECT_EQ(client_in, head + "hello") << "recvmsg captured";
    EXPECT_EQ(closes, 2u);
}

TEST_F(KernelProbes, UnselectedProcessProducesNothing) {
    auto p = load();
    ASSERT_TRUE(p);
    GatedChild child(
        [] { loopback_exchange("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", ""); });
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    Collected c;
    drain(
        *p, c, [] { return false; }, 1500ms);  // whole deadline: anything would have arrived
    for (const auto& e : c.events) {
        std::visit(
            [&](const auto& ev) {
                using T = std::decay_t<decltype(ev)>;
                if constexpr (std::is_same_v<T, events::ProcExec> ||
                              std::is_same_v<T, events::ProcExit> ||
                              std::is_same_v<T, events::Inject> ||
                              std::is_same_v<T, events::SdkDatagram> ||
                              std::is_same_v<T, events::GoHandoff>) {
                    EXPECT_NE(ev.tgid, static_cast<uint32_t>(child.pid()));
                } else {
                    EXPECT_NE(ev.conn.tgid, static_cast<uint32_t>(child.pid()))
                        << "event from an unselected process";
                }
            },
            e);
    }
}

TEST_F(KernelProbes, ForkedChildOfSelectedProcessIsTraced) {
    auto p = load();
    ASSERT_TRUE(p);
    GatedChild child([] {
        pid_t g = ::fork();
        if (g == 0) {
            loopback_exchange("GET /grandchild HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
                              "");
            ::_exit(0);
        }
        int st = 0;
        ::waitpid(g, &st, 0);
        // Report the grandchild's pid through the exit code's low byte is too small; use a file.
        FILE* f = std::fopen(("/tmp/pp-kt-" + std::to_string(::getpid())).c_str(), "w");
        std::fprintf(f, "%d", g);
        std::fclose(f);
    });
    ASSERT_TRUE(p->select_pid(static_cast<uint32_t>(child.pid())).ok());
    std::string path = "/tmp/pp-kt-" + std::to_string(child.pid());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    int grandchild = 0;
    FILE* f = std::fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fscanf(f, "%d", &grandchild), 1);
    std::fclose(f);
    std::remove(path.c_str());
    Collected c;
    drain(*p, c, [&] { return data_of(c, static_cast<uint32_t>(grandchild)).size() >= 4; });
    std::string seen;
    for (const auto* d : data_of(c, static_cast<uint32_t>(grandchild))) seen += d->bytes;
    EXPECT_NE(seen.find("GET /grandchild"), std::string::npos);
    EXPECT_FALSE(p->is_selected(static_cast<uint32_t>(grandchild))) << "exit removes the selection";
}

TEST_F(KernelProbes, SocketOpenedBeforeSelectionIsDiscoveredOnUse) {
    auto p = load();
    ASSERT_TRUE(p);
    int sv[2];
    // A connected loopback pair made before the child is selected.
    int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(ls, 1), 0);
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &al);
    sv[0] = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(::connect(sv[0], reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    sv[1] = ::accept(ls, nullptr, nullptr);
    GatedChild child([&] {
        const char msg[] = "GET /old HTTP/1.1\r\n\r\n";
        if (::write(sv[0], msg, sizeof msg - 1) != sizeof msg - 1) ::_exit(2);
    });
    ASSERT_TRUE(p->select_pid(static_cast<uint32_t>(child.pid())).ok());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    Collected c;
    auto tgid = static_cast<uint32_t>(child.pid());
    drain(*p, c, [&] { return !data_of(c, tgid).empty(); });
    bool unknown_open = false;
    for (const auto& e : c.events)
        if (const auto* o = std::get_if<events::ConnOpen>(&e); o && o->conn.tgid == tgid)
            unknown_open = o->role == events::Role::kUnknown && o->conn.fd == sv[0];
    EXPECT_TRUE(unknown_open);
    auto d = data_of(c, tgid);
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d[0]->bytes, "GET /old HTTP/1.1\r\n\r\n");
    EXPECT_EQ(d[0]->pos, 0u);
    ::close(sv[0]);
    ::close(sv[1]);
    ::close(ls);
}

TEST_F(KernelProbes, FullRingIsCountedNotSilent) {
    auto p = load(selected_only(4096 * 4));
    ASSERT_TRUE(p);
    GatedChild child([] {
        for (int i = 0; i < 50; i++)
            loopback_exchange("GET /" + std::string(1000, 'a') + " HTTP/1.1\r\n\r\n",
                              "HTTP/1.1 204 No Content\r\n\r\n", "");
    });
    ASSERT_TRUE(p->select_pid(static_cast<uint32_t>(child.pid())).ok());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);  // nobody drains meanwhile: the 16 KiB ring overflows
    EXPECT_GT(p->drop_counts()[PP_DROP_RINGBUF_FULL], 0u);
}

TEST_F(KernelProbes, LargeWritesAreCappedAndCounted) {
    auto p = load();
    ASSERT_TRUE(p);
    std::string body(20000, 'b');
    GatedChild child([&] {
        loopback_exchange("POST / HTTP/1.1\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n", body);
    });
    ASSERT_TRUE(p->select_pid(static_cast<uint32_t>(child.pid())).ok());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    Collected c;
    auto tgid = static_cast<uint32_t>(child.pid());
    drain(*p, c, [&] {
        uint64_t out = 0;
        for (const auto* d : data_of(c, tgid))
            if (d->direction == events::Direction::kEgress && d->role == events::Role::kServer)
                out += d->len;
        return out >= body.size();
    });
    uint64_t total = 0;
    for (const auto* d : data_of(c, tgid)) {
        if (d->direction != events::Direction::kEgress || d->role != events::Role::kServer)
            continue;
        EXPECT_LE(d->bytes.size(), size_t{PP_MAX_CHUNK});
        EXPECT_EQ(d->pos, total);
        total += d->len;
    }
    EXPECT_GE(total, body.size());
    EXPECT_GT(p->drop_counts()[PP_DROP_TRUNCATED], 0u);
}

}  // namespace
}  // namespace passport::agent

namespace passport::agent {
namespace {

using passport::testing::GatedChild;

TEST_F(KernelProbes, LargeRequestHeadIsCapturedWholeThenCapped) {
    auto p = load();
    ASSERT_TRUE(p);
    // A 20 KB cookie (head read by large recv calls), then a 100 KB body: the head budget
    // (PP_HEAD_BUDGET) copies the first 32 KB of the request whole, the rest is a counted gap.
    const std::string head = "POST /big HTTP/1.1\r\nCookie: " + std::string(20000, 'c') +
                             "\r\nContent-Length: 100000\r\n\r\n";
    const std::string req = head + std::string(100000, 'b');
    GatedChild child([&] { loopback_exchange(req, "HTTP/1.1 204 No Content\r\n\r\n", ""); });
    const auto tgid = static_cast<uint32_t>(child.pid());
    ASSERT_TRUE(p->select_pid(tgid).ok());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    Collected c;
    auto seen_in = [&](events::Role role) {
        uint64_t n = 0;
        for (const auto* d : data_of(c, tgid)) {
            bool server_side = d->role == events::Role::kServer;
            if (server_side == (role == events::Role::kServer) &&
                d->direction == events::Direction::kIngress)
                n += d->len;
        }
        return n;
    };
    drain(*p, c, [&] { return seen_in(events::Role::kServer) >= req.size(); });
    std::string server_in;
    uint64_t next = 0;
    for (const auto* d : data_of(c, tgid)) {
        if (d->role != events::Role::kServer || d->direction != events::Direction::kIngress)
            continue;
        ASSERT_EQ(d->pos, next) << "pieces are contiguous";
        next += d->len;
        if (server_in.size() == d->pos) server_in += d->bytes;  // contiguous captured prefix
    }
    EXPECT_EQ(next, req.size());
    ASSERT_GE(server_in.size(), head.size()) << "the whole head was captured";
    EXPECT_EQ(server_in.substr(0, head.size()), head);
    EXPECT_LT(server_in.size(), req.size()) << "capture stops after the head budget";
    EXPECT_GT(p->drop_counts()[PP_DROP_TRUNCATED], 0u);
}

}  // namespace
}  // namespace passport::agent

namespace passport::agent {
namespace {

// The same exchange over ::1: addresses are reported in full and the payload is captured.
void loopback6_exchange(const std::string& request) {
    int ls = ::socket(AF_INET6, SOCK_STREAM, 0);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t al = sizeof a;
    if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(ls, 4) != 0)
        ::_exit(3);
    ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &al);
    int c = ::socket(AF_INET6, SOCK_STREAM, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(4);
    int s = ::accept(ls, nullptr, nullptr);
    if (::write(c, request.data(), request.size()) != static_cast<ssize_t>(request.size()))
        ::_exit(5);
    std::string got(request.size(), '\0');
    size_t n = 0;
    while (n < got.size()) {
        ssize_t r = ::read(s, got.data() + n, got.size() - n);
        if (r <= 0) ::_exit(6);
        n += static_cast<size_t>(r);
    }
    ::close(c);
    ::close(s);
    ::close(ls);
}

TEST_F(KernelProbes, Ipv6ConnectionsAreTracked) {
    auto p = load();
    ASSERT_TRUE(p);
    const std::string req = "GET /v6 HTTP/1.1\r\nHost: [::1]\r\n\r\n";
    GatedChild child([&] { loopback6_exchange(req); });
    const auto tgid = static_cast<uint32_t>(child.pid());
    ASSERT_TRUE(p->select_pid(tgid).ok());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    Collected c;
    drain(*p, c, [&] { return data_of(c, tgid).size() >= 2; });
    const events::ConnOpen* server = nullptr;
    for (const auto& e : c.events)
        if (const auto* o = std::get_if<events::ConnOpen>(&e);
            o && o->conn.tgid == tgid && o->role == events::Role::kServer)
            server = o;
    ASSERT_NE(server, nullptr);
    EXPECT_EQ(server->local.family, 10);
    EXPECT_EQ(server->local.ip_string(), "::1");
    EXPECT_EQ(server->remote.ip_string(), "::1");
    std::string server_in;
    for (const auto* d : data_of(c, tgid))
        if (d->conn == server->conn && d->direction == events::Direction::kIngress)
            server_in += d->bytes;
    EXPECT_EQ(server_in, req);
}

// Keys of a hash map whose key is (tgid << 32 | fd) that belong to tgid.
size_t map_entries_of(int map_fd, uint32_t tgid) {
    size_t n = 0;
    uint64_t key = 0, next = 0;
    uint64_t* prev = nullptr;
    while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
        if (static_cast<uint32_t>(next >> 32) == tgid) n++;
        key = next;
        prev = &key;
    }
    return n;
}

// The probes test a bitmap, the agent lists a hash: both follow select, fork and exit.
TEST_F(KernelProbes, SelectionBitmapFollowsSelectForkAndExit) {
    auto p = load();
    ASSERT_TRUE(p);
    GatedChild child([] {
        pid_t g = ::fork();
        if (g == 0) ::_exit(0);
        int st = 0;
        ::waitpid(g, &st, 0);
        FILE* f = std::fopen(("/tmp/pp-kb-" + std::to_string(::getpid())).c_str(), "w");
        std::fprintf(f, "%d", g);
        std::fclose(f);
    });
    const auto tgid = static_cast<uint32_t>(child.pid());
    EXPECT_FALSE(p->pid_bit_selected(tgid));
    ASSERT_TRUE(p->select_pid(tgid).ok());
    EXPECT_TRUE(p->pid_bit_selected(tgid));
    EXPECT_TRUE(p->is_selected(tgid));
    p->unselect_pid(tgid);
    EXPECT_FALSE(p->pid_bit_selected(tgid));
    EXPECT_FALSE(p->is_selected(tgid));
    ASSERT_TRUE(p->select_pid(tgid).ok());
    const std::string path = "/tmp/pp-kb-" + std::to_string(child.pid());
    ASSERT_TRUE(child.start());
    ASSERT_EQ(child.wait(), 0);
    int grandchild = 0;
    FILE* f = std::fopen(path.c_str(), "r");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fscanf(f, "%d", &grandchild), 1);
    std::fclose(f);
    std::remove(path.c_str());
    // Both exited: the exit program cleared the bit and the entry of each.
    EXPECT_FALSE(p->pid_bit_selected(tgid));
    EXPECT_FALSE(p->is_selected(tgid));
    EXPECT_FALSE(p->pid_bit_selected(static_cast<uint32_t>(grandchild)));
    EXPECT_FALSE(p->is_selected(static_cast<uint32_t>(grandchild)));
}

// An unselected process leaves nothing in the connection tables either (the exit programs
// return before any lookup), and a process unselected mid-life stops producing events at once.
TEST_F(KernelProbes, UnselectedProcessLeavesNoStateAndUnselectStopsCapture) {
    auto p = load();
    ASSERT_TRUE(p);
    int go2[2], done1[2];
    ASSERT_EQ(::pipe(go2), 0);
    ASSERT_EQ(::pipe(done1), 0);
    GatedChild child([&] {
        loopback_exchange("GET /first HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "");
        char c = 'd';
        if (::write(done1[1], &c, 1) != 1) ::_exit(2);
        if (::read(go2[0], &c, 1) != 1) ::_exit(2);
        loopback_exchange("GET /second HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", "");
    });
    const auto tgid = static_cast<uint32_t>(child.pid());
    ASSERT_TRUE(p->select_pid(tgid).ok());
    ASSERT_TRUE(child.start());
    char c;
    ASSERT_EQ(::read(done1[0], &c, 1), 1);
    p->unselect_pid(tgid);
    ASSERT_EQ(::write(go2[1], "g", 1), 1);
    ASSERT_EQ(child.wait(), 0);
    for (int fd : {go2[0], go2[1], done1[0], done1[1]}) ::close(fd);

    Collected col;
    drain(
        *p, col, [] { return false; }, 1500ms);  // whole deadline: anything would have arrived
    std::string seen;
    for (const auto* d : data_of(col, tgid)) seen += d->bytes;
    EXPECT_NE(seen.find("GET /first"), std::string::npos) << "captured while selected";
    EXPECT_EQ(seen.find("GET /second"), std::string::npos) << "captured after unselect";
    // The first exchange closed its sockets while selected; the second never got an entry.
    // (ignored_fds does hold the pipes the child used while selected: LRU, cleared at close.)
    EXPECT_EQ(map_entries_of(p->map_fd("conns"), tgid), 0u);

    // A process never selected: no events, no entries.
    GatedChild other(
        [] { loopback_exchange("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n", ""); });
    ASSERT_TRUE(other.start());
    ASSERT_EQ(other.wait(), 0);
    Collected col2;
    drain(
        *p, col2, [] { return false; }, 1000ms);
    EXPECT_TRUE(data_of(col2, static_cast<uint32_t>(other.pid())).empty());
    EXPECT_EQ(map_entries_of(p->map_fd("conns"), static_cast<uint32_t>(other.pid())), 0u);
    EXPECT_EQ(map_entries_of(p->map_fd("ignored_fds"), static_cast<uint32_t>(other.pid())), 0u);
}

}  // namespace
}  // namespace passport::agent
