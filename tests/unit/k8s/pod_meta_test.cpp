// pod_from_json's descriptive fields: annotations, spec.hostname, the containers of
// status.containerStatuses and initContainerStatuses with their ids as hex; entries of the
// wrong type skipped without refusing the pod, while the fields selection reads keep refusing.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/k8s/fake_api.hpp"
#include "userspace/k8s/pod.hpp"

namespace passport::k8s {
namespace {

using nlohmann::json;
using passport::testing::add_container_status;
using passport::testing::make_pod;

constexpr const char* kUid = "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708";
const std::string kAppId(64, 'a');
const std::string kInitId(64, 'b');

json full_pod() {
    json p = make_pod(kUid, "web-7d4b9c8f6-x2k4p", "shop", "node-a", {{"app", "web"}});
    passport::testing::set_annotations(
        p, {{"passport.io/service-name", "checkout"}, {"prometheus.io/scrape", "true"}});
    p["spec"]["hostname"] = "web-host";
    add_container_status(p, "app", "registry.example/web:1.2", kAppId, "containerd");
    add_container_status(p, "migrate", "registry.example/migrate:3", kInitId, "cri-o", true);
    return p;
}

TEST(PodMeta, DescriptiveFields) {
    auto m = pod_from_json(full_pod());
    ASSERT_TRUE(m) << m.error();
    EXPECT_EQ(m->annotations.at("passport.io/service-name"), "checkout");
    EXPECT_EQ(m->annotations.size(), 2u);
    EXPECT_EQ(m->hostname, "web-host");
    ASSERT_EQ(m->containers.size(), 2u);
    EXPECT_EQ(m->containers[0], (ContainerMeta{"app", "registry.example/web:1.2", kAppId}));
    EXPECT_EQ(m->containers[1], (ContainerMeta{"migrate", "registry.example/migrate:3", kInitId}));
    ASSERT_NE(container_by_id(*m, kInitId), nullptr);
    EXPECT_EQ(container_by_id(*m, kInitId)->name, "migrate");
    EXPECT_EQ(container_by_id(*m, std::string(64, 'f')), nullptr);
    EXPECT_EQ(container_by_id(*m, ""), nullptr);
}

TEST(PodMeta, AbsentDescriptiveFieldsAreEmpty) {
    auto m = pod_from_json(make_pod(kUid, "web", "shop", "node-a"));
    ASSERT_TRUE(m) << m.error();
    EXPECT_TRUE(m->annotations.empty());
    EXPECT_EQ(m->hostname, "");
    EXPECT_TRUE(m->containers.empty());
}

TEST(PodMeta, ContainerIdsKeepTheHexOnly) {
    EXPECT_EQ(container_id_hex("containerd://" + kAppId), kAppId);
    EXPECT_EQ(container_id_hex("docker://0123abcd"), "0123abcd");
    EXPECT_EQ(container_id_hex("cri-o://" + kAppId), kAppId);
    for (const char* bad : {"", "containerd://", "0123abcd", "docker://ABCD", "docker://12/../x",
                            "containerd://12 34"})
        EXPECT_EQ(container_id_hex(bad), "") << bad;
}

TEST(PodMeta, WrongTypesInDescriptiveFieldsAreSkipped) {
    json p = full_pod();
    p["metadata"]["annotations"]["count"] = 3;
    p["metadata"]["annotations"]["nested"] = {{"a", 1}};
    p["spec"]["hostname"] = 42;
    p["status"]["containerStatuses"].push_back("not an object");
    p["status"]["containerStatuses"].push_back(
        {{"name", 7}, {"image", {1, 2}}, {"containerID", 9}});
    p["status"]["containerStatuses"].push_back({{"name", "sidecar"}, {"containerID", "garbage"}});
    auto m = pod_from_json(p);
    ASSERT_TRUE(m) << m.error();
    EXPECT_EQ(m->annotations.size(), 2u) << "non-string values skipped";
    EXPECT_EQ(m->hostname, "");
    ASSERT_EQ(m->containers.size(), 3u) << "app, sidecar (no id), migrate";
    EXPECT_EQ(m->containers[1], (ContainerMeta{"sidecar", "", ""}));

    for (json bad : {json(1), json("x"), json::array({1})}) {
        json q = full_pod();
        q["metadata"]["annotations"] = bad;
        q["status"]["containerStatuses"] = bad;
        q["status"]["initContainerStatuses"] = bad;
        auto mq = pod_from_json(q);
        ASSERT_TRUE(mq) << mq.error();
        EXPECT_TRUE(mq->annotations.empty());
        EXPECT_TRUE(mq->containers.empty());
    }
    json q = full_pod();
    q["status"] = "Running";
    ASSERT_TRUE(pod_from_json(q));
}

TEST(PodMeta, SelectionFieldsStillRefuseWrongTypes) {
    json p = full_pod();
    p["metadata"]["labels"]["app"] = 1;
    EXPECT_FALSE(pod_from_json(p));
    p = full_pod();
    p["spec"]["nodeName"] = 1;
    EXPECT_FALSE(pod_from_json(p));
    p = full_pod();
    p["metadata"].erase("uid");
    EXPECT_FALSE(pod_from_json(p));
}

}  // namespace
}  // namespace passport::k8s
