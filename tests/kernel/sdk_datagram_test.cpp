// Kernel layer: a traced process that sends X-Ray daemon datagrams (the header
// {"format":"json","version":1} first, as every X-Ray SDK writes it) is reported once as
// PP_EV_SDK_DATAGRAM, whichever send syscall it uses; other datagrams, TCP traffic and unselected
// processes are not. Real programs (forked children) on loopback UDP, the real BPF object. Root.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <bpf/libbpf.h>

#include "agent/bpf_loader.hpp"
#include "agent/kernel_features.hpp"
#include "passport/abi.h"
#include "tests/support/gated_child.hpp"
#include "userspace/events/decoder.hpp"

namespace passport::agent {
namespace {

using namespace std::chrono_literals;
using passport::testing::GatedChild;

const std::string kCompact = R"({"format":"json","version":1})"
                             "\n{\"name\":\"svc\"}";
const std::string kSpaced = R"({"format": "json", "version": 1})"
                            "\n{\"name\":\"svc\"}";

enum class Send { kSendto, kSendmsg, kWrite, kWritev, kSend, kSendmmsg };

// A UDP receiver and a sender socket on 127.0.0.1 (the sender connected for write/writev/send).
struct UdpPair {
    int rx = -1;
    int tx = -1;
    sockaddr_in to{};
    explicit UdpPair(bool connect_tx) {
        rx = ::socket(AF_INET, SOCK_DGRAM, 0);
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof to;
        if (::bind(rx, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 ||
            ::getsockname(rx, reinterpret_cast<sockaddr*>(&to), &len) != 0)
            ::_exit(3);
        tx = ::socket(AF_INET, SOCK_DGRAM, 0);
        if (connect_tx && ::connect(tx, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
            ::_exit(4);
    }
};

bool send_one(UdpPair& u, Send how, const std::string& d) {
    auto* base = const_cast<char*>(d.data());
    iovec iov{base, d.size()};
    msghdr mh{};
    mh.msg_name = &u.to;
    mh.msg_namelen = sizeof u.to;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    const auto n = static_cast<ssize_t>(d.size());
    switch (how) {
        case Send::kSendto:
            return ::sendto(u.tx, base, d.size(), 0, reinterpret_cast<sockaddr*>(&u.to),
                            sizeof u.to) == n;
        case Send::kSendmsg:
            return ::sendmsg(u.tx, &mh, 0) == n;
        case Send::kWrite:
            return ::write(u.tx, base, d.size()) == n;
        case Send::kWritev:
            return ::writev(u.tx, &iov, 1) == n;
        case Send::kSend:
            return ::send(u.tx, base, d.size(), 0) == n;
        case Send::kSendmmsg: {
            mmsghdr m{};
            m.msg_hdr = mh;
            return ::sendmmsg(u.tx, &m, 1, 0) == 1;
        }
    }
    return false;
}

// The child's traffic: datagrams that are not for the daemon, then `header` twice, then a TCP
// connection's bytes that start like it.
void child_traffic(Send how, const std::string& header) {
    UdpPair u(how == Send::kWrite || how == Send::kWritev || how == Send::kSend);
    for (const std::string& other : {std::string("hello"),
                                     std::string(R"({"format":"xml","version":1})"
                                                 "\n{}"),
                                     std::string(R"({"format":"json","version":2})"
                                                 "\n{}")})
        if (!send_one(u, how, other)) ::_exit(5);
    if (!send_one(u, how, header) || !send_one(u, how, header)) ::_exit(6);
    ::close(u.tx);
    ::close(u.rx);
}

struct Collected {
    std::vector<events::SdkDatagram> sdk;
    Counters counters;
};

int collect_cb(void* ctx, void* data, size_t size) {
    auto* c = static_cast<Collected*>(ctx);
    events::Event e;
    if (events::decode_counted({static_cast<const uint8_t*>(data), size}, c->counters, e))
        if (const auto* d = std::get_if<events::SdkDatagram>(&e)) c->sdk.push_back(*d);
    return 0;
}

class KernelSdkDatagram : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
        probe_kernel_features();
        ProbeConfig c;
        c.trace_all = false;
        c.ringbuf_bytes = 4 * 1024 * 1024;
        auto p = BpfProbes::load(c);
        ASSERT_TRUE(p.ok()) << p.error();
        probes_ = std::move(*p);
    }
    // Every SdkDatagram of `tgid` in the ring, after the child has exited (so all are there).
    std::vector<events::SdkDatagram> reports_of(uint32_t tgid) {
        Collected c;
        ring_buffer* rb = ring_buffer__new(probes_->events_map_fd(), collect_cb, &c, nullptr);
        EXPECT_NE(rb, nullptr);
        if (!rb) return {};
        ring_buffer__consume(rb);
        ring_buffer__free(rb);
        std::vector<events::SdkDatagram> out;
        for (const auto& d : c.sdk)
            if (d.tgid == tgid) out.push_back(d);
        return out;
    }
    std::unique_ptr<BpfProbes> probes_;
};

struct Case {
    Send how;
    uint8_t syscall;
    const char* name;
};

TEST_F(KernelSdkDatagram, ReportedOnceWhicheverSyscallSendsIt) {
    const std::vector<Case> cases = {
        {Send::kSendto, PP_SYS_SENDTO, "sendto"},
        {Send::kSendmsg, PP_SYS_SENDMSG, "sendmsg (Node's dgram)"},
        {Send::kWrite, PP_SYS_WRITE, "write on a connected socket (Go's net.Conn)"},
        {Send::kWritev, PP_SYS_WRITEV, "writev on a connected socket"},
        {Send::kSend, PP_SYS_SENDTO, "send (the sendto syscall)"},
        {Send::kSendmmsg, PP_SYS_SENDMMSG, "sendmmsg"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        GatedChild child([&] { child_traffic(c.how, kCompact); });
        ASSERT_TRUE(probes_->select_pid(child.pid()).ok());
        ASSERT_EQ(child.run(), 0);
        auto got = reports_of(child.pid());
        ASSERT_EQ(got.size(), 1u) << "one report per process, for the daemon datagram only";
        EXPECT_EQ(got[0].syscall, c.syscall);
        EXPECT_FALSE(got[0].spaced);
        EXPECT_EQ(got[0].tid, child.pid());
        EXPECT_GT(got[0].ts_ns, 0u);
    }
}

TEST_F(KernelSdkDatagram, TheSpacedHeaderOfGoAndJavaToo) {
    GatedChild child([&] { child_traffic(Send::kSendto, kSpaced); });
    ASSERT_TRUE(probes_->select_pid(child.pid()).ok());
    ASSERT_EQ(child.run(), 0);
    auto got = reports_of(child.pid());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(got[0].spaced);
}

TEST_F(KernelSdkDatagram, UnselectedProcessesAndOtherTrafficAreNotReported) {
    GatedChild unselected([&] { child_traffic(Send::kSendmsg, kCompact); });
    ASSERT_EQ(unselected.run(), 0);
    EXPECT_TRUE(reports_of(unselected.pid()).empty()) << "not selected";

    // A selected process whose TCP bytes start like the header: TCP is not looked at.
    GatedChild tcp([&] {
        int ls = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t al = sizeof a;
        if (::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(ls, 1) != 0 ||
            ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &al) != 0)
            ::_exit(3);
        int c = ::socket(AF_INET, SOCK_STREAM, 0);
        if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(4);
        if (::send(c, kCompact.data(), kCompact.size(), 0) != static_cast<ssize_t>(kCompact.size()))
            ::_exit(5);
        ::close(c);
        ::close(ls);
    });
    ASSERT_TRUE(probes_->select_pid(tcp.pid()).ok());
    ASSERT_EQ(tcp.run(), 0);
    EXPECT_TRUE(reports_of(tcp.pid()).empty()) << "TCP bytes are not datagrams";
}

}  // namespace
}  // namespace passport::agent
