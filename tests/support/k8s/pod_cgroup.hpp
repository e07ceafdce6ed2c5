#pragma once
// A pod's container cgroup as the kubelet lays it out (systemd driver, containerd:
// kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice/
// cri-containerd-<id>.scope), made on this host's cgroup v2 hierarchy for a test and removed at
// its end. Header-only, like fake_api.hpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace passport::testing {

// Where the cgroup v2 hierarchy is mounted ("" when it is not).
inline std::filesystem::path cgroup2_root() {
    std::ifstream mounts("/proc/self/mounts");
    for (std::string dev, dir, type, rest;
         mounts >> dev >> dir >> type && std::getline(mounts, rest);) {
        if (type == "cgroup2") return dir;
    }
    return {};
}

inline bool write_text(const std::filesystem::path& p, const std::string& text) {
    std::ofstream out(p);
    out << text;
    out.flush();
    return static_cast<bool>(out);
}

// One pod's container cgroup, created below the cgroup v2 root with the kubelet's systemd-driver
// names; the directories it created are removed (after moving any process left back to the root).
class PodCgroup {
  public:
    // `id`: the container id in the scope's name; by default the uid's hex twice (64 digits).
    PodCgroup(std::filesystem::path root, const std::string& uid, std::string id = "")
        : root_(std::move(root)) {
        std::string u = uid;
        std::replace(u.begin(), u.end(), '-', '_');
        if (id.empty()) {
            for (char c : uid)
                if (c != '-') id += c;
            id += id;
        }
        const std::filesystem::path rel =
            std::filesystem::path("kubepods.slice") / "kubepods-besteffort.slice" /
            ("kubepods-besteffort-pod" + u + ".slice") / ("cri-containerd-" + id + ".scope");
        std::filesystem::path p = root_;
        for (const auto& part : rel) {
            p /= part;
            if (!std::filesystem::exists(p)) {
                std::filesystem::create_directory(p);
                created_.insert(created_.begin(), p);  // innermost first
            }
        }
        leaf_ = p;
    }
    ~PodCgroup() {
        for (int round = 0; round < 50; round++) {
            std::ifstream procs(leaf_ / "cgroup.procs");
            bool any = false;
            for (std::string pid; procs >> pid;) {
                any = true;
                write_text(root_ / "cgroup.procs", pid);
            }
            if (!any) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        for (const auto& dir : created_) {
            if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
                ADD_FAILURE() << "rmdir " << dir << ": " << std::strerror(errno);
        }
    }
    PodCgroup(const PodCgroup&) = delete;
    PodCgroup& operator=(const PodCgroup&) = delete;

    bool add(pid_t pid) const { return write_text(leaf_ / "cgroup.procs", std::to_string(pid)); }
    // The container id in the scope's name (the uid's hex twice: 64 hex digits).
    std::string container_id() const {
        const std::string leaf = leaf_.filename().string();
        return leaf.substr(leaf.find('-', 4) + 1, 64);
    }

  private:
    std::filesystem::path root_;
    std::filesystem::path leaf_;
    std::vector<std::filesystem::path> created_;  // innermost first
};

}  // namespace passport::testing
