// What the node shows of a pod, read without root: the service-account namespace file under a
// process's root (absolute symlinks resolve inside that root, escapes and FIFOs and bad text give
// nothing), the UTS hostname of a process sharing the agent's namespace (nothing), and runtime
// labels from a stand-in runtime on a unix socket (tests/support/identity/fake_runtime.py, the
// Docker Engine API and CRI-O shapes) with its broken variants: not JSON, 10 MB, slow, wrong
// types, unknown container.
#include "agent/identity/pod_facts.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "agent/config.hpp"

#include "tests/support/child_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace passport::identity {
namespace {

namespace fs = std::filesystem;
using passport::testing::TempDir;

constexpr const char* kSaRel = "secrets/kubernetes.io/serviceaccount/namespace";

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

class SaNamespace : public ::testing::Test {
  protected:
    // A fake proc root: <dir>/proc/<pid>/root is the "container's" root directory.
    fs::path root() const { return dir_.path() / "proc" / "7" / "root"; }
    std::string read() const { return sa_namespace_of(7, (dir_.path() / "proc").string()); }
    TempDir dir_{"passport-pod-facts-"};
};

TEST_F(SaNamespace, VarRunDirectory) {
    write_file(root() / "var/run" / kSaRel, "shop\n");
    EXPECT_EQ(read(), "shop");
}

TEST_F(SaNamespace, VarRunSymlinkResolvesInsideTheContainer) {
    fs::create_directories(root() / "var");
    fs::create_directory_symlink("/run", root() / "var/run");
    write_file(root() / "run" / kSaRel, "pay");
    EXPECT_EQ(read(), "pay");
}

TEST_F(SaNamespace, RunOnly) {
    write_file(root() / "run" / kSaRel, "data");
    EXPECT_EQ(read(), "data");
}

TEST_F(SaNamespace, SymlinksNeverLeaveTheContainer) {
    // The agent's own files: a namespace-shaped text the reader must not reach.
    write_file(dir_.path() / "outside", "leaked");
    fs::create_directories((root() / "run" / kSaRel).parent_path());
    fs::create_symlink(dir_.path() / "outside", root() / "run" / kSaRel);
    EXPECT_EQ(read(), "") << "an absolute symlink resolves inside the container's root";
    fs::remove(root() / "run" / kSaRel);
    fs::create_symlink("../../../../../../../../outside", root() / "run" / kSaRel);
    EXPECT_EQ(read(), "") << "'..' stops at the container's root";
    write_file(root() / "outside", "inside");
    EXPECT_EQ(read(), "inside") << "the same link resolved within the root";
}

TEST_F(SaNamespace, BadTextFifoAndHugeFilesGiveNothing) {
    const fs::path file = root() / "run" / kSaRel;
    write_file(file, "Not_A_Namespace");
    EXPECT_EQ(read(), "");
    write_file(file, std::string(10000, 'a'));
    EXPECT_EQ(read(), "") << "256 bytes read: longer than a label";
    fs::remove(file);
    ASSERT_EQ(::mkfifo(file.c_str(), 0600), 0);
    EXPECT_EQ(read(), "") << "a FIFO is not read (and does not block)";
    fs::remove(file);
    EXPECT_EQ(read(), "") << "absent";
}

TEST(UtsHostname, OwnNamespaceGivesNothing) {
    EXPECT_EQ(uts_hostname_of(static_cast<uint32_t>(::getpid())), "")
        << "a process sharing the agent's UTS namespace shows the node's hostname";
    EXPECT_EQ(uts_hostname_of(0x7ffffff0u), "") << "no such process";
}

TEST(RuntimeSocketList, DefaultsAndGiven) {
    const auto d = runtime_sockets_from({});
    for (const char* p : {"/run/docker.sock", "/run/podman/podman.sock", "/run/crio/crio.sock",
                          "/host/run/docker.sock", "/host/run/crio/crio.sock"})
        EXPECT_NE(std::find(d.paths.begin(), d.paths.end(), p), d.paths.end()) << p;
    EXPECT_EQ(runtime_sockets_from({"/x.sock"}).paths, std::vector<std::string>{"/x.sock"});
}

TEST(RuntimeSocketList, FlagAndConfigFileKey) {
    auto c =
        agent::parse_args({"--runtime-socket", "/a.sock", "--runtime-socket=/b.sock"}, nullptr);
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->runtime_sockets, (std::vector<std::string>{"/a.sock", "/b.sock"}));
    EXPECT_TRUE(agent::parse_args({}, nullptr)->runtime_sockets.empty());
    auto empty = agent::parse_args({"--runtime-socket", ""}, nullptr);
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().find("--runtime-socket"), std::string::npos) << empty.error();

    TempDir dir("passport-runtime-config-");
    write_file(dir.path() / "passport.yaml", "runtime_socket:\n  - /host/run/crio/crio.sock\n");
    auto f = agent::parse_args({"--config", (dir.path() / "passport.yaml").string()}, nullptr);
    ASSERT_TRUE(f) << f.error();
    EXPECT_EQ(f->runtime_sockets, std::vector<std::string>{"/host/run/crio/crio.sock"});
}

class RuntimeLabels : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* name : {"docker.sock", "crio.sock"}) {
            const auto script =
                fs::path(PASSPORT_SOURCE_DIR) / "tests/support/identity" / "fake_runtime.py";
            servers_.push_back(std::make_unique<passport::testing::ChildProcess>(
                passport::testing::ChildOptions{{passport::testing::python3_path(), script.string(),
                                                 (dir_.path() / name).string()},
                                                {},
                                                {},
                                                {},
                                                true}));
            ASSERT_TRUE(servers_.back()->wait_for_line(
                passport::testing::Stream::kStdout, std::regex("listening"),
                passport::testing::deadline_in(std::chrono::seconds(20))))
                << servers_.back()->describe();
        }
    }
    RuntimeSockets docker() const { return {{(dir_.path() / "docker.sock").string()}}; }
    RuntimeSockets crio() const { return {{(dir_.path() / "crio.sock").string()}}; }

    TempDir dir_{"passport-runtime-"};
    std::vector<std::unique_ptr<passport::testing::ChildProcess>> servers_;
};

TEST_F(RuntimeLabels, DockerEngineApiAndCrio) {
    for (const auto& sockets : {docker(), crio()}) {
        NodePodFacts f;
        ASSERT_TRUE(runtime_facts_of(std::string(64, 'a'), sockets, f)) << sockets.paths[0];
        EXPECT_TRUE(f.from_runtime);
        EXPECT_EQ(f.pod_name, "web-1");
        EXPECT_EQ(f.namespace_name, "shop");
        EXPECT_EQ(f.container_name, "app");
        EXPECT_EQ(f.image, "registry.example/web:1.2");
    }
}

TEST_F(RuntimeLabels, MissingSocketsAreSkipped) {
    write_file(dir_.path() / "plain-file.sock", "x");
    RuntimeSockets s{{(dir_.path() / "absent.sock").string(),
                      (dir_.path() / "plain-file.sock").string(), docker().paths[0]}};
    NodePodFacts f;
    ASSERT_TRUE(runtime_facts_of(std::string(64, 'a'), s, f));
    EXPECT_EQ(f.pod_name, "web-1");
}

TEST_F(RuntimeLabels, BrokenAnswersGiveNothing) {
    for (char kind : {'b', 'c', 'd', 'f'}) {
        NodePodFacts f;
        EXPECT_FALSE(runtime_facts_of(std::string(64, kind), docker(), f)) << kind;
        EXPECT_FALSE(f.from_runtime) << kind;
        EXPECT_EQ(f.pod_name, "") << kind;
    }
    NodePodFacts typed;
    ASSERT_TRUE(runtime_facts_of(std::string(64, 'e'), crio(), typed));
    EXPECT_EQ(typed.pod_name, "");
    EXPECT_EQ(typed.image, "");
}

TEST_F(RuntimeLabels, IdsThatAreNotHexAreNeverSent) {
    NodePodFacts f;
    for (const char* bad : {"", "../../info", "aaaa/json?x", "AAAA"})
        EXPECT_FALSE(runtime_facts_of(bad, docker(), f)) << bad;
}

TEST_F(RuntimeLabels, ReadNodePodFactsOfAHostProcess) {
    const NodePodFacts f =
        read_node_pod_facts(static_cast<uint32_t>(::getpid()), std::string(64, 'a'), docker());
    EXPECT_EQ(f.uts_hostname, "");
    EXPECT_TRUE(f.from_runtime);
    EXPECT_EQ(f.pod_name, "web-1");
}

}  // namespace
}  // namespace passport::identity
