#pragma once
// Injection: attaches the X-Amzn-Trace-Id injection programs (bpf/probes/inject.bpf.c) loaded by
// BpfProbes: sock_ops on the cgroup v2 root (a bpf_link, gone when the agent exits) and sk_msg
// on the sockhash (released with the map). Fills the deny lists, keeps the kernel's
// monotonic->epoch offset (clock_sync) fresh for trace ids minted in the kernel, and reads the
// injection counters for the exit report. See docs/injection.md.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.hpp"
#include "passport/abi.h"
#include "userspace/common/result.hpp"

struct bpf_link;
struct passport_bpf;

namespace passport::agent {

class BpfProbes;

class Injection {
public:
    // cgroup2_path: where cgroup v2 is mounted ("" = none: mount one under /run/passport).
    static Result<std::unique_ptr<Injection>> attach(BpfProbes& probes, const std::vector<DenyEntry>& deny,
                                                     const std::string& cgroup2_path);
    ~Injection();
    Injection(const Injection&) = delete;
    Injection& operator=(const Injection&) = delete;

    const std::string& cgroup_path() const { return cgroup_path_; }
    // Sum over CPUs of each enum pp_inject_counter.
    std::array<uint64_t, PP_INJC_COUNT> counters() const;

private:
    Injection() = default;
    passport_bpf* skel_ = nullptr;
    bpf_link* sockops_link_ = nullptr;
    int cgroup_fd_ = -1;
    int sockops_prog_fd_ = -1;  // attached without a link (old kernels): detached by hand
    int msg_prog_fd_ = -1;
    int sockhash_fd_ = -1;
    std::string cgroup_path_;
    bool mounted_ = false;
};


const char* inject_counter_name(int c);

}  // namespace passport::agent
