// The container image (scripts/image.sh, built by the ctest image.build before this runs), run
// the way a Kubernetes DaemonSet runs it: podman with runc, the host's PID namespace, a PRIVATE
// cgroup namespace (as a pod has), the host's /sys/fs/cgroup read-only at /host/sys/fs/cgroup,
// /sys/kernel/tracing and /sys/fs/bpf mounted, named capabilities only, a read-only root file
// system with /tmp as tmpfs. It must trace a real server OUTSIDE the container into documents at
// a UDP listener, and inject X-Amzn-Trace-Id into that server's call to its callee.
// docs/deploy.md, "Container image".
#include <sys/stat.h>
#include <unistd.h>

#include <regex>

#include "tests/e2e/e2e_common.hpp"

#ifndef PASSPORT_IMAGE_ARCHIVE
#error "PASSPORT_IMAGE_ARCHIVE must be defined (tests/CMakeLists.txt does it)"
#endif

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// What the agent needs on this kernel for plaintext capture and injection (docs/deploy.md says
// why each; TLS uprobes need SYS_ADMIN here too).
constexpr const char* kCapabilities = "BPF,PERFMON,SYS_PTRACE,NET_ADMIN";

ChildOptions child(std::vector<std::string> argv) {
    ChildOptions o;
    o.argv = std::move(argv);
    return o;
}

// Runs a command to its end; its stdout, or nullopt (with the reason in `why`) when it failed.
std::optional<std::string> run(std::vector<std::string> argv, std::string& why) {
    ChildProcess p(child(std::move(argv)));
    auto status = p.wait_exit(deadline_in(300s));
    if (!status || !status->success()) {
        why = p.describe();
        return std::nullopt;
    }
    return p.text(Stream::kStdout);
}

std::string image_name() {
    static const std::string name = [] {
        std::string version = PASSPORT_IMAGE_ARCHIVE;
        version = version.substr(version.rfind("passport-") + 9);
        return "localhost/passport:" + version.substr(0, version.find(".oci.tar"));
    }();
    return name;
}

class ImageTest : public E2eTest {
  protected:
    static void SetUpTestSuite() {
        std::string why;
        if (!std::filesystem::exists(PASSPORT_IMAGE_ARCHIVE)) {
            load_error_ = std::string(PASSPORT_IMAGE_ARCHIVE) + " missing: run scripts/image.sh";
        } else if (!run({"podman", "load", "-i", PASSPORT_IMAGE_ARCHIVE}, why)) {
            load_error_ = "podman load failed: " + why;
        }
    }

    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        ASSERT_EQ(load_error_, "");
        container_ = "passport-image-test-" + unique_tag();
    }

    void TearDown() override {
        if (agent_) {
            AgentExit exit = agent_->stop();
            EXPECT_TRUE(exit.status.success()) << exit.status.describe() << "\n"
                                               << tail(exit.stderr_text);
            agent_.reset();
        }
        E2eTest::TearDown();
    }

    // podman run as a DaemonSet pod runs the image; `args` go to the agent.
    AgentRunner& start_container(const std::string& caps, std::vector<std::string> args) {
        AgentOptions o;
        o.agent_path = "/usr/bin/podman";
        o.args = {"--runtime", "runc", "run", "--rm", "--name", container_,
                  // podman's default limits exceed this machine's hard limits.
                  "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
                  // podman's default seccomp profile allows bpf() and perf_event_open() only
                  // with CAP_SYS_ADMIN; Kubernetes runs pods Unconfined unless told otherwise.
                  "--security-opt", "seccomp=unconfined", "--pid=host", "--network=host",
                  "--cgroupns=private", "--cap-drop=all", "--cap-add=" + caps, "--read-only",
                  "--tmpfs", "/tmp", "-v", "/sys/fs/bpf:/sys/fs/bpf", "-v",
                  "/sys/kernel/tracing:/sys/kernel/tracing", "-v",
                  "/sys/fs/cgroup:/host/sys/fs/cgroup:ro", "-v",
                  rules_path().string() + ":/etc/passport/sampling-rules.json:ro", image_name(),
                  "--sampling-rules", "/etc/passport/sampling-rules.json"};
        o.args.insert(o.args.end(), args.begin(), args.end());
        agent_ = std::make_unique<AgentRunner>(collector(), std::move(o));
        return *agent_;
    }

    // The container's process is in a cgroup namespace of its own, not this test's.
    void expect_private_cgroup_namespace() {
        std::string why;
        auto pid = run({"podman", "inspect", "--format", "{{.State.Pid}}", container_}, why);
        ASSERT_TRUE(pid) << why;
        struct stat mine {
        }, theirs{};
        ASSERT_EQ(::stat("/proc/self/ns/cgroup", &mine), 0);
        const std::string ns = "/proc/" + std::to_string(std::stoi(*pid)) + "/ns/cgroup";
        ASSERT_EQ(::stat(ns.c_str(), &theirs), 0) << ns;
        EXPECT_NE(mine.st_ino, theirs.st_ino);
    }

    std::string container_;
    std::unique_ptr<AgentRunner> agent_;
    static inline std::string load_error_;
};

// The verifying server of the injection tests: one JSON line per request it received.
std::optional<json> wait_request(ChildProcess& callee, const std::string& tag) {
    std::optional<json> got;
    wait_until(
        [&] {
            for (const auto& l : callee.lines(Stream::kStdout))
                if (!l.empty() && l[0] == '{' && l.find(tag) != std::string::npos)
                    got = json::parse(l);
            return got.has_value();
        },
        deadline_in(30s));
    return got;
}

TEST_F(ImageTest, DaemonSetLikeRunTracesAServerOutsideAndInjectsIntoItsCall) {
    std::filesystem::create_directories(dir().path() / "dump");
    ChildProcess callee(child(
        {"python3", fixture("inject_server.py").string(), (dir().path() / "dump").string(), "0"}));
    auto cm =
        callee.wait_for_line(Stream::kStdout, std::regex("listening (\\d+)"), deadline_in(20s));
    ASSERT_TRUE(cm) << callee.describe();
    ChildProcess caller(
        child({"python3", fixture("caller_server.py").string(), "127.0.0.1", cm->groups[1]}));
    auto m = caller.wait_for_line(Stream::kStdout, std::regex("listening on port (\\d+)"),
                                  deadline_in(20s));
    ASSERT_TRUE(m) << caller.describe();

    auto& agent = start_container(kCapabilities, {"--pid", std::to_string(caller.pid())});
    expect_private_cgroup_namespace();
    EXPECT_TRUE(std::regex_search(agent.stderr_text(),
                                  std::regex("\\[yes\\] injection - .*sock_ops on "
                                             "/host/sys/fs/cgroup[/a-z]* \\(host cgroup root\\)")))
        << tail(agent.stderr_text());

    const std::string tag = unique_tag();
    auto resp = http_get("http://127.0.0.1:" + m->groups[1] + "/call/" + tag);
    EXPECT_EQ(resp.status, 200) << caller.describe();
    auto got = wait_request(callee, tag);
    ASSERT_TRUE(got) << callee.describe();
    ASSERT_EQ((*got)["trace"].size(), 1u) << "no header injected: " << got->dump() << "\n"
                                          << tail(agent.stderr_text());
    auto doc = wait_for_url("/call/" + tag);
    ASSERT_TRUE(doc) << agent_diagnostics() << "\n" << tail(agent.stderr_text());
    // The header's Root is the trace of the caller's document.
    const std::string header = (*got)["trace"][0].get<std::string>();
    EXPECT_NE(header.find("Root=" + str(*doc, "trace_id") + ";"), std::string::npos)
        << header << "\n"
        << doc->dump();
}

TEST_F(ImageTest, WithoutNetAdminInjectionSaysNoAndTracingGoesOn) {
    auto& agent = start_container("BPF,PERFMON,SYS_PTRACE", {"--exe", "no-such-program"});
    EXPECT_NE(agent.stderr_text().find("[no]  injection - off: sock_ops/sk_msg programs cannot "
                                       "be loaded (a kernel without them, or no CAP_NET_ADMIN)"),
              std::string::npos)
        << tail(agent.stderr_text());
}

}  // namespace
}  // namespace passport::testing::e2e
