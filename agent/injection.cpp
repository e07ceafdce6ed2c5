#include "agent/injection.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "passport_bpf.skel.h"
#include "userspace/common/clock.hpp"

namespace passport::agent {
namespace {

// The kernel side's deny key: prefix length over a 16-byte address, IPv4 as ::ffff:a.b.c.d.
struct DenyKey {
    uint32_t prefixlen;
    uint8_t addr[16];
};

constexpr const char* kOwnCgroupMount = "/run/passport/cgroup2";

}  // namespace

const char* inject_counter_name(int c) {
    switch (c) {
        case PP_INJC_MARKED: return "marked";
        case PP_INJC_DENIED: return "denied";
        case PP_INJC_ADDED: return "sockets";
        case PP_INJC_EBUSY: return "ebusy";
        case PP_INJC_ADD_FAILED: return "sockhash_failed";
        case PP_INJC_INJECTED: return "injected";
        case PP_INJC_APP_HEADER: return "app_header";
        case PP_INJC_SKIP_SPLIT: return "skipped_split_head";
        case PP_INJC_SKIP_FAILED: return "skipped_helper_failed";
        case PP_INJC_NOT_HTTP: return "not_http";
        case PP_INJC_FRAMING_LOST: return "framing_lost";
        case PP_INJC_NO_STORAGE: return "no_storage";
        case PP_INJC_RESYNCED: return "resynced";
        default: return "unknown";
    }
}

Result<std::unique_ptr<Injection>> Injection::attach(BpfProbes& probes, const std::vector<DenyEntry>& deny,
                                                     const std::string& cgroup2_path) {
    if (!probes.injection_loaded())
        return make_error(probes.injection_error().empty() ? "injection programs not loaded"
                                                           : probes.injection_error());
    std::unique_ptr<Injection> inj(new Injection());
    inj->skel_ = probes.skeleton();
    passport_bpf* skel = inj->skel_;

    for (const DenyEntry& d : deny) {
        uint8_t one = 1;
        if (d.is_port) {
            uint16_t port = d.port;
            if (bpf_map_update_elem(bpf_map__fd(skel->maps.inject_deny_ports), &port, &one, BPF_ANY) != 0)
                return make_error(std::string("inject deny port map: ") + std::strerror(errno));
            continue;
        }
        DenyKey k{};
        if (d.family == AF_INET) {
            k.addr[10] = k.addr[11] = 0xff;
            std::memcpy(&k.addr[12], d.addr, 4);
            k.prefixlen = 96 + d.prefix;
        } else {
            std::memcpy(k.addr, d.addr, 16);
            k.prefixlen = d.prefix;
        }
        if (bpf_map_update_elem(bpf_map__fd(skel->maps.inject_deny_cidrs), &k, &one, BPF_ANY) != 0)
            return make_error(std::string("inject deny CIDR map: ") + std::strerror(errno));
    }

    // sk_msg on the sockhash: the map holds it; it goes when the map is freed at exit.
    inj->msg_prog_fd_ = bpf_program__fd(skel->progs.inject_msg);
    inj->sockhash_fd_ = bpf_map__fd(skel->maps.inject_socks);
    if (bpf_prog_attach(inj->msg_prog_fd_, inj->sockhash_fd_, BPF_SK_MSG_VERDICT, 0) != 0)
        return make_error(std::string("attach sk_msg to the sockhash: ") + std::strerror(errno));

    // sock_ops on the cgroup v2 root: every socket of every process passes it; the program
    // itself keeps only selected processes.
    std::string path = cgroup2_path;
    if (path.empty()) {
        ::mkdir("/run/passport", 0755);
        ::mkdir(kOwnCgroupMount, 0755);
        if (::mount("cgroup2", kOwnCgroupMount, "cgroup2", 0, nullptr) != 0)
            return make_error(std::string("no cgroup v2 mount, and mounting one on ") + kOwnCgroupMount +
                              " failed: " + std::strerror(errno));
        inj->mounted_ = true;
        path = kOwnCgroupMount;
    }
    inj->cgroup_path_ = path;
    inj->cgroup_fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (inj->cgroup_fd_ < 0) return make_error("open cgroup " + path + ": " + std::strerror(errno));
    inj->sockops_link_ = bpf_program__attach_cgroup(skel->progs.inject_sockops, inj->cgroup_fd_);
    if (!inj->sockops_link_) {
        // Kernels without cgroup bpf_link: a plain multi-attach, detached by hand at exit.
        int fd = bpf_program__fd(skel->progs.inject_sockops);
        if (bpf_prog_attach(fd, inj->cgroup_fd_, BPF_CGROUP_SOCK_OPS, BPF_F_ALLOW_MULTI) != 0)
            return make_error("attach sock_ops to cgroup " + path + ": " + std::strerror(errno));
        inj->sockops_prog_fd_ = fd;
    }
    return inj;
}

Injection::~Injection() {
    if (sockops_link_) bpf_link__destroy(sockops_link_);
    if (sockops_prog_fd_ >= 0 && cgroup_fd_ >= 0)
        bpf_prog_detach2(sockops_prog_fd_, cgroup_fd_, BPF_CGROUP_SOCK_OPS);
    if (msg_prog_fd_ >= 0 && sockhash_fd_ >= 0) bpf_prog_detach2(msg_prog_fd_, sockhash_fd_, BPF_SK_MSG_VERDICT);
    if (cgroup_fd_ >= 0) ::close(cgroup_fd_);
    if (mounted_) ::umount2(kOwnCgroupMount, MNT_DETACH);
}

std::array<uint64_t, PP_INJC_COUNT> Injection::counters() const {
    std::array<uint64_t, PP_INJC_COUNT> out{};
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0 || !skel_) return out;
    std::vector<uint64_t> vals(static_cast<size_t>(ncpu));
    int fd = bpf_map__fd(skel_->maps.inject_counters);
    for (uint32_t c = 0; c < PP_INJC_COUNT; c++) {
        if (bpf_map_lookup_elem(fd, &c, vals.data()) != 0) continue;
        for (uint64_t v : vals) out[c] += v;
    }
    return out;
}

}  // namespace passport::agent
