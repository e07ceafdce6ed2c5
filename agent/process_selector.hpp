#pragma once
// ProcessSelector: applies --pid/--exe to the processes of the machine. At start it scans /proc
// (selecting matches and every descendant of a selected process, e.g. nginx workers forked
// before the agent started); afterwards exec events select new matches. Forks of selected
// processes are selected by the kernel side itself (process.bpf.c), so no fork race exists.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/config.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/events/event.hpp"

namespace passport::agent {

class ProcessSelector {
  public:
    ProcessSelector(const Config& cfg, BpfProbes& probes, Counters& counters);

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
    void on_exit(const events::ProcExit& e) { by_exe_.erase(e.tgid); }

  private:
    // The processes --pid/--exe choose now, with their descendants (fills by_exe_).
    Result<std::set<uint32_t>> choose();
    bool matches_exe(uint32_t pid, const std::string& filename, const std::string& comm) const;
    void select(uint32_t pid);

    const Config& cfg_;
    BpfProbes& probes_;
    Counters& counters_;
    std::set<uint32_t> by_exe_;  // selected because of an --exe match
};

}  // namespace passport::agent
