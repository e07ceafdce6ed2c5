#pragma once
// Injection: attaches the X-Amzn-Trace-Id injection programs (bpf/probes/inject.bpf.c) loaded by
// BpfProbes: sock_ops on the host's cgroup v2 root (a bpf_link, gone when the agent exits) and
// sk_msg on the sockhash (released with the map). Fills the deny lists and reads the injection
// counters for the exit report. The kernel's monotonic->epoch offset (clock_sync), which trace
// ids minted in the kernel use, is BpfProbes' (written at load, refreshed every second by the
// agent's loop). See docs/injection.md.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "agent/kernel_features.hpp"
#include "passport/abi.h"
#include "userspace/common/result.hpp"

struct bpf_link;
struct passport_bpf;

namespace passport::agent {

class BpfProbes;

class Injection {
  public:
    // root: the cgroup v2 root sock_ops goes on (find_cgroup_root; the Injection keeps its fd).
    // trace_all: every process but the agent is selected (no --pid/--exe).
    static Result<std::unique_ptr<Injection>> attach(BpfProbes& probes,
                                                     const std::vector<DenyEntry>& deny,
                                                     CgroupRoot root, bool trace_all = false);
    ~Injection();
    Injection(const Injection&) = delete;
    Injection& operator=(const Injection&) = delete;

    const std::string& cgroup_path() const { return cgroup_path_; }

    // Connections opened before the agent started (or before their process was selected) never
    // passed sock_ops. Adopts the established TCP client connections of process pid (never the
    // agent's own, never a process that is not selected): each one not denied and not yet in
    // the sockhash is put there from userspace, its state starting at the next request
    // boundary. What was done with each socket is logged at debug level. Returns the number
    // adopted.
    size_t adopt_process(uint32_t pid);
    // adopt_process over every selected process (trace_all: every process but the agent).
    size_t adopt_selected();

    struct AdoptCounts {
        uint64_t adopted = 0;   // sockets put in the sockhash
        uint64_t denied = 0;    // destination denied (--inject-deny)
        uint64_t ebusy = 0;     // another sk_msg user owns the socket
        uint64_t failed = 0;    // pidfd_getfd, sockhash or map failures
        uint64_t blocking = 0;  // blocking sockets, never adopted (see docs/injection.md)
        uint64_t removed = 0;   // adopted sockets removed again on the sk_msg program's request
    };
    // Removes an adopted socket from the sockhash (the sk_msg program asked: not HTTP/1, turned
    // blocking, or its send buffer filled).
    void remove_socket(uint64_t cookie);
    const AdoptCounts& adopt_counts() const { return adopt_; }
    // Sum over CPUs of each enum pp_inject_counter.
    std::array<uint64_t, PP_INJC_COUNT> counters() const;

  private:
    Injection() = default;
    bool adoptable(uint32_t pid) const;
    bool denied(const pp_endpoint& remote) const;
    bool adopt_socket(uint32_t pid, int pidfd, int target_fd, uint32_t netns);
    bool join_sockhash(uint64_t cookie, const pp_inject_adopt& a, int sock_fd,
                       const std::string& what);
    uint64_t probes_tx_pos(uint32_t pid, int fd) const;
    void prune_adopt_map();

    passport_bpf* skel_ = nullptr;
    BpfProbes* probes_ = nullptr;
    bool trace_all_ = false;
    AdoptCounts adopt_;
    bpf_link* sockops_link_ = nullptr;
    int cgroup_fd_ = -1;
    int msg_prog_fd_ = -1;
    int sockhash_fd_ = -1;
    std::string cgroup_path_;
};

const char* inject_counter_name(int c);

}  // namespace passport::agent
