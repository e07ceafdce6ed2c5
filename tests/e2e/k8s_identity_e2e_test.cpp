// Where a segment says it comes from, for processes in pods on this host: real processes in
// cgroups shaped as the kubelet makes them (tests/support/k8s/pod_cgroup.hpp), described by the
// stand-in API server, or by nothing but the node itself (their own UTS and mount namespaces,
// holding the pod's hostname and service-account namespace file).
//  - API server: the segment is named after the Deployment that owns the pod (through its
//    ReplicaSet), or by the pod's passport.io/service-name annotation, or by a
//    --service-name-override; aws.eks carries the cluster, pod and container id;
//    metadata.passport.kubernetes the namespace, workload, node, container and image.
//  - no API server: pod name from the container's hostname, namespace from its service-account
//    file, no cluster name (none was given: never a guess).
#include "tests/e2e/e2e_common.hpp"
#include "tests/support/k8s/fake_api.hpp"
#include "tests/support/k8s/pod_cgroup.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kNode = "node-identity";

struct Pod {
    std::string uid;
    std::string name;
    std::unique_ptr<PodCgroup> cgroup;
    std::unique_ptr<TestServer> server;  // stopped before the cgroup goes
};

class K8sIdentityE2E : public E2eTest {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        root_ = cgroup2_root();
        if (root_.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy mounted";
        std::filesystem::copy_file(fixture("caller_server.py"), dir().path() / "caller_server.py",
                                   std::filesystem::copy_options::overwrite_existing);
    }

    void TearDown() override {
        E2eTest::TearDown();
        while (!pods_.empty()) pods_.pop_back();  // newest first: shared slices go last
    }

    // A pod whose server runs in its own UTS and mount namespaces: hostname = pod name, and a
    // tmpfs on /run holding secrets/kubernetes.io/serviceaccount/namespace (/var/run is a
    // symlink to /run here, as in most images).
    Pod& start_pod(const std::string& uid, const std::string& name, const std::string& ns) {
        Pod pod{uid, name, std::make_unique<PodCgroup>(root_, uid), nullptr};
        const std::string sa = "/run/secrets/kubernetes.io/serviceaccount";
        pod.server = start_script_server(
            {"unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c",
             "hostname " + name + " && mount -t tmpfs tmpfs /run && mkdir -p " + sa +
                 " && printf %s " + ns + " > " + sa + "/namespace && exec " + python3_path() +
                 " caller_server.py 127.0.0.1 9"},
            dir().path(), server_env());
        EXPECT_TRUE(pod.cgroup->add(pod.server->pid()));
        pods_.push_back(std::move(pod));
        return pods_.back();
    }

    // The API server's Pod for `p`, owned by ReplicaSet <deployment>-5f7d8c9b4 (so by the
    // Deployment), with the container's status naming its id, name and image.
    static json pod_json(const Pod& p, const std::string& deployment, const std::string& ns) {
        json pod = make_pod(p.uid, p.name, ns, kNode,
                            {{"app", "label-" + deployment}, {"pod-template-hash", "5f7d8c9b4"}},
                            "ReplicaSet", deployment + "-5f7d8c9b4");
        pod["status"]["containerStatuses"] = {
            {{"name", "main"},
             {"image", "registry.example/" + deployment + ":1.4"},
             {"imageID", "registry.example/" + deployment + "@sha256:" + std::string(64, '1')},
             {"containerID", "containerd://" + p.cgroup->container_id()},
             {"ready", true},
             {"restartCount", 0}}};
        return pod;
    }

    // Requests until a document of `p` carries aws.eks.pod (its identity may still be looked up
    // for the first requests: those go out without it); that document, or null.
    json identified_doc(const Pod& p) {
        json found;
        wait_until(
            [&] {
                EXPECT_EQ(http_get(p.server->url("/id")).status, 404);
                for (const auto& d : with_url_containing(
                         collector().documents(), ":" + std::to_string(p.server->port()) + "/id"))
                    if (!str(d, "aws.eks.pod").empty()) found = d;
                return !found.is_null();
            },
            deadline_in(kDocumentTimeout));
        return found;
    }

    std::filesystem::path root_;
    std::deque<Pod> pods_;
};

TEST_F(K8sIdentityE2E, FromTheApiServerWorkloadAnnotationAndOverride) {
    Pod& cart = start_pod("c0c0c0c0-0000-4000-8000-00000000c001", "cart-5f7d8c9b4-x2x9q", "shop");
    Pod& pay = start_pod("c0c0c0c0-0000-4000-8000-00000000c002", "pay-5f7d8c9b4-k8d2m", "shop");
    Pod& stock = start_pod("c0c0c0c0-0000-4000-8000-00000000c003", "inv-5f7d8c9b4-abcde", "shop");
    json pay_pod = pod_json(pay, "pay", "shop");
    pay_pod["metadata"]["annotations"] = {{"passport.io/service-name", "payments"}};
    FakeApiServer api(dir().path() / "api", json::array({pod_json(cart, "cart", "shop"), pay_pod,
                                                         pod_json(stock, "inv", "shop")}));
    ASSERT_TRUE(api.ok()) << api.describe();
    start_agent({"--k8s-api", api.url(), "--k8s-service-account-dir", api.sa_dir().string(),
                 "--node-name", kNode, "--k8s-namespace", "shop", "--cluster-name", "e2e-cluster",
                 "--service-name-override", "shop/Deployment/inv=stock"});

    const json d = identified_doc(cart);
    ASSERT_FALSE(d.is_null()) << agent_diagnostics();
    EXPECT_EQ(str(d, "name"), "cart");
    EXPECT_EQ(str(d, "origin"), "AWS::EKS::Container");
    EXPECT_EQ(d["aws"]["eks"], json({{"cluster_name", "e2e-cluster"},
                                     {"pod", cart.name},
                                     {"container_id", cart.cgroup->container_id()}}));
    const json& md = d["metadata"]["passport"];
    EXPECT_EQ(md["name_rule"], "kubernetes.workload");
    const json& k = md["kubernetes"];
    EXPECT_EQ(k["namespace"], "shop");
    EXPECT_EQ(k["pod_uid"], cart.uid);
    EXPECT_EQ(k["workload"], json({{"kind", "Deployment"}, {"name", "cart"}}));
    EXPECT_EQ(k["node"], kNode);
    EXPECT_EQ(k["container"], "main");
    EXPECT_EQ(k["image"], "registry.example/cart:1.4");
    EXPECT_EQ(k["source"], "api-server");

    const json p = identified_doc(pay);
    ASSERT_FALSE(p.is_null()) << agent_diagnostics();
    EXPECT_EQ(str(p, "name"), "payments");
    EXPECT_EQ(p["metadata"]["passport"]["name_rule"], "annotation");
    const json s = identified_doc(stock);
    ASSERT_FALSE(s.is_null()) << agent_diagnostics();
    EXPECT_EQ(str(s, "name"), "stock");
    EXPECT_EQ(s["metadata"]["passport"]["name_rule"], "override");
}

TEST_F(K8sIdentityE2E, WithoutTheApiServerWhatTheNodeShows) {
    Pod& web = start_pod("c0c0c0c0-0000-4000-8000-00000000c004", "web-7d9f8c6b5-q7w2e", "shop");
    start_agent({"--k8s-api", "off", "--k8s-namespace", "shop", "--imds", "off"});

    const json d = identified_doc(web);
    ASSERT_FALSE(d.is_null()) << agent_diagnostics();
    EXPECT_EQ(str(d, "name"), web.name);
    EXPECT_EQ(str(d, "origin"), "AWS::EKS::Container");
    EXPECT_EQ(d["aws"]["eks"],
              json({{"pod", web.name}, {"container_id", web.cgroup->container_id()}}))
        << "no cluster name was given and there is no IMDS: the key must be absent";
    const json& md = d["metadata"]["passport"];
    EXPECT_EQ(md["name_rule"], "kubernetes.pod");
    EXPECT_EQ(md["kubernetes"]["namespace"], "shop");
    EXPECT_EQ(md["kubernetes"]["pod_uid"], web.uid);
    EXPECT_EQ(md["kubernetes"]["source"], "node");
    EXPECT_FALSE(md["kubernetes"].contains("workload"));
}

}  // namespace
}  // namespace passport::testing::e2e
