// pod_identity_for: the API server wins where it knows, then the runtime's labels, then the
// node (UTS hostname unless it is the node's own, the service-account namespace file); the
// cgroup gives the pod uid and container id; `source` names what gave the pod's name. And the
// runtime answers (Docker Engine API, CRI-O) read into NodePodFacts, bad types skipped.
#include "userspace/identity/pod.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace passport::identity {
namespace {

using nlohmann::json;

const std::string kUid = "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708";
const std::string kId(64, 'a');

k8s::PodIdentity cgroup() {
    k8s::PodIdentity c;
    c.pod_uid = kUid;
    c.container_id = kId;
    c.runtime = "containerd";
    return c;
}

k8s::PodMeta api_pod() {
    k8s::PodMeta p;
    p.uid = kUid;
    p.name = "web-7d4b9c8f6-x2k4p";
    p.namespace_name = "shop";
    p.node_name = "node-api";
    p.labels = {{"app", "web"}};
    p.workload = {"Deployment", "web"};
    p.annotations = {{"passport.io/service-name", "checkout"}, {"other", "x"}};
    p.containers = {{"sidecar", "envoy:1", std::string(64, 'b')}, {"app", "web:1.2", kId}};
    return p;
}

NodePodFacts runtime_and_node() {
    NodePodFacts n;
    n.uts_hostname = "uts-name";
    n.sa_namespace = "sa-ns";
    n.pod_name = "runtime-pod";
    n.namespace_name = "runtime-ns";
    n.container_name = "runtime-container";
    n.image = "runtime-image:1";
    n.from_runtime = true;
    return n;
}

TEST(PodIdentityMerge, ApiServerWinsWhereItKnows) {
    const auto api = api_pod();
    const auto node = runtime_and_node();
    const PodIdentity id = pod_identity_for(cgroup(), &api, &node, "prod", "node-a");
    EXPECT_EQ(id.source, PodSource::kApiServer);
    EXPECT_EQ(id.pod, "web-7d4b9c8f6-x2k4p");
    EXPECT_EQ(id.namespace_name, "shop");
    EXPECT_EQ(id.workload_kind, "Deployment");
    EXPECT_EQ(id.workload_name, "web");
    EXPECT_EQ(id.labels, api.labels);
    EXPECT_EQ(id.service_name_annotation, "checkout");
    EXPECT_EQ(id.container_name, "app") << "matched by container id, not the first container";
    EXPECT_EQ(id.image, "web:1.2");
    EXPECT_EQ(id.pod_uid, kUid);
    EXPECT_EQ(id.container_id, kId);
    EXPECT_EQ(id.cluster_name, "prod");
    EXPECT_EQ(id.node_name, "node-a");
}

TEST(PodIdentityMerge, RuntimeFillsWhatTheApiServerDoesNotKnowYet) {
    auto api = api_pod();
    api.containers.clear();  // status not reported yet
    api.annotations.clear();
    const auto node = runtime_and_node();
    const PodIdentity id = pod_identity_for(cgroup(), &api, &node, "", "");
    EXPECT_EQ(id.source, PodSource::kApiServer);
    EXPECT_EQ(id.pod, "web-7d4b9c8f6-x2k4p");
    EXPECT_EQ(id.container_name, "runtime-container");
    EXPECT_EQ(id.image, "runtime-image:1");
    EXPECT_EQ(id.service_name_annotation, "");
    EXPECT_EQ(id.node_name, "node-api") << "from spec.nodeName when none is configured";
}

TEST(PodIdentityMerge, RuntimeLabelsWithoutTheApiServer) {
    const auto node = runtime_and_node();
    const PodIdentity id = pod_identity_for(cgroup(), nullptr, &node, "", "node-a");
    EXPECT_EQ(id.source, PodSource::kRuntime);
    EXPECT_EQ(id.pod, "runtime-pod");
    EXPECT_EQ(id.namespace_name, "runtime-ns");
    EXPECT_EQ(id.container_name, "runtime-container");
    EXPECT_EQ(id.image, "runtime-image:1");
    EXPECT_TRUE(id.labels.empty()) << "labels only from the API server";
    EXPECT_EQ(id.workload_kind, "");
}

TEST(PodIdentityMerge, NodeOnly) {
    NodePodFacts node;
    node.uts_hostname = "web-7d4b9c8f6-x2k4p";
    node.sa_namespace = "shop";
    const PodIdentity id = pod_identity_for(cgroup(), nullptr, &node, "prod", "node-a");
    EXPECT_EQ(id.source, PodSource::kNode);
    EXPECT_EQ(id.pod, "web-7d4b9c8f6-x2k4p");
    EXPECT_EQ(id.namespace_name, "shop");
    EXPECT_EQ(id.container_name, "");
    EXPECT_EQ(id.pod_uid, kUid);
    EXPECT_EQ(id.container_id, kId);
}

TEST(PodIdentityMerge, RuntimeAnswerWithoutKubeletLabelsLeavesTheNodeFacts) {
    NodePodFacts node;
    node.uts_hostname = "web-1";
    node.sa_namespace = "shop";
    node.image = "web:1";
    node.from_runtime = true;
    const PodIdentity id = pod_identity_for(cgroup(), nullptr, &node, "", "node-a");
    EXPECT_EQ(id.source, PodSource::kNode);
    EXPECT_EQ(id.pod, "web-1");
    EXPECT_EQ(id.image, "web:1");
}

TEST(PodIdentityMerge, RuntimeFieldsIgnoredUnlessTheRuntimeAnswered) {
    NodePodFacts node = runtime_and_node();
    node.from_runtime = false;
    const PodIdentity id = pod_identity_for(cgroup(), nullptr, &node, "", "node-a");
    EXPECT_EQ(id.pod, "uts-name");
    EXPECT_EQ(id.namespace_name, "sa-ns");
    EXPECT_EQ(id.container_name, "");
}

TEST(PodIdentityMerge, TheNodesOwnHostnameIsNotAPodName) {
    NodePodFacts node;
    node.sa_namespace = "shop";
    for (const char* host : {"ip-10-0-1-2.ec2.internal", "ip-10-0-1-2"}) {
        node.uts_hostname = host;
        const PodIdentity id =
            pod_identity_for(cgroup(), nullptr, &node, "", "ip-10-0-1-2.ec2.internal");
        EXPECT_EQ(id.pod, "") << host;
        EXPECT_EQ(id.namespace_name, "shop");
    }
}

TEST(PodIdentityMerge, BadNamespaceFileTextIsNotANamespace) {
    NodePodFacts node;
    for (const char* bad : {"Shop", "-shop", "shop-", "a/b", "../x", "", "shop\nx"}) {
        node.sa_namespace = bad;
        EXPECT_EQ(pod_identity_for(cgroup(), nullptr, &node, "", "").namespace_name, "") << bad;
    }
}

TEST(PodIdentityMerge, AnotherPodsApiObjectIsIgnored) {
    auto api = api_pod();
    api.uid = "11111111-2222-4333-8444-555555555555";
    NodePodFacts node;
    node.uts_hostname = "web-1";
    const PodIdentity id = pod_identity_for(cgroup(), &api, &node, "", "");
    EXPECT_EQ(id.pod, "web-1");
    EXPECT_EQ(id.source, PodSource::kNode);
    EXPECT_TRUE(id.labels.empty());
}

TEST(PodIdentityMerge, NothingKnown) {
    const PodIdentity id = pod_identity_for(cgroup(), nullptr, nullptr, "", "node-a");
    EXPECT_EQ(id.pod, "");
    EXPECT_EQ(id.namespace_name, "");
    EXPECT_EQ(id.pod_uid, kUid);
    EXPECT_EQ(id.node_name, "node-a");
}

TEST(Dns1123Label, Rules) {
    const std::string longest(63, 'x');
    const std::string too_long(64, 'x');
    for (const std::string& good : {std::string("a"), std::string("shop"),
                                    std::string("kube-system"), std::string("0a"), longest})
        EXPECT_TRUE(is_dns1123_label(good)) << good;
    for (const std::string& bad : {std::string(), too_long, std::string("A"), std::string("a_b"),
                                   std::string("-a"), std::string("a-"), std::string("a.b")})
        EXPECT_FALSE(is_dns1123_label(bad)) << bad;
}

// Docker Engine API ContainerInspectResponse, trimmed to the fields read
// (https://docs.docker.com/reference/api/engine/version/v1.43/#tag/Container/operation/ContainerInspect);
// the labels are the ones the kubelet sets on a pod's containers.
TEST(RuntimeAnswers, DockerInspect) {
    const json doc = {{"Id", kId},
                      {"Image", "sha256:" + std::string(64, '1')},
                      {"Config",
                       {{"Hostname", "web-1"},
                        {"Image", "registry.example/web:1.2"},
                        {"Labels",
                         {{"io.kubernetes.pod.name", "web-1"},
                          {"io.kubernetes.pod.namespace", "shop"},
                          {"io.kubernetes.container.name", "app"},
                          {"io.kubernetes.pod.uid", kUid}}}}}};
    NodePodFacts f;
    ASSERT_TRUE(runtime_facts_from_docker(doc, f));
    EXPECT_TRUE(f.from_runtime);
    EXPECT_EQ(f.pod_name, "web-1");
    EXPECT_EQ(f.namespace_name, "shop");
    EXPECT_EQ(f.container_name, "app");
    EXPECT_EQ(f.image, "registry.example/web:1.2");
}

// CRI-O's GET /containers/{id}: ContainerInfo
// (https://github.com/cri-o/cri-o/blob/main/pkg/types/types.go).
TEST(RuntimeAnswers, CrioInspect) {
    const json doc = {{"name", "k8s_app_web-1_shop_" + kUid + "_0"},
                      {"pid", 4242},
                      {"image", "registry.example/web:1.2"},
                      {"image_ref", "sha256:" + std::string(64, '1')},
                      {"created_time", 1767225600000000000},
                      {"labels",
                       {{"io.kubernetes.pod.name", "web-1"},
                        {"io.kubernetes.pod.namespace", "shop"},
                        {"io.kubernetes.container.name", "app"}}},
                      {"annotations", json::object()},
                      {"crio_annotations", json::object()},
                      {"log_path", "/var/log/pods/x/app/0.log"},
                      {"root", "/var/lib/containers/storage/overlay/x/merged"},
                      {"sandbox", std::string(64, 'd')},
                      {"ip_addresses", {"10.0.0.5"}}};
    NodePodFacts f;
    ASSERT_TRUE(runtime_facts_from_crio(doc, f));
    EXPECT_EQ(f.pod_name, "web-1");
    EXPECT_EQ(f.namespace_name, "shop");
    EXPECT_EQ(f.container_name, "app");
    EXPECT_EQ(f.image, "registry.example/web:1.2");
}

TEST(RuntimeAnswers, WrongShapesAndTypes) {
    NodePodFacts f;
    for (const json& bad :
         {json(), json("x"), json::array(), json({{"Config", "x"}}), json({{"Id", kId}})}) {
        EXPECT_FALSE(runtime_facts_from_docker(bad, f)) << bad.dump();
        EXPECT_FALSE(f.from_runtime);
    }
    EXPECT_FALSE(runtime_facts_from_crio(json::array(), f));
    const json typed = {{"Config",
                         {{"Image", 5},
                          {"Labels",
                           {{"io.kubernetes.pod.name", 1},
                            {"io.kubernetes.pod.namespace", "shop"},
                            {"io.kubernetes.container.name", nullptr}}}}}};
    ASSERT_TRUE(runtime_facts_from_docker(typed, f));
    EXPECT_EQ(f.pod_name, "");
    EXPECT_EQ(f.namespace_name, "shop");
    EXPECT_EQ(f.container_name, "");
    EXPECT_EQ(f.image, "");
    NodePodFacts g;
    ASSERT_TRUE(runtime_facts_from_crio(json({{"labels", "x"}, {"image", 1}}), g));
    EXPECT_EQ(g.pod_name, "");
    EXPECT_EQ(g.image, "");
}

}  // namespace
}  // namespace passport::identity
