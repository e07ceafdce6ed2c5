#include "agent/kernel_features.hpp"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace passport::agent {
namespace {

constexpr long kCgroup2Magic = 0x63677270;  // CGROUP2_SUPER_MAGIC

bool exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
}

std::string read_first_line(const std::string& p) {
    std::ifstream in(p);
    std::string line;
    std::getline(in, line);
    return line;
}

bool is_mounted(const std::string& dir, const std::string& fstype) {
    std::ifstream in("/proc/self/mounts");
    std::string dev, mnt, type, rest;
    while (in >> dev >> mnt >> type) {
        std::getline(in, rest);
        if (mnt == dir && type == fstype) return true;
    }
    return false;
}

// Mounts fstype at dir unless already there. Returns an empty string or the reason it failed.
std::string ensure_mounted(const std::string& dir, const std::string& fstype) {
    if (is_mounted(dir, fstype)) return "";
    ::mkdir(dir.c_str(), 0755);
    if (::mount(fstype.c_str(), dir.c_str(), fstype.c_str(), 0, nullptr) != 0) {
        return "mount " + fstype + " on " + dir + ": " + std::strerror(errno);
    }
    return "";
}

std::string find_cgroup2() {
    std::ifstream in("/proc/self/mounts");
    std::string dev, mnt, type, rest;
    while (in >> dev >> mnt >> type) {
        std::getline(in, rest);
        if (type == "cgroup2") return mnt;
    }
    return "";
}

// Every mount point of a cgroup2 file system, in mount order.
std::vector<std::string> cgroup2_mounts() {
    std::vector<std::string> out;
    std::ifstream in("/proc/self/mounts");
    std::string dev, mnt, type, rest;
    while (in >> dev >> mnt >> type) {
        std::getline(in, rest);
        if (type == "cgroup2") out.push_back(mnt);
    }
    return out;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// A cgroup2 mount made in the cgroup namespace of process `pid`, held only as a file descriptor
// (no mount point, so it works on a read-only root file system and leaves nothing behind). The
// kernel roots a new cgroup2 mount at the creating thread's cgroup namespace root, so the thread
// joins that namespace first (setns affects only the calling thread, which ends right after).
// Needs CAP_SYS_ADMIN (setns and fsopen). Returns the fd, or -1 with the reason in `error`.
int mount_cgroup2_of(uint32_t pid, std::string& error) {
    int result = -1;
    std::thread([&] {
        const std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/cgroup";
        OwnedFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (ns.get() < 0) {
            error = errno_text("open " + ns_path);
            return;
        }
        if (::setns(ns.get(), CLONE_NEWCGROUP) != 0) {
            error = errno_text("join the cgroup namespace of pid " + std::to_string(pid) +
                               " (setns, needs CAP_SYS_ADMIN)");
            return;
        }
        OwnedFd fs(::fsopen("cgroup2", FSOPEN_CLOEXEC));
        if (fs.get() < 0 || ::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
            error = errno_text("create a cgroup2 mount (fsopen, needs CAP_SYS_ADMIN)");
            return;
        }
        result = ::fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
        if (result < 0) error = errno_text("fsmount cgroup2");
    }).join();
    return result;
}

// The cgroup namespace inode of process `pid` (0 when it cannot be read).
ino_t cgroup_ns_of(const std::string& pid) {
    struct stat st {};
    return ::stat(("/proc/" + pid + "/ns/cgroup").c_str(), &st) == 0 ? st.st_ino : 0;
}

// One process in each cgroup namespace this agent can see but its own: pid 1 first (the host's
// init with a host PID namespace), then the others in /proc order, at most `max` namespaces.
std::vector<uint32_t> cgroup_namespace_pids(size_t max) {
    std::vector<uint32_t> out{1};
    std::vector<ino_t> seen{cgroup_ns_of("1"), cgroup_ns_of("self")};
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    for (dirent* e = proc ? ::readdir(proc.get()) : nullptr; e && out.size() < max;
         e = ::readdir(proc.get())) {
        const std::string name = e->d_name;
        if (name.find_first_not_of("0123456789") != std::string::npos || name == "1") continue;
        ino_t ns = cgroup_ns_of(name);
        if (ns == 0 || std::find(seen.begin(), seen.end(), ns) != seen.end()) continue;
        seen.push_back(ns);
        out.push_back(static_cast<uint32_t>(std::stoul(name)));
    }
    return out;
}

// The host's cgroup v2 root made from the cgroup namespace of a process that is in the host's:
// pid 1 with a host PID namespace; any other process when pid 1's is out of reach (an LSM may
// forbid it). A namespace whose root is not the real root (a container's) is passed over.
CgroupRoot cgroup_root_from_namespaces(std::string& error) {
    constexpr size_t kMaxNamespaces = 64;
    for (uint32_t pid : cgroup_namespace_pids(kMaxNamespaces)) {
        std::string why;
        OwnedFd fd(mount_cgroup2_of(pid, why));
        if (is_cgroup2_root(fd.get()))
            return CgroupRoot{std::move(fd),
                              "cgroup2 of pid " + std::to_string(pid) + "'s cgroup namespace", true,
                              ""};
        if (error.empty()) error = why;
    }
    return {};
}

std::string not_host_root_advice(const std::string& path) {
    return path +
           " is a cgroup namespace root, not the host's: pass --cgroup-root with the host's "
           "cgroup v2 mount (e.g. the host's /sys/fs/cgroup mounted at /host/sys/fs/cgroup), or "
           "run in the host's PID namespace with CAP_SYS_ADMIN";
}

CgroupRoot explicit_cgroup_root(const std::string& path) {
    CgroupRoot r;
    r.path = path;
    r.fd = OwnedFd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct statfs s {};
    if (r.fd.get() < 0) {
        r.why_not = errno_text("--cgroup-root " + path);
    } else if (::fstatfs(r.fd.get(), &s) != 0 || s.f_type != kCgroup2Magic) {
        r.why_not = "--cgroup-root " + path + " is not a cgroup v2 mount";
    } else if (!is_cgroup2_root(r.fd.get())) {
        r.why_not = "--cgroup-root " + not_host_root_advice(path);
    } else {
        r.host_root = true;
    }
    return r;
}

bool prog_type_ok(enum bpf_prog_type t) { return libbpf_probe_bpf_prog_type(t, nullptr) == 1; }

}  // namespace

KernelFeatures probe_kernel_features() {
    KernelFeatures f;
    struct utsname u {};
    if (::uname(&u) == 0) f.kernel_release = u.release;

    f.btf = exists("/sys/kernel/btf/vmlinux");
    f.lines.push_back({"BTF (CO-RE)", f.btf,
                       f.btf ? "/sys/kernel/btf/vmlinux" : "missing: kernel built without BTF"});

    std::string tracefs_dir = "/sys/kernel/tracing";
    std::string err = ensure_mounted(tracefs_dir, "tracefs");
    if (!err.empty() && is_mounted("/sys/kernel/debug/tracing", "tracefs")) {
        tracefs_dir = "/sys/kernel/debug/tracing";
        err.clear();
    }
    f.tracefs = err.empty();
    f.lines.push_back({"tracefs", f.tracefs, f.tracefs ? tracefs_dir : err});

    f.syscall_tracepoints = f.tracefs && exists(tracefs_dir + "/events/syscalls/sys_enter_read") &&
                            prog_type_ok(BPF_PROG_TYPE_TRACEPOINT);
    f.lines.push_back({"syscall tracepoints", f.syscall_tracepoints,
                       f.syscall_tracepoints ? "plaintext capture of socket syscalls"
                                             : "missing: no capture possible"});

    // libbpf's generic probe for BPF_PROG_TYPE_TRACING tries an fentry-style load, which some
    // kernels refuse while tp_btf works; the loader finds out for real (BpfProbes::load).
    f.tp_btf = f.btf;

    f.ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) == 1;
    f.lines.push_back(
        {"ring buffer", f.ringbuf, f.ringbuf ? "event transport" : "missing (kernel < 5.8)"});

    f.uprobes = exists("/sys/bus/event_source/devices/uprobe");
    f.lines.push_back({"uprobes", f.uprobes, "TLS library probes (OpenSSL, docs/tls.md)"});

    f.kprobes = exists("/sys/bus/event_source/devices/kprobe");
    f.lines.push_back(
        {"kprobes", f.kprobes,
         f.kprobes ? "present; not needed" : "absent (CONFIG_KPROBES off); not needed"});

    f.sk_msg = prog_type_ok(BPF_PROG_TYPE_SK_MSG);
    f.sock_ops = prog_type_ok(BPF_PROG_TYPE_SOCK_OPS);
    f.cgroup2_path = find_cgroup2();
    f.lines.push_back({"sock_ops + sk_msg", f.sk_msg && f.sock_ops,
                       "X-Amzn-Trace-Id injection" + (f.cgroup2_path.empty()
                                                          ? std::string("; no cgroup v2 mount")
                                                          : "; cgroup v2 at " + f.cgroup2_path)});

    ensure_mounted("/sys/kernel/security", "securityfs");  // only to read the lockdown level
    f.lockdown = read_first_line("/sys/kernel/security/lockdown");
    // "none [integrity] confidentiality": the bracketed word is the active level.
    auto lb = f.lockdown.find('['), rb = f.lockdown.find(']');
    std::string level = (lb != std::string::npos && rb != std::string::npos && rb > lb)
                            ? f.lockdown.substr(lb + 1, rb - lb - 1)
                            : (f.lockdown.empty() ? "unknown" : f.lockdown);
    f.probe_write_user = level == "none";
    f.lines.push_back({"bpf_probe_write_user", f.probe_write_user,
                       "lockdown=" + level + "; not used by Passport"});

    std::string bpffs_err = ensure_mounted("/sys/fs/bpf", "bpf");
    f.lines.push_back({"bpffs", bpffs_err.empty(), bpffs_err.empty() ? "/sys/fs/bpf" : bpffs_err});
    return f;
}

OwnedFd::~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
}

OwnedFd& OwnedFd::operator=(OwnedFd&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.release();
    }
    return *this;
}

bool is_cgroup2_root(int dirfd) {
    struct statfs s {};
    if (dirfd < 0 || ::fstatfs(dirfd, &s) != 0 || s.f_type != kCgroup2Magic) return false;
    // "cgroup.type: A read-write single value file which exists on non-root cgroups."
    // (https://docs.kernel.org/admin-guide/cgroup-v2.html). A cgroup namespace's root is a
    // cgroup below the real root, so it has one; only the hierarchy's root has none.
    return ::faccessat(dirfd, "cgroup.type", F_OK, 0) != 0 && errno == ENOENT;
}

CgroupRoot find_cgroup_root(const std::string& explicit_path) {
    if (!explicit_path.empty()) return explicit_cgroup_root(explicit_path);
    std::string first_mount;
    for (const std::string& mnt : cgroup2_mounts()) {
        OwnedFd fd(::open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (fd.get() < 0) continue;
        if (is_cgroup2_root(fd.get())) return CgroupRoot{std::move(fd), mnt, true, ""};
        spdlog::debug("cgroup2 at {} is not the hierarchy's root (it has cgroup.type)", mnt);
        if (first_mount.empty()) first_mount = mnt;
    }
    std::string error;
    if (CgroupRoot made = cgroup_root_from_namespaces(error); made.host_root) return made;
    CgroupRoot r;
    r.path = first_mount.empty() ? "cgroup2 of pid 1's cgroup namespace" : first_mount;
    r.why_not = not_host_root_advice(r.path);
    if (!error.empty()) r.why_not += " (" + error + ")";
    return r;
}

std::string format_feature_report(const KernelFeatures& f) {
    std::ostringstream out;
    out << "kernel " << f.kernel_release << " features:\n";
    for (const auto& l : f.lines) {
        out << "  " << (l.available ? "[yes] " : "[no]  ") << l.name;
        if (!l.detail.empty()) out << " - " << l.detail;
        out << "\n";
    }
    return out.str();
}

}  // namespace passport::agent
