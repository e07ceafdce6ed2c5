#pragma once
// KernelFeatures: what this kernel lets Passport do, found at start by probing (never by version
// numbers), plus mounting the pseudo filesystems the probes need. The report is printed at start
// so users see which capabilities they get and why others are missing.
#include <string>
#include <vector>

namespace passport::agent {

struct FeatureLine {
    std::string name;
    bool available = false;
    std::string detail;  // why not, or where
};

struct KernelFeatures {
    bool btf = false;
    bool tracefs = false;
    bool syscall_tracepoints = false;
    bool tp_btf = false;
    bool ringbuf = false;
    bool uprobes = false;
    bool kprobes = false;
    bool sk_msg = false;
    bool sock_ops = false;
    bool probe_write_user = false;
    std::string lockdown;      // e.g. "integrity"
    std::string cgroup2_path;  // where cgroup v2 is mounted, empty if nowhere
    std::string kernel_release;
    std::vector<FeatureLine> lines;
};

// Mounts tracefs and bpffs if they are missing (root only) and probes every feature.
KernelFeatures probe_kernel_features();

// A directory fd that is closed when it goes out of scope (move-only).
class OwnedFd {
  public:
    OwnedFd() = default;
    explicit OwnedFd(int fd) : fd_(fd) {}
    ~OwnedFd();
    OwnedFd(OwnedFd&& o) noexcept : fd_(o.release()) {}
    OwnedFd& operator=(OwnedFd&& o) noexcept;
    OwnedFd(const OwnedFd&) = delete;
    OwnedFd& operator=(const OwnedFd&) = delete;
    int get() const { return fd_; }
    int release() {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }

  private:
    int fd_ = -1;
};

// The cgroup v2 directory sock_ops is attached to. Injection reaches every process on the host
// only from the hierarchy's real root; inside a private cgroup namespace (a pod) the mounted
// cgroup2 root is the namespace's own cgroup, which holds only the container's processes.
struct CgroupRoot {
    OwnedFd fd;              // open directory of the cgroup (invalid when none could be opened)
    std::string path;        // where it was found, as the start report names it
    bool host_root = false;  // the real root of the cgroup v2 hierarchy
    std::string why_not;     // when !host_root: what was found and what to do
};

// explicit_path: --cgroup-root ("": find it). Without one, the first of: a mounted cgroup2 that
// is the real root (e.g. the host's /sys/fs/cgroup mounted at /host/sys/fs/cgroup); a cgroup2
// created in pid 1's cgroup namespace without a mount point (the host's with a host PID
// namespace; needs CAP_SYS_ADMIN). docs/injection.md, "Which cgroup".
CgroupRoot find_cgroup_root(const std::string& explicit_path);

// True when dirfd is a cgroup v2 directory with no cgroup.type file, which only the root of the
// hierarchy lacks; false for anything else (another file system, a cgroup below the root).
bool is_cgroup2_root(int dirfd);

// Multi-line human report: one line per feature and what Passport does with it.
std::string format_feature_report(const KernelFeatures& f);

}  // namespace passport::agent
