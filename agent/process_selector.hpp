#pragma once
// ProcessSelector: applies --pid/--exe and the Kubernetes rules (--k8s-*) to the processes of the
// machine. At start it scans /proc (selecting matches and every descendant of a selected process,
// e.g. nginx workers forked before the agent started); afterwards exec events select new matches.
// Forks of selected processes are selected by the kernel side itself (process.bpf.c), so no fork
// race exists.
//
// With Kubernetes rules, a process is a candidate when --pid/--exe (if given) select it, and is
// selected when its pod (from its cgroup path) passes the rules (userspace/k8s/selection.hpp). A
// process whose pod the API server has not described yet waits, unselected, and is decided again
// when the pod cache changes (refresh()). The kubelet, the container runtimes and their shims,
// kernel threads, the agent and the agent's own pod are never selected unless named explicitly
// (--pid, or an --exe without wildcards).
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/config.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/events/event.hpp"
#include "userspace/k8s/pod_cache.hpp"

namespace passport::agent {

class ProcessSelector {
  public:
    // `pods` is the API server's view, nullptr when it is not used (--k8s-api off, not in a
    // cluster): namespaces then come from each pod's service-account namespace file.
    ProcessSelector(const Config& cfg, BpfProbes& probes, Counters& counters,
                    const k8s::PodCache* pods = nullptr);

    // Initial scan. Returns an error when a --pid names no running process.
    Result<size_t> scan();
    // After the configuration's --pid/--exe changed (a reload; same mode, not trace-all):
    // selects what they choose now and unselects the processes they no longer choose. Nothing
    // changes when a --pid names no running process.
    struct Change {
        std::vector<uint32_t> added;
        std::vector<uint32_t> removed;
    };
    Result<Change> rescan();
    void on_exec(const events::ProcExec& e);
    void on_exit(const events::ProcExit& e);
    // When the pod cache changed: decides again the processes waiting for their pod, and follows
    // pods whose verdict changed (a label added or removed): their processes are selected or
    // unselected. Returns the processes selected now (their TLS libraries and open connections
    // are picked up then).
    std::vector<uint32_t> refresh();
    size_t waiting() const { return waiting_.size(); }

  private:
    // The processes --pid/--exe choose now, with their descendants (fills by_exe_).
    Result<std::set<uint32_t>> choose();
    enum class Outcome { kSelected, kSkipped, kWaiting };
    bool matches_exe(uint32_t pid, const std::string& filename, const std::string& comm) const;
    bool named_by_pid(uint32_t pid) const;
    bool node_service(uint32_t pid, const std::string& comm) const;
    // A candidate (selected by --pid/--exe, or any process when only --k8s-* rules are given)
    // through the exclusions and the Kubernetes rules.
    Outcome consider(uint32_t pid, const std::string& comm);
    Outcome consider_pod(uint32_t pid);
    void select(uint32_t pid, bool inject = true);
    bool candidate(uint32_t pid);
    void follow_pod_changes(const k8s::PodCache::Map& pods, std::vector<uint32_t>& selected);

    const Config& cfg_;
    BpfProbes& probes_;
    Counters& counters_;
    const k8s::PodCache* pods_;
    std::string own_pod_uid_;                  // the agent's pod, when its cgroup path shows one
    std::set<uint32_t> by_exe_;                // selected because of an --exe match
    std::map<uint32_t, std::string> waiting_;  // pid -> pod UID not in the cache yet
    uint64_t pods_version_ = 0;
    std::map<std::string, bool> pod_traced_;  // pod UID -> the rules' verdict at the last refresh
};

}  // namespace passport::agent
