// Selection by Kubernetes namespace on this host, with real processes in real cgroups shaped as
// the kubelet makes them (systemd driver, containerd:
// kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/
// cri-containerd-<id>.scope on the cgroup v2 hierarchy), and the stand-in API server
// (tests/support/k8s/fake_api_server.py) describing the pods as the Kubernetes API does.
//  - --k8s-namespace shop: the shop pod's server is traced and its outgoing call injected; the
//    kube-system and the other namespace's servers are not traced; a --k8s-no-inject-namespace
//    pod is traced and its call reaches the callee without the header; a pod the API server
//    describes only later is traced from then on, not before; the agent is never traced.
//  - exclusions only: every pod but the excluded namespace and kube-system; host processes not.
// The cgroups are created for the test and removed at its end.
#include <fcntl.h>
#include <unistd.h>

#include <deque>
#include <fstream>

#include "tests/e2e/e2e_common.hpp"
#include "tests/support/k8s/fake_api.hpp"
#include "tests/support/k8s/pod_cgroup.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kNode = "node-e2e";

// A verifying callee outside every pod: records the X-Amzn-Trace-Id values it receives.
class Callee {
  public:
    explicit Callee(const std::filesystem::path& dump) {
        std::filesystem::create_directories(dump);
        proc_ = std::make_unique<ChildProcess>(
            ChildOptions{{python3_path(), fixture("inject_server.py").string(), dump.string(), "0"},
                         {},
                         {},
                         {},
                         true});
        auto m =
            proc_->wait_for_line(Stream::kStdout, std::regex("listening (\\d+)"), deadline_in(20s));
        if (m) port_ = static_cast<uint16_t>(std::stoi(m->groups[1]));
    }
    uint16_t port() const { return port_; }
    // The trace header values of the request whose target contains `part` (nullopt: none yet).
    std::optional<json> trace_of(const std::string& part) const {
        for (const auto& l : proc_->lines(Stream::kStdout)) {
            if (l.empty() || l[0] != '{') continue;
            json r = json::parse(l);
            if (r.value("target", "").find(part) != std::string::npos) return r["trace"];
        }
        return std::nullopt;
    }

  private:
    std::unique_ptr<ChildProcess> proc_;
    uint16_t port_ = 0;
};

// A pod: its cgroup, and a caller_server.py (serves /call/X by calling the callee's /X) in it.
struct Pod {
    std::string uid;
    std::string ns;
    std::unique_ptr<PodCgroup> cgroup;
    std::unique_ptr<TestServer> server;  // destroyed (stopped, reaped) before the cgroup
};

class K8sSelectionE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        root_ = cgroup2_root();
        if (root_.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
        callee_ = std::make_unique<Callee>(dir().path() / "callee");
        ASSERT_GT(callee_->port(), 0);
        std::filesystem::copy_file(fixture("caller_server.py"), dir().path() / "caller_server.py",
                                   std::filesystem::copy_options::overwrite_existing);
    }

    void TearDown() override {
        E2eTest::TearDown();
        // Newest first: the first pod created the shared kubepods slices and removes them last.
        while (!pods_.empty()) pods_.pop_back();  // each pod's server stops, then its cgroup goes
    }

    Pod& start_pod(const std::string& uid, const std::string& ns, const std::string& name) {
        Pod pod{uid, ns, std::make_unique<PodCgroup>(root_, uid), nullptr};
        pod.server = start_script_server(
            {python3_path(), "caller_server.py", "127.0.0.1", std::to_string(callee_->port())},
            dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", name}}));
        EXPECT_TRUE(pod.cgroup->add(pod.server->pid()));
        pods_.push_back(std::move(pod));
        return pods_.back();
    }

    // A pod without the API server's help: its process runs in a mount namespace of its own where
    // a tmpfs on /run holds secrets/kubernetes.io/serviceaccount/namespace (this host's /var/run
    // is a symlink to /run, as in most images), the file a pod's service-account volume provides.
    Pod& start_pod_with_namespace_file(const std::string& uid, const std::string& ns,
                                       const std::string& name) {
        Pod pod{uid, ns, std::make_unique<PodCgroup>(root_, uid), nullptr};
        const std::string sa = "/run/secrets/kubernetes.io/serviceaccount";
        pod.server = start_script_server(
            {"unshare", "--mount", "--propagation", "private", "sh", "-c",
             "mount -t tmpfs tmpfs /run && mkdir -p " + sa + " && printf %s " + ns + " > " + sa +
                 "/namespace && exec " + python3_path() + " caller_server.py 127.0.0.1 " +
                 std::to_string(callee_->port())},
            dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", name}}));
        EXPECT_TRUE(pod.cgroup->add(pod.server->pid()));
        pods_.push_back(std::move(pod));
        return pods_.back();
    }

    static json pod_json(const Pod& p, const std::string& name) {
        return make_pod(p.uid, name, p.ns, kNode, {{"app", name}}, "ReplicaSet",
                        name + "-5f7d8c9b4");
    }

    std::vector<std::string> k8s_args(const FakeApiServer& api) {
        return {"--k8s-api",           api.url(),     "--k8s-service-account-dir",
                api.sa_dir().string(), "--node-name", kNode};
    }

    // Calls the pod's /call/<tag>; true when it answered 200.
    static bool call(const Pod& p, const std::string& tag) {
        return http_get(p.server->url("/call/" + tag)).status == 200;
    }

    std::vector<json> docs_for(const Pod& p) {
        return with_url_containing(collector().documents(),
                                   ":" + std::to_string(p.server->port()) + "/");
    }

    std::filesystem::path root_;
    std::unique_ptr<Callee> callee_;
    std::deque<Pod> pods_;
};

TEST_F(K8sSelectionE2E, NamespaceSelectionNoInjectLatePodsAndLabelChanges) {
    Pod& shop = start_pod("11111111-1111-4111-8111-111111111111", "shop", "shop-web");
    Pod& system = start_pod("22222222-2222-4222-8222-222222222222", "kube-system", "coredns");
    Pod& other = start_pod("33333333-3333-4333-8333-333333333333", "other", "other-web");
    Pod& pay = start_pod("44444444-4444-4444-8444-444444444444", "payments", "pay-web");
    Pod& late = start_pod("55555555-5555-4555-8555-555555555555", "shop", "late-web");
    FakeApiServer api(dir().path() / "api",
                      json::array({pod_json(shop, "shop-web"), pod_json(system, "coredns"),
                                   pod_json(other, "other-web"), pod_json(pay, "pay-web")}));
    ASSERT_TRUE(api.ok()) << api.describe();

    auto args = k8s_args(api);
    for (const char* a :
         {"--k8s-namespace", "shop", "--k8s-namespace", "payments", "--k8s-no-inject-namespace",
          "payments", "--k8s-exclude-label", "passport.io/trace=false"})
        args.emplace_back(a);
    AgentRunner& agent = start_agent(args);
    EXPECT_NE(agent.stderr_text().find("[yes] kubernetes - API server at " + api.url() +
                                       ", 4 pods on node " + kNode),
              std::string::npos)
        << agent.stderr_text();

    const std::string tag = unique_tag();
    for (const Pod* p : {&system, &other, &late, &shop, &pay})
        ASSERT_TRUE(call(*p, p->ns + "-" + p->uid.substr(0, 4) + "-" + tag)) << p->ns;
    ASSERT_TRUE(wait_for_url("/call/shop-1111-" + tag)) << agent_diagnostics();
    ASSERT_TRUE(wait_for_url("/call/payments-4444-" + tag)) << agent_diagnostics();

    // Injection: the shop pod's call carries the header, the payments pod's does not.
    auto shop_trace = callee_->trace_of("/shop-1111-" + tag);
    ASSERT_TRUE(shop_trace);
    EXPECT_EQ(shop_trace->size(), 1u) << *shop_trace;
    auto pay_trace = callee_->trace_of("/payments-4444-" + tag);
    ASSERT_TRUE(pay_trace);
    EXPECT_TRUE(pay_trace->empty()) << "no-inject namespace got a header: " << *pay_trace;

    // The late pod: its process waits until the API server describes its pod, then is traced.
    ASSERT_TRUE(api.put_pod(pod_json(late, "late-web")));
    std::optional<json> late_doc;
    for (int i = 0; i < 100 && !late_doc; i++) {
        const std::string t = "late-after-" + std::to_string(i) + "-" + tag;
        ASSERT_TRUE(call(late, t));
        late_doc = collector().wait_for(
            [&](const json& d) { return url_ends_with(d, "/call/" + t); }, deadline_in(300ms));
    }
    ASSERT_TRUE(late_doc) << agent_diagnostics();
    EXPECT_EQ(field(*late_doc, "name"), "late-web");

    // A label that excludes the shop pod, added while it runs: its process is unselected.
    json excluded = pod_json(shop, "shop-web");
    excluded["metadata"]["labels"]["passport.io/trace"] = "false";
    ASSERT_TRUE(api.put_pod(excluded));
    const Deadline until = deadline_in(20s);
    while (agent.stderr_text().find("0 process(es) selected, 1 unselected") == std::string::npos &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(50ms);
    ASSERT_NE(agent.stderr_text().find("0 process(es) selected, 1 unselected"), std::string::npos)
        << agent.stderr_text();
    ASSERT_TRUE(call(shop, "shop-excluded-" + tag));

    AgentExit exit = stop_agent_and_sync();
    EXPECT_TRUE(docs_for(system).empty()) << "kube-system traced: " << brief(docs_for(system)[0]);
    EXPECT_TRUE(docs_for(other).empty()) << "other namespace traced: " << brief(docs_for(other)[0]);
    for (const auto& d : docs_for(late))
        EXPECT_EQ(url_contains(d, "/call/shop-5555-" + tag), false)
            << "traced before its pod was known: " << brief(d);
    for (const auto& d : collector().documents())
        EXPECT_FALSE(json_has_key_value(field(d, "metadata"), "pid", agent.pid())) << brief(d);
    EXPECT_TRUE(with_url_containing(collector().documents(), "/call/shop-excluded-" + tag).empty())
        << "traced after its pod was excluded by a label";
    EXPECT_GE(exit.counter("select.k8s_waited"), 1u) << exit.counters_text();
    EXPECT_GE(exit.counter("select.k8s_no_inject"), 1u) << exit.counters_text();
    EXPECT_GE(exit.counter("inject.process_no_inject"), 1u) << exit.counters_text();
}

TEST_F(K8sSelectionE2E, ExclusionsOnlyKeepKubeSystemAndHostProcessesOut) {
    Pod& shop = start_pod("66666666-6666-4666-8666-666666666666", "shop", "shop-web");
    Pod& system = start_pod("77777777-7777-4777-8777-777777777777", "kube-system", "coredns");
    Pod& dev = start_pod("88888888-8888-4888-8888-888888888888", "dev", "dev-web");
    auto host = start_script_server(
        {python3_path(), "caller_server.py", "127.0.0.1", std::to_string(callee_->port())},
        dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", "host-web"}}));
    FakeApiServer api(dir().path() / "api",
                      json::array({pod_json(shop, "shop-web"), pod_json(system, "coredns"),
                                   pod_json(dev, "dev-web")}));
    ASSERT_TRUE(api.ok()) << api.describe();
    auto args = k8s_args(api);
    args.emplace_back("--k8s-exclude-namespace");
    args.emplace_back("dev");
    start_agent(args);

    const std::string tag = unique_tag();
    ASSERT_TRUE(http_get(host->url("/call/host-" + tag)).status == 200);
    for (const Pod* p : {&system, &dev, &shop}) ASSERT_TRUE(call(*p, p->ns + "-" + tag));
    ASSERT_TRUE(wait_for_url("/call/shop-" + tag)) << agent_diagnostics();

    stop_agent_and_sync();
    EXPECT_TRUE(docs_for(system).empty()) << "kube-system traced without being named";
    EXPECT_TRUE(docs_for(dev).empty()) << "excluded namespace traced";
    EXPECT_TRUE(
        with_url_containing(collector().documents(), ":" + std::to_string(host->port()) + "/")
            .empty())
        << "a process outside every pod was traced";
}

// --k8s-api off: namespaces from each pod's service-account file; label rules cannot match.
TEST_F(K8sSelectionE2E, WithoutTheApiNamespacesComeFromServiceAccountFiles) {
    Pod& shop =
        start_pod_with_namespace_file("99999999-9999-4999-8999-999999999999", "shop", "shop-web");
    Pod& other =
        start_pod_with_namespace_file("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "other", "other-web");
    Pod& no_file = start_pod("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "shop", "no-file-web");
    AgentRunner& agent = start_agent({"--k8s-api", "off", "--k8s-namespace", "shop"});
    EXPECT_NE(agent.stderr_text().find("[no]  kubernetes - API off (--k8s-api off): namespace from "
                                       "each pod's service-account files only"),
              std::string::npos)
        << agent.stderr_text();

    const std::string tag = unique_tag();
    for (const Pod* p : {&other, &no_file, &shop}) ASSERT_TRUE(call(*p, p->uid.substr(0, 4) + tag));
    ASSERT_TRUE(wait_for_url("/call/9999" + tag)) << agent_diagnostics();

    AgentExit exit = stop_agent_and_sync();
    EXPECT_TRUE(docs_for(other).empty()) << "other namespace traced";
    EXPECT_TRUE(docs_for(no_file).empty()) << "a pod without a namespace file was traced";
    EXPECT_GE(exit.counter("select.k8s_skipped.namespace_unknown"), 1u) << exit.counters_text();
}

}  // namespace
}  // namespace passport::testing::e2e
