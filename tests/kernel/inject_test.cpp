// Kernel layer: the injection programs use the writing thread's kernel trace context.
//
// thread_ctx is filled by the server-side context programs; here the test writes the entry for
// the client's thread itself (the map is the agent's, reached through the loader), so the
// "call made while serving a request" path is exercised on its own: the header on the wire
// carries the context's trace and sampling decision, and the INJECT report names the server
// request (connection + offset) the context belongs to.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/bpf_loader.hpp"
#include "agent/injection.hpp"
#include "agent/kernel_features.hpp"
#include "passport_bpf.skel.h"
#include "tests/support/child_process.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"
#include "userspace/events/decoder.hpp"

namespace passport::agent {
namespace {

using namespace std::chrono_literals;
using testing::ChildOptions;
using testing::ChildProcess;
using testing::deadline_in;
using testing::Stream;

std::filesystem::path fixture(const char* name) {
    return std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "e2e" / "fixtures" / name;
}

int collect(void* ctx, void* data, size_t size) {
    auto* out = static_cast<std::vector<events::Inject>*>(ctx);
    auto r = events::decode({static_cast<const uint8_t*>(data), size});
    if (r.ok())
        if (const auto* i = std::get_if<events::Inject>(&*r)) out->push_back(*i);
    return 0;
}

TEST(KernelInject, HeaderCarriesTheWritingThreadsContext) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
    KernelFeatures features = probe_kernel_features();
    if (!features.sk_msg || !features.sock_ops) GTEST_SKIP() << "kernel without sock_ops/sk_msg";
    testing::TempDir dir("passport-kinject-");
    std::filesystem::create_directories(dir.path() / "dump");
    std::filesystem::create_directories(dir.path() / "out");

    ChildOptions so;
    so.argv = {"python3", fixture("inject_server.py").string(), (dir.path() / "dump").string()};
    ChildProcess server(so);
    auto m =
        server.wait_for_line(Stream::kStdout, std::regex("listening (\\d+)"), deadline_in(20s));
    ASSERT_TRUE(m) << server.describe();

    auto go = dir.path() / "go";
    ChildOptions co;
    co.argv = {"python3",    fixture("inject_client.py").string(), "plain",
               m->groups[1], (dir.path() / "out").string(),        "--wait",
               go.string()};
    ChildProcess client(co);
    ASSERT_TRUE(client.wait_for_line(Stream::kStdout, std::regex("waiting"), deadline_in(20s)));

    ProbeConfig pc;
    pc.trace_all = false;
    pc.inject = true;
    auto probes = BpfProbes::load(pc);
    ASSERT_TRUE(probes.ok()) << probes.error();
    ASSERT_TRUE((*probes)->injection_loaded()) << (*probes)->injection_error();
    auto inj = Injection::attach(**probes, {}, find_cgroup_root(""));
    ASSERT_TRUE(inj.ok()) << inj.error();
    const auto pid = static_cast<uint32_t>(client.pid());
    ASSERT_TRUE((*probes)->select_pid(pid).ok());

    // The context a server request would have left on the client's main thread.
    pp_trace_ctx ctx{};
    ctx.trace_epoch = 0x5759e988;
    const uint8_t rnd[12] = {0xbd, 0x86, 0x2e, 0x3f, 0xe1, 0xbe,
                             0x46, 0xa9, 0x94, 0x27, 0x27, 0x93};
    std::memcpy(ctx.trace_rand, rnd, sizeof rnd);
    ctx.segment_id = 0x1122334455667788ULL;
    ctx.parent_id = 0x53995c3f42cd8ad8ULL;
    ctx.sampled = PP_SAMPLED_YES;
    ctx.source = PP_CTX_XRAY_HEADER;
    ctx.conn = {999, 5, 42};
    ctx.request_pos = 300;
    uint64_t key = (uint64_t{pid} << 32) | pid;
    ASSERT_EQ(bpf_map_update_elem(bpf_map__fd((*probes)->skeleton()->maps.thread_ctx), &key, &ctx,
                                  BPF_ANY),
              0);

    std::ofstream(go).put('\n');
    auto st = client.wait_exit(deadline_in(60s));
    ASSERT_TRUE(st && st->success()) << client.describe();

    std::vector<events::Inject> reports;
    ring_buffer* rb = ring_buffer__new((*probes)->events_map_fd(), collect, &reports, nullptr);
    ASSERT_NE(rb, nullptr);
    testing::wait_until(
        [&] {
            ring_buffer__poll(rb, 20);
            return reports.size() >= 2;
        },
        deadline_in(10s));
    ring_buffer__free(rb);
    auto counters = (*inj)->counters();
    inj->reset();

    ASSERT_EQ(reports.size(), 2u);
    std::ifstream sent_in(dir.path() / "out" / "sent-1.bin", std::ios::binary);
    std::stringstream sent;
    sent << sent_in.rdbuf();
    uint64_t expected_pos = 0;
    const uint64_t second_pos = sent.str().find("POST /plain2");
    for (const auto& r : reports) {
        EXPECT_EQ(r.tgid, pid);
        EXPECT_EQ(r.outcome, events::InjectOutcome::kInjected);
        EXPECT_TRUE(r.ctx_from_thread);
        EXPECT_EQ(r.trace_id, "1-5759e988-bd862e3fe1be46a994272793");
        EXPECT_EQ(r.segment_id, 0x1122334455667788ULL);
        EXPECT_EQ(r.sampled, events::Sampled::kYes);
        EXPECT_EQ(r.ctx_conn, (events::ConnKey{999, 5, 42}));
        EXPECT_EQ(r.ctx_request_pos, 300u);
        EXPECT_NE(r.subsegment_id, 0u);
        EXPECT_EQ(r.remote.port, std::stoi(m->groups[1]));
        EXPECT_EQ(r.app_pos, expected_pos)
            << "app bytes before the request, injected ones excluded";
        expected_pos = second_pos;
    }
    EXPECT_NE(reports[0].subsegment_id, reports[1].subsegment_id);
    EXPECT_EQ(counters[PP_INJC_INJECTED], 2u);

    // On the wire: the context's trace and decision, the reported subsegment ids as Parent.
    std::ifstream in(dir.path() / "dump" / "conn-1.bin", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string wire = ss.str();
    for (const auto& r : reports) {
        char parent[17];
        std::snprintf(parent, sizeof parent, "%016llx",
                      static_cast<unsigned long long>(r.subsegment_id));
        std::string line =
            std::string("X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=") +
            parent + ";Sampled=1\r\n";
        EXPECT_NE(wire.find(line), std::string::npos) << line << " not in\n" << wire;
    }
    server.stop();
}

}  // namespace
}  // namespace passport::agent
