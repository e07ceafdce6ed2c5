#pragma once
// GoTracer: attaches the Go net/http client handoff uprobes (bpf/probes/go_http.bpf.c) to the
// selected processes that run a Go program which can be probed (agent/go_elf.hpp: Go >= 1.17,
// symbol table present). Each process gets uprobes of its own (pid filter in the kernel), on
// its executable as /proc/PID/exe opens it; its go_procs entry is written before they can fire
// and removed, with the uprobes, when it exits. A process that cannot be probed keeps the
// thread rules (docs/context-flow.md, "Go net/http"). Pipeline thread only; link releases go
// to a LinkReaper (a grace period each).
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/go_elf.hpp"
#include "agent/tls_tracer.hpp"
#include "userspace/common/counters.hpp"

struct bpf_link;

namespace passport::agent {

class GoTracer {
  public:
    // Processes probed at once; more are left to the thread rules (counted).
    static constexpr size_t kMaxProcesses = 256;

    GoTracer(BpfProbes& probes, Counters& counters, bool trace_all);
    ~GoTracer();
    GoTracer(const GoTracer&) = delete;
    GoTracer& operator=(const GoTracer&) = delete;

    // Looks at every selected process (trace-all: every process); returns how many it probed.
    size_t scan_selected();
    void on_exec(uint32_t pid) { exec_pending_.insert(pid); }
    void on_exit(uint32_t pid);
    // Processes exec'd or selected since the last look. Call a few times per second.
    void tick();
    size_t probed() const { return links_.size(); }

  private:
    void look(uint32_t pid);
    std::optional<GoBinary> binary(const std::string& exe);
    bool attach(uint32_t pid, const std::string& exe, std::vector<bpf_link*>& out);
    void drop(uint32_t pid);

    BpfProbes& probes_;
    Counters& counters_;
    bool trace_all_;
    uint32_t self_;
    std::map<uint32_t, std::vector<bpf_link*>> links_;
    std::set<uint32_t> scanned_;
    std::set<uint32_t> exec_pending_;
    std::map<std::pair<dev_t, ino_t>, GoBinary> elf_cache_;  // by the executable's (dev, inode)
    LinkReaper reaper_;
};

}  // namespace passport::agent
