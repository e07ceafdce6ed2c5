#include "agent/kernel_features.hpp"

#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace passport::agent {
namespace {

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
