// Injection from inside a private cgroup namespace, as the agent runs in a pod: the agent is
// moved into a cgroup of its own, started under `unshare --cgroup --mount` with cgroup2 mounted
// again over the host's mount (so its /sys/fs/cgroup root is the namespace's own cgroup), and:
//  - finds the host's cgroup v2 root by itself (a cgroup2 made in the cgroup namespace of pid 1
//    or of another process in the host's, with the host PID namespace), and a traced client OUTSIDE
//    the namespace gets the header to its callee;
//  - with the host's cgroup2 mounted at a path of its own (as the Helm chart mounts the host's
//    /sys/fs/cgroup at /host/sys/fs/cgroup), attaches there;
//  - says `[no] injection` when no host root is reachable (a private PID namespace too), or
//    when --cgroup-root names the namespace's root.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The host's cgroup v2 root: the first cgroup2 mount without cgroup.type (only the hierarchy's
// root lacks it, https://docs.kernel.org/admin-guide/cgroup-v2.html). Empty when none.
std::filesystem::path host_cgroup2() {
    std::ifstream in("/proc/self/mounts");
    std::string dev, mnt, type, rest;
    while (in >> dev >> mnt >> type) {
        std::getline(in, rest);
        if (type == "cgroup2" && !std::filesystem::exists(mnt + "/cgroup.type")) return mnt;
    }
    return {};
}

ChildOptions child(std::vector<std::string> argv, std::map<std::string, std::string> env = {}) {
    ChildOptions o;
    o.argv = std::move(argv);
    o.env = std::move(env);
    return o;
}

// Moves itself into $POD_CGROUP, enters a new cgroup and mount namespace (and a PID namespace
// with $POD_PIDNS), optionally bind-mounts the host's cgroup2 at $POD_HOST_BIND, replaces the
// cgroup2 mount at $POD_HOST_CGROUP by a new one (rooted at the namespace's root, as a container
// runtime mounts it) and execs "$@". Without a PID namespace the
// exec chain keeps one pid, so SIGINT reaches the agent itself.
constexpr const char* kPodScript = R"(set -e
echo $$ > "$POD_CGROUP/cgroup.procs"
inner='set -e
if [ -n "$POD_HOST_BIND" ]; then mkdir -p "$POD_HOST_BIND"; mount --bind "$POD_HOST_CGROUP" "$POD_HOST_BIND"; fi
umount -l "$POD_HOST_CGROUP"; mount -t cgroup2 cgroup2 "$POD_HOST_CGROUP"
exec "$@"'
if [ -n "$POD_PIDNS" ]; then
  exec unshare --cgroup --mount --pid --fork --mount-proc sh -c "$inner" sh "$@"
fi
exec unshare --cgroup --mount sh -c "$inner" sh "$@"
)";

// The verifying server of the injection tests (fixtures/inject_server.py): one JSON line per
// request, with the X-Amzn-Trace-Id values it received.
class Callee {
  public:
    explicit Callee(const std::filesystem::path& dump) {
        std::filesystem::create_directories(dump);
        proc_ = std::make_unique<ChildProcess>(
            child({"python3", fixture("inject_server.py").string(), dump.string(), "0"}));
        auto m =
            proc_->wait_for_line(Stream::kStdout, std::regex("listening (\\d+)"), deadline_in(20s));
        if (!m) throw std::runtime_error("inject_server did not start: " + proc_->describe());
        port_ = m->groups[1];
    }
    const std::string& port() const { return port_; }
    // The request whose target holds `tag`, once it arrived.
    std::optional<json> wait_request(const std::string& tag) {
        std::optional<json> got;
        wait_until(
            [&] {
                for (const auto& l : proc_->lines(Stream::kStdout)) {
                    if (l.empty() || l[0] != '{') continue;
                    json j = json::parse(l);
                    if (j["target"].get<std::string>().find(tag) != std::string::npos) got = j;
                }
                return got.has_value();
            },
            deadline_in(30s));
        return got;
    }

  private:
    std::unique_ptr<ChildProcess> proc_;
    std::string port_;
};

class CgroupNsE2e : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        host_ = host_cgroup2();
        ASSERT_FALSE(host_.empty()) << "no cgroup v2 root mounted: injection needs one";
        pod_cgroup_ = host_ / ("passport-e2e-" + unique_tag());
        ASSERT_TRUE(std::filesystem::create_directory(pod_cgroup_)) << pod_cgroup_;
    }

    void TearDown() override {
        if (agent_) {
            AgentExit exit = agent_->stop();
            EXPECT_TRUE(exit.status.success()) << exit.status.describe() << "\n"
                                               << tail(exit.stderr_text);
            agent_.reset();
        }
        E2eTest::TearDown();
        if (!pod_cgroup_.empty()) {
            // Empty once every process in it was reaped.
            EXPECT_TRUE(
                wait_until([&] { return ::rmdir(pod_cgroup_.c_str()) == 0; }, deadline_in(10s)))
                << "cgroup " << pod_cgroup_ << " left behind: " << std::strerror(errno);
        }
    }

    std::map<std::string, std::string> pod_env(const std::string& host_bind, bool pidns) const {
        return {{"POD_CGROUP", pod_cgroup_.string()},
                {"POD_HOST_CGROUP", host_.string()},
                {"POD_HOST_BIND", host_bind},
                {"POD_PIDNS", pidns ? "1" : ""}};
    }

    std::vector<std::string> pod_argv(std::vector<std::string> agent_args) const {
        std::vector<std::string> argv = {"-c", kPodScript, "sh", agent_path()};
        argv.insert(argv.end(), agent_args.begin(), agent_args.end());
        argv.insert(argv.end(), {"--sampling-rules", rules_path().string()});
        return argv;
    }

    // The agent in the pod, running until the test ends (SIGINT then).
    AgentRunner& start_pod_agent(std::vector<std::string> args, const std::string& host_bind) {
        AgentOptions o;
        o.agent_path = "/bin/sh";
        o.args = pod_argv(std::move(args));
        o.env = pod_env(host_bind, false);
        agent_ = std::make_unique<AgentRunner>(collector(), std::move(o));
        return *agent_;
    }

    // The agent in the pod for one second; returns its stderr once it exited.
    std::string run_pod_agent_briefly(std::vector<std::string> args, bool pidns) {
        args.insert(args.end(), {"--duration", "1", "--exe", "passport-e2e-no-such-program",
                                 "--daemon-address", collector().address()});
        std::vector<std::string> argv = pod_argv(std::move(args));
        argv.insert(argv.begin(), "/bin/sh");
        ChildProcess agent(child(argv, pod_env("", pidns)));
        auto status = agent.wait_exit(deadline_in(60s));
        EXPECT_TRUE(status && status->success()) << agent.describe();
        return agent.text(Stream::kStderr);
    }

    // The agent's cgroup namespace differs from this test's, and its cgroup is the pod's.
    void expect_in_pod(pid_t pid) {
        struct stat mine {
        }, theirs{};
        ASSERT_EQ(::stat("/proc/self/ns/cgroup", &mine), 0);
        ASSERT_EQ(::stat(("/proc/" + std::to_string(pid) + "/ns/cgroup").c_str(), &theirs), 0);
        EXPECT_NE(mine.st_ino, theirs.st_ino) << "the agent is not in a cgroup namespace";
        std::ifstream procs(pod_cgroup_ / "cgroup.procs");
        std::set<pid_t> in_pod;
        for (pid_t p = 0; procs >> p;) in_pod.insert(p);
        EXPECT_TRUE(in_pod.count(pid)) << "the agent is not in " << pod_cgroup_;
    }

    // A callee, and a caller that calls it for each /call/TAG it serves: both outside the pod.
    void start_caller_and_callee() {
        callee_ = std::make_unique<Callee>(dir().path() / "dump");
        caller_ = std::make_unique<ChildProcess>(
            child({"python3", fixture("caller_server.py").string(), "127.0.0.1", callee_->port()}));
        auto m = caller_->wait_for_line(Stream::kStdout, std::regex("listening on port (\\d+)"),
                                        deadline_in(20s));
        ASSERT_TRUE(m) << caller_->describe();
        caller_port_ = m->groups[1];
    }

    // The traced caller calls the callee: the header must arrive, and the caller's document at
    // the collector.
    void expect_injection_outside() {
        const std::string tag = unique_tag();
        auto resp = http_get("http://127.0.0.1:" + caller_port_ + "/call/" + tag);
        EXPECT_EQ(resp.status, 200) << caller_->describe();
        auto got = callee_->wait_request(tag);
        ASSERT_TRUE(got) << caller_->describe();
        ASSERT_EQ((*got)["trace"].size(), 1u) << "no header injected: " << got->dump() << "\n"
                                              << tail(agent_->stderr_text());
        EXPECT_TRUE(std::regex_match((*got)["trace"][0].get<std::string>(),
                                     std::regex("Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{"
                                                "16};Sampled=[01?]")))
            << got->dump();
        EXPECT_TRUE(wait_for_url("/call/" + tag)) << agent_diagnostics();
    }

    std::unique_ptr<Callee> callee_;
    std::unique_ptr<ChildProcess> caller_;
    std::string caller_port_;
    std::filesystem::path host_;
    std::filesystem::path pod_cgroup_;
    std::unique_ptr<AgentRunner> agent_;
};

TEST_F(CgroupNsE2e, AgentInAPrivateCgroupNamespaceFindsTheHostRootAndInjectsOutside) {
    start_caller_and_callee();
    auto& agent = start_pod_agent({"--pid", std::to_string(caller_->pid())}, "");
    expect_in_pod(agent.pid());
    EXPECT_NE(agent.stderr_text().find("[yes] injection"), std::string::npos)
        << tail(agent.stderr_text());
    // pid 1's namespace when it is in reach; any other process's in the host's namespace when
    // not (a Linux security module may keep pid 1 out of reach).
    EXPECT_TRUE(std::regex_search(
        agent.stderr_text(),
        std::regex("sock_ops on cgroup2 of pid [0-9]+'s cgroup namespace \\(host cgroup root\\)")))
        << tail(agent.stderr_text());
    expect_injection_outside();
}

TEST_F(CgroupNsE2e, HostCgroupMountedAtAPathOfItsOwnIsFoundAndUsed) {
    const std::string host_bind = (dir().path() / "host" / "sys" / "fs" / "cgroup").string();
    start_caller_and_callee();
    auto& agent = start_pod_agent({"--pid", std::to_string(caller_->pid())}, host_bind);
    expect_in_pod(agent.pid());
    EXPECT_NE(agent.stderr_text().find("sock_ops on " + host_bind + " (host cgroup root)"),
              std::string::npos)
        << tail(agent.stderr_text());
    expect_injection_outside();
}

TEST_F(CgroupNsE2e, NoHostRootReachableSaysNo) {
    // A private PID namespace too: pid 1 is in the pod's cgroup namespace, nothing reaches the
    // host's root.
    const std::string err = run_pod_agent_briefly({}, true);
    EXPECT_EQ(err.find("[yes] injection"), std::string::npos) << err;
    EXPECT_NE(err.find("[no]  injection - " + host_.string() +
                       " is a cgroup namespace root, not the host's: pass --cgroup-root"),
              std::string::npos)
        << err;
}

TEST_F(CgroupNsE2e, CgroupRootNamingTheNamespaceRootSaysNo) {
    const std::string err = run_pod_agent_briefly({"--cgroup-root", host_.string()}, false);
    EXPECT_EQ(err.find("[yes] injection"), std::string::npos) << err;
    EXPECT_NE(err.find("[no]  injection - --cgroup-root " + host_.string() +
                       " is a cgroup namespace root, not the host's"),
              std::string::npos)
        << err;
}

}  // namespace
}  // namespace passport::testing::e2e
