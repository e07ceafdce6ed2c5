// Kernel layer: which cgroup v2 directory injection attaches to (agent/kernel_features.cpp). The
// real cgroup file system of this machine: its root is recognised as the root, a cgroup made
// below it (what a cgroup namespace's root is) is not, nor a directory of another file system.
// Needs root (creates and removes a cgroup).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "agent/kernel_features.hpp"

namespace passport::agent {
namespace {

// The first cgroup2 mount point, "" when none.
std::string first_cgroup2_mount() {
    std::ifstream in("/proc/self/mounts");
    std::string dev, mnt, type, rest;
    while (in >> dev >> mnt >> type) {
        std::getline(in, rest);
        if (type == "cgroup2") return mnt;
    }
    return "";
}

class CgroupRootTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "creates a cgroup: needs root";
        }
        mount_ = first_cgroup2_mount();
        ASSERT_FALSE(mount_.empty()) << "no cgroup v2 mount";
        child_ = mount_ + "/passport-kernel-test-" + std::to_string(::getpid());
        ASSERT_TRUE(std::filesystem::create_directory(child_)) << child_;
    }
    void TearDown() override {
        if (!child_.empty()) {
            EXPECT_EQ(::rmdir(child_.c_str()), 0) << child_;
        }
    }
    std::string mount_, child_;
};

TEST_F(CgroupRootTest, OnlyTheHierarchysRootIsTheRoot) {
    // This test runs in the host's cgroup namespace, so the mount shows the real root.
    OwnedFd root(::open(mount_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    OwnedFd child(::open(child_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    OwnedFd tmp(::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(is_cgroup2_root(root.get())) << mount_;
    EXPECT_FALSE(is_cgroup2_root(child.get())) << child_;
    EXPECT_FALSE(is_cgroup2_root(tmp.get()));
    EXPECT_FALSE(is_cgroup2_root(-1));
}

TEST_F(CgroupRootTest, ExplicitPathIsCheckedAndExplained) {
    CgroupRoot ok = find_cgroup_root(mount_);
    EXPECT_TRUE(ok.host_root) << ok.why_not;
    EXPECT_GE(ok.fd.get(), 0);
    EXPECT_EQ(ok.path, mount_);

    CgroupRoot below = find_cgroup_root(child_);
    EXPECT_FALSE(below.host_root);
    EXPECT_NE(below.why_not.find(child_ + " is a cgroup namespace root, not the host's"),
              std::string::npos)
        << below.why_not;

    CgroupRoot other = find_cgroup_root("/tmp");
    EXPECT_FALSE(other.host_root);
    EXPECT_NE(other.why_not.find("is not a cgroup v2 mount"), std::string::npos) << other.why_not;

    CgroupRoot missing = find_cgroup_root("/nonexistent-passport-cgroup");
    EXPECT_FALSE(missing.host_root);
    EXPECT_NE(missing.why_not.find("No such file"), std::string::npos) << missing.why_not;
}

TEST_F(CgroupRootTest, FoundWithoutAPathInTheHostsNamespace) {
    CgroupRoot found = find_cgroup_root("");
    EXPECT_TRUE(found.host_root) << found.why_not;
    EXPECT_TRUE(is_cgroup2_root(found.fd.get()));
}

}  // namespace
}  // namespace passport::agent
