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

// Multi-line human report: one line per feature and what Passport does with it.
std::string format_feature_report(const KernelFeatures& f);

}  // namespace passport::agent
