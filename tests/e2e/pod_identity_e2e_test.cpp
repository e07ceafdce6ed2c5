// A pod's identity without an API server, from what the node shows of a real process:
//  - the process runs in a cgroup with the kubelet's systemd-driver layout on the cgroup v2
//    hierarchy (kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/
//    cri-containerd-<id>.scope; created for the test and removed at its end), giving pod uid and
//    container id;
//  - in a UTS namespace of its own whose hostname is the pod name, as the kubelet sets it
//    (https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#pod-hostname-and-subdomain-fields);
//  - in a mount namespace of its own with the service-account namespace file bind-mounted at
//    /var/run/secrets/kubernetes.io/serviceaccount/namespace (this host's /var/run is a symlink
//    to /run), as a pod's projected service-account volume provides it
//    (https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/#directly-accessing-the-rest-api).
// read_node_pod_facts and pod_identity_for give the pod name, namespace, pod uid and container
// id. A pod sharing the node's UTS namespace (hostNetwork) gets no pod name from its hostname.
// With a real Podman service on a private socket (Docker-compatible API), the runtime's labels
// of a container made with the kubelet's label keys name the pod, ahead of hostname and file.
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "agent/identity/pod_facts.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/k8s/pod_cgroup.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"
#include "userspace/identity/pod.hpp"
#include "userspace/k8s/pod_identity.hpp"

namespace passport::identity {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using passport::testing::cgroup2_root;
using passport::testing::ChildOptions;
using passport::testing::ChildProcess;
using passport::testing::deadline_in;
using passport::testing::PodCgroup;
using passport::testing::Stream;
using passport::testing::TempDir;
using passport::testing::write_text;

constexpr const char* kPodUid = "5d8f2c1a-3b4e-4f60-8a7b-9c0d1e2f3a4b";
constexpr const char* kPodName = "web-7d4b9c8f6-x2k4p";
constexpr const char* kNamespace = "shop";
const std::string kContainerId = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class PodIdentityE2E : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (cgroups, namespaces)";
        root_ = cgroup2_root();
        if (root_.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
        write_text(dir_.path() / "namespace", std::string(kNamespace) + "\n");
        write_text(dir_.path() / "hostname", std::string(kPodName) + "\n");
    }

    // `sleep` in the pod's namespaces: its own mount namespace with the namespace file
    // bind-mounted at the standard path, and (own_uts) its own UTS namespace named after the pod,
    // with (hostname_file) /etc/hostname bind-mounted as the runtimes do.
    std::unique_ptr<ChildProcess> start_pod_process(bool own_uts, bool hostname_file = true) {
        const std::string sa = "/run/secrets/kubernetes.io/serviceaccount";
        std::vector<std::string> argv = {"unshare", "--mount", "--propagation", "private"};
        std::string script;
        if (own_uts) {
            argv.emplace_back("--uts");
            script = "hostname " + std::string(kPodName) + " && ";
            if (hostname_file)
                script +=
                    "mount --bind " + (dir_.path() / "hostname").string() + " /etc/hostname && ";
        }
        script += "mount -t tmpfs tmpfs /run && mkdir -p " + sa + " && touch " + sa +
                  "/namespace && mount --bind " + (dir_.path() / "namespace").string() + " " + sa +
                  "/namespace && echo ready && exec sleep 300";
        argv.insert(argv.end(), {"sh", "-c", script});
        auto p = std::make_unique<ChildProcess>(ChildOptions{argv, {}, {}, {}, true});
        EXPECT_TRUE(p->wait_for_line(Stream::kStdout, std::regex("ready"), deadline_in(20s)))
            << p->describe();
        return p;
    }

    // The cgroup identity of `pid` as the agent reads it.
    static std::optional<k8s::PodIdentity> cgroup_of(pid_t pid) {
        return k8s::pod_identity_of_cgroup_file(
            read_text("/proc/" + std::to_string(pid) + "/cgroup"));
    }

    TempDir dir_{"passport-pod-identity-"};
    fs::path root_;
};

TEST_F(PodIdentityE2E, SimulatedPodWithoutApiServer) {
    PodCgroup cgroup(root_, kPodUid, kContainerId);
    auto proc = start_pod_process(true);
    ASSERT_TRUE(cgroup.add(proc->pid()));
    const auto cg = cgroup_of(proc->pid());
    ASSERT_TRUE(cg) << read_text("/proc/" + std::to_string(proc->pid()) + "/cgroup");
    EXPECT_EQ(cg->pod_uid, kPodUid);
    EXPECT_EQ(cg->container_id, kContainerId);
    EXPECT_EQ(cg->runtime, "containerd");

    const NodePodFacts facts =
        read_node_pod_facts(static_cast<uint32_t>(proc->pid()), cg->container_id,
                            RuntimeSockets{{(dir_.path() / "no-runtime.sock").string()}});
    EXPECT_EQ(facts.uts_hostname, kPodName);
    EXPECT_EQ(facts.sa_namespace, kNamespace);
    EXPECT_FALSE(facts.from_runtime);

    const PodIdentity id = pod_identity_for(*cg, nullptr, &facts, "e2e-cluster", "node-e2e");
    EXPECT_EQ(id.source, PodSource::kNode);
    EXPECT_EQ(id.pod, kPodName);
    EXPECT_EQ(id.namespace_name, kNamespace);
    EXPECT_EQ(id.pod_uid, kPodUid);
    EXPECT_EQ(id.container_id, kContainerId);
    EXPECT_EQ(id.cluster_name, "e2e-cluster");
    EXPECT_EQ(id.node_name, "node-e2e");
    char own[256] = {};
    ASSERT_EQ(::gethostname(own, sizeof(own) - 1), 0);
    EXPECT_NE(std::string(own), kPodName) << "the reader's own hostname is untouched";
}

TEST_F(PodIdentityE2E, HostNetworkPodHasNoPodNameFromItsHostname) {
    PodCgroup cgroup(root_, kPodUid, kContainerId);
    auto proc = start_pod_process(false);
    ASSERT_TRUE(cgroup.add(proc->pid()));
    const auto cg = cgroup_of(proc->pid());
    ASSERT_TRUE(cg);
    const NodePodFacts facts =
        read_node_pod_facts(static_cast<uint32_t>(proc->pid()), cg->container_id, {});
    EXPECT_EQ(facts.uts_hostname, "") << "the node's UTS namespace: its hostname is the node's";
    EXPECT_EQ(facts.sa_namespace, kNamespace);
    const PodIdentity id = pod_identity_for(*cg, nullptr, &facts, "", "node-e2e");
    EXPECT_EQ(id.pod, "");
    EXPECT_EQ(id.namespace_name, kNamespace);
    EXPECT_EQ(id.pod_uid, kPodUid);
}

// The calling thread without CAP_SYS_ADMIN in its effective set (capabilities are per thread;
// threads it starts inherit them), restored at the end of the scope.
class WithoutSysAdmin {
  public:
    WithoutSysAdmin() {
        header_.version = _LINUX_CAPABILITY_VERSION_3;
        if (::syscall(SYS_capget, &header_, saved_.data()) != 0) return;
        auto data = saved_;
        data[0].effective &= ~(1U << CAP_SYS_ADMIN);
        dropped_ = ::syscall(SYS_capset, &header_, data.data()) == 0;
    }
    ~WithoutSysAdmin() {
        if (dropped_) ::syscall(SYS_capset, &header_, saved_.data());
    }
    WithoutSysAdmin(const WithoutSysAdmin&) = delete;
    WithoutSysAdmin& operator=(const WithoutSysAdmin&) = delete;
    bool dropped() const { return dropped_; }

  private:
    __user_cap_header_struct header_{};
    std::array<__user_cap_data_struct, 2> saved_{};
    bool dropped_ = false;
};

TEST_F(PodIdentityE2E, HostnameFileWhenTheUtsNamespaceCannotBeJoined) {
    PodCgroup cgroup(root_, kPodUid, kContainerId);
    auto with_file = start_pod_process(true, true);
    auto without_file = start_pod_process(true, false);
    ASSERT_TRUE(cgroup.add(with_file->pid()));
    ASSERT_EQ(uts_hostname_of(static_cast<uint32_t>(without_file->pid())), kPodName)
        << "with CAP_SYS_ADMIN the namespace is joined";
    WithoutSysAdmin no_admin;
    ASSERT_TRUE(no_admin.dropped());
    EXPECT_EQ(uts_hostname_of(static_cast<uint32_t>(without_file->pid())), "")
        << "setns refused, and the container's /etc/hostname is the node's own: no pod name";
    const NodePodFacts facts =
        read_node_pod_facts(static_cast<uint32_t>(with_file->pid()), kContainerId, {});
    EXPECT_EQ(facts.uts_hostname, kPodName) << "from the bind-mounted /etc/hostname";
    EXPECT_EQ(facts.sa_namespace, kNamespace);
}

// A Podman service on a private socket and storage (Docker-compatible API,
// https://docs.podman.io/en/latest/markdown/podman-system-service.1.html): containers made from a
// plain directory (--rootfs, no registry) with the labels the kubelet sets through the CRI.
class PodmanService {
  public:
    explicit PodmanService(const fs::path& dir) : dir_(dir), socket_(dir / "podman.sock") {
        service_ = std::make_unique<ChildProcess>(ChildOptions{
            with_globals({"system", "service", "--time=0", "unix://" + socket_.string()}),
            {},
            {},
            {},
            true});
        const auto deadline = deadline_in(20s);
        while (!fs::exists(socket_) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(50ms);
    }
    ~PodmanService() {
        for (const auto& id : containers_)
            passport::testing::run_command(
                ChildOptions{with_globals({"rm", "-f", id}), {}, {}, {}, true}, deadline_in(30s));
    }
    PodmanService(const PodmanService&) = delete;
    PodmanService& operator=(const PodmanService&) = delete;

    bool ok() const { return fs::exists(socket_); }
    const fs::path& socket() const { return socket_; }
    std::string describe() const { return service_->describe(); }

    // A created (not started) container with these labels; its id, "" on failure.
    std::string create(const std::map<std::string, std::string>& labels) {
        fs::create_directories(dir_ / "rootfs");
        std::vector<std::string> args = {"create"};
        for (const auto& [k, v] : labels) args.insert(args.end(), {"--label", k + "=" + v});
        args.insert(args.end(), {"--rootfs", (dir_ / "rootfs").string(), "/bin/true"});
        auto r = passport::testing::run_command(ChildOptions{with_globals(args), {}, {}, {}, true},
                                                deadline_in(60s));
        std::string id = r.out.substr(0, r.out.find('\n'));
        if (!r.status.success() || id.size() != 64) {
            ADD_FAILURE() << "podman create: " << r.err;
            return {};
        }
        containers_.push_back(id);
        return id;
    }

  private:
    // Private storage and state, the cgroupfs manager and runc (crun refuses this host's
    // hybrid cgroup layout).
    std::vector<std::string> with_globals(const std::vector<std::string>& args) const {
        std::vector<std::string> argv = {"podman",
                                         "--root",
                                         (dir_ / "storage").string(),
                                         "--runroot",
                                         (dir_ / "run").string(),
                                         "--storage-driver",
                                         "vfs",
                                         "--cgroup-manager",
                                         "cgroupfs",
                                         "--events-backend",
                                         "file",
                                         "--runtime",
                                         "runc"};
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }

    fs::path dir_;
    fs::path socket_;
    std::unique_ptr<ChildProcess> service_;
    std::vector<std::string> containers_;
};

TEST_F(PodIdentityE2E, RuntimeLabelsFromARealPodmanService) {
    if (passport::testing::find_executable("podman").empty() ||
        passport::testing::find_executable("runc").empty())
        GTEST_SKIP() << "podman and runc are not installed (.ci/install-deps.sh installs them)";
    PodmanService podman(dir_.path() / "podman");
    ASSERT_TRUE(podman.ok()) << podman.describe();
    const std::string id = podman.create({{"io.kubernetes.pod.name", "checkout-6c9d7-qx2lz"},
                                          {"io.kubernetes.pod.namespace", "payments"},
                                          {"io.kubernetes.container.name", "server"},
                                          {"io.kubernetes.pod.uid", kPodUid}});
    ASSERT_FALSE(id.empty());

    // The pod's process in that container's cgroup, its hostname set by the pod's spec.hostname.
    PodCgroup cgroup(root_, kPodUid, id);
    auto proc = start_pod_process(true);
    ASSERT_TRUE(cgroup.add(proc->pid()));
    const auto cg = cgroup_of(proc->pid());
    ASSERT_TRUE(cg);
    ASSERT_EQ(cg->container_id, id);

    const RuntimeSockets sockets{
        {(dir_.path() / "absent.sock").string(), podman.socket().string()}};
    const NodePodFacts facts = read_node_pod_facts(static_cast<uint32_t>(proc->pid()), id, sockets);
    EXPECT_TRUE(facts.from_runtime);
    EXPECT_EQ(facts.pod_name, "checkout-6c9d7-qx2lz");
    EXPECT_EQ(facts.namespace_name, "payments");
    EXPECT_EQ(facts.container_name, "server");
    EXPECT_EQ(facts.uts_hostname, kPodName);

    const PodIdentity pid_id = pod_identity_for(*cg, nullptr, &facts, "", "node-e2e");
    EXPECT_EQ(pid_id.source, PodSource::kRuntime);
    EXPECT_EQ(pid_id.pod, "checkout-6c9d7-qx2lz") << "runtime labels win over the hostname";
    EXPECT_EQ(pid_id.namespace_name, "payments") << "and over the service-account file";
    EXPECT_EQ(pid_id.container_name, "server");
    EXPECT_EQ(pid_id.pod_uid, kPodUid);

    NodePodFacts unknown;
    EXPECT_FALSE(runtime_facts_of(std::string(64, 'e'), sockets, unknown))
        << "a container the runtime does not know (404)";
}

}  // namespace
}  // namespace passport::identity
