// Pod UID and container id from /proc/PID/cgroup, for the layouts the kubelet and the runtimes
// make (userspace/k8s/pod_identity.hpp cites them): systemd and cgroupfs drivers, the three QoS
// classes, containerd, CRI-O and Docker, cgroup v2 and v1 files.
#include "userspace/k8s/pod_identity.hpp"

#include <gtest/gtest.h>

namespace passport::k8s {
namespace {

constexpr const char* kUid = "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708";
constexpr const char* kCid = "4c1e9f0a7b2d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b";

TEST(PodIdentity, SystemdBurstableContainerd) {
    auto id = pod_identity_of_cgroup_file(
        std::string("0::/kubepods.slice/kubepods-burstable.slice/"
                    "kubepods-burstable-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/"
                    "cri-containerd-") +
        kCid + ".scope\n");
    ASSERT_TRUE(id);
    EXPECT_EQ(id->pod_uid, kUid);
    EXPECT_EQ(id->container_id, kCid);
    EXPECT_EQ(id->runtime, "containerd");
    EXPECT_EQ(id->qos, QosClass::kBurstable);
    EXPECT_FALSE(id->runtime_monitor);
}

TEST(PodIdentity, SystemdGuaranteedCrio) {
    auto id = pod_identity_of_path(
        std::string(
            "/kubepods.slice/kubepods-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/crio-") +
        kCid + ".scope");
    ASSERT_TRUE(id);
    EXPECT_EQ(id->pod_uid, kUid);
    EXPECT_EQ(id->runtime, "crio");
    EXPECT_EQ(id->qos, QosClass::kGuaranteed);
}

TEST(PodIdentity, SystemdBestEffortDocker) {
    auto id = pod_identity_of_path(
        std::string("/kubepods.slice/kubepods-besteffort.slice/"
                    "kubepods-besteffort-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/docker-") +
        kCid + ".scope");
    ASSERT_TRUE(id);
    EXPECT_EQ(id->runtime, "docker");
    EXPECT_EQ(id->qos, QosClass::kBestEffort);
    EXPECT_EQ(id->container_id, kCid);
}

TEST(PodIdentity, CrioConmonIsTheRuntimeMonitor) {
    auto id = pod_identity_of_path(
        std::string(
            "/kubepods.slice/kubepods-burstable.slice/"
            "kubepods-burstable-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/crio-conmon-") +
        kCid + ".scope");
    ASSERT_TRUE(id);
    EXPECT_TRUE(id->runtime_monitor);
    EXPECT_EQ(id->container_id, kCid);
}

TEST(PodIdentity, CgroupfsDriverAllQosClasses) {
    auto burstable =
        pod_identity_of_path(std::string("/kubepods/burstable/pod") + kUid + "/" + kCid);
    ASSERT_TRUE(burstable);
    EXPECT_EQ(burstable->pod_uid, kUid);
    EXPECT_EQ(burstable->container_id, kCid);
    EXPECT_EQ(burstable->qos, QosClass::kBurstable);
    EXPECT_EQ(burstable->runtime, "");

    auto besteffort =
        pod_identity_of_path(std::string("/kubepods/besteffort/pod") + kUid + "/" + kCid);
    ASSERT_TRUE(besteffort);
    EXPECT_EQ(besteffort->qos, QosClass::kBestEffort);

    auto guaranteed = pod_identity_of_path(std::string("/kubepods/pod") + kUid + "/" + kCid);
    ASSERT_TRUE(guaranteed);
    EXPECT_EQ(guaranteed->qos, QosClass::kGuaranteed);
    EXPECT_EQ(guaranteed->pod_uid, kUid);
}

TEST(PodIdentity, CgroupV1FileWithPodOnSomeControllers) {
    const std::string file = std::string("12:pids:/kubepods/burstable/pod") + kUid + "/" + kCid +
                             "\n"
                             "11:cpu,cpuacct:/kubepods/burstable/pod" +
                             kUid + "/" + kCid +
                             "\n"
                             "1:name=systemd:/kubepods/burstable/pod" +
                             kUid + "/" + kCid + "\n";
    auto id = pod_identity_of_cgroup_file(file);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->pod_uid, kUid);
}

TEST(PodIdentity, HybridFileFindsTheV2Line) {
    const std::string file =
        std::string(
            "9:name=systemd:/\n4:memory:/other/thing\n0::/kubepods.slice/kubepods-besteffort.slice/"
            "kubepods-besteffort-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/cri-containerd-") +
        kCid + ".scope\n";
    auto id = pod_identity_of_cgroup_file(file);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->container_id, kCid);
}

TEST(PodIdentity, PrefixedPathsAndNamespaceRelativePaths) {
    // A kind node's kubelet runs inside a container: its pods sit below a prefix.
    auto kind = pod_identity_of_path(
        std::string("/system.slice/docker-abc.scope/kubelet.slice/kubelet-kubepods.slice/"
                    "kubelet-kubepods-besteffort.slice/"
                    "kubelet-kubepods-besteffort-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/"
                    "cri-containerd-") +
        kCid + ".scope");
    ASSERT_TRUE(kind);
    EXPECT_EQ(kind->pod_uid, kUid);
    EXPECT_EQ(kind->qos, QosClass::kBestEffort);
    // Seen from inside another pod's cgroup namespace: the path climbs with "..".
    auto relative = pod_identity_of_path(
        std::string("/../../kubepods-besteffort-pod0f3a5b2c_6d7e_4f80_91a2_b3c4d5e6f708.slice/"
                    "cri-containerd-") +
        kCid + ".scope");
    ASSERT_TRUE(relative);
    EXPECT_EQ(relative->pod_uid, kUid);
}

TEST(PodIdentity, PodCgroupWithoutContainer) {
    auto id = pod_identity_of_path(std::string("/kubepods/besteffort/pod") + kUid);
    ASSERT_TRUE(id);
    EXPECT_EQ(id->container_id, "");
}

TEST(PodIdentity, NotPods) {
    EXPECT_FALSE(pod_identity_of_cgroup_file("0::/\n"));
    EXPECT_FALSE(pod_identity_of_cgroup_file("0::/system.slice/containerd.service\n"));
    EXPECT_FALSE(pod_identity_of_cgroup_file("0::/user.slice/user-0.slice/session-1.scope\n"));
    EXPECT_FALSE(pod_identity_of_path("/kubepods/burstable/podnot-a-uid/abc"));
    EXPECT_FALSE(pod_identity_of_path("/kubepods.slice/kubepods-burstable.slice"));
    EXPECT_FALSE(pod_identity_of_path(std::string("/kubepods/pod") + kUid + "/not-hex!"));
    EXPECT_FALSE(pod_identity_of_cgroup_file(""));
    EXPECT_FALSE(pod_identity_of_cgroup_file("garbage without colons\n"));
}

TEST(PodIdentity, NodeServiceCgroups) {
    EXPECT_TRUE(in_node_service_cgroup("0::/system.slice/kubelet.service\n"));
    EXPECT_TRUE(in_node_service_cgroup("0::/system.slice/containerd.service\n"));
    EXPECT_TRUE(in_node_service_cgroup("1:name=systemd:/system.slice/crio.service\n0::/\n"));
    EXPECT_TRUE(in_node_service_cgroup("0::/system.slice/docker.service\n"));
    EXPECT_FALSE(in_node_service_cgroup("0::/system.slice/nginx.service\n"));
    EXPECT_FALSE(in_node_service_cgroup("0::/kubelet.service.d/other\n"));
}

}  // namespace
}  // namespace passport::k8s
