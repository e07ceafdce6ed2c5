#pragma once
// TlsTracer: attaches the OpenSSL uprobes (bpf/probes/tls.bpf.c) for the selected processes.
//
// What is probed: every `libssl.so*` a selected process maps executable (/proc/PID/maps, opened
// through /proc/PID/root so a container's own copy is the one probed), and its executable when
// that exports SSL_write in .dynsym (OpenSSL linked statically: node). Functions: SSL_read,
// SSL_write, SSL_read_ex, SSL_write_ex (entry + return), SSL_set_fd (entry), by name through
// libbpf's func_name resolution.
//
// How, per binary (dev, inode):
//   - while at most kPerProcessMax selected processes map it (and the agent started with no more
//     than that many selected), each of them gets uprobes of its own (pid filter in the kernel):
//     no other process ever hits one of their breakpoints;
//   - beyond that, one set of uprobes for the binary (pid -1), and the programs keep to the
//     covered processes (pid_bits slot PP_BITS_TLS). Unselected processes that map the same
//     binary then take a breakpoint trap per call (docs/performance.md gives its cost). The
//     per-process uprobes of that binary are released then.
// Why: the kernel releases every uprobe perf event after its own RCU tasks-trace grace period,
// one at a time (~85 ms each measured here): 9 per process made exit take minutes with
// hundreds of processes. Per binary, exit releases 9 per binary, whatever the process count.
//
// A covered process: its TLS bit set (before its uprobes can fire), listed in tls_procs, and a
// debug line "tls: attached pid N: PATH (FUNCTIONS)" (tests wait on it).
//
// When processes are (re)scanned:
//   - at start (begin_scan): every selected process (trace-all: every process); the maps are read
//     at once, the attaching runs in slices (attach_step) so the agent is ready before it ends;
//   - on tick(): processes the kernel flagged in tls_rescan because they mapped executable memory
//     (a library loaded late: dlopen, python's `import ssl`), selected processes not scanned yet
//     (exec'd later, forked children), and processes whose exec was reported;
//   - on exit: the process is uncovered and its own uprobes released.
// Releasing a link can block for a grace period: a thread of its own does it (LinkReaper), never
// the pipeline thread. Pipeline thread only otherwise.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/tls_elf.hpp"
#include "userspace/common/counters.hpp"

struct bpf_link;

namespace passport::agent {

// Destroys bpf links on a thread of its own, in the order given. The destructor waits until
// every link handed over is released (the kernel's grace periods included).
class LinkReaper {
  public:
    LinkReaper();
    ~LinkReaper();
    LinkReaper(const LinkReaper&) = delete;
    LinkReaper& operator=(const LinkReaper&) = delete;
    void release(std::vector<bpf_link*> links);

  private:
    void run();
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<bpf_link*> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

class TlsTracer {
  public:
    // Processes a binary may have uprobes of their own for; beyond, one set for the binary.
    static constexpr size_t kPerProcessMax = 2;

    TlsTracer(BpfProbes& probes, Counters& counters, bool trace_all);
    ~TlsTracer();
    TlsTracer(const TlsTracer&) = delete;
    TlsTracer& operator=(const TlsTracer&) = delete;

    // Reads the maps of every selected process (trace-all: every process in /proc) and queues
    // what to attach. Returns the number of distinct binaries found.
    size_t begin_scan();
    // Whether this agent may create a uprobe here: one on a libc function in its own process,
    // released at once. Empty when it can, else why not (e.g. EACCES without CAP_SYS_ADMIN).
    std::string can_attach();
    // Attaches queued work for about `budget`; true once nothing is left.
    bool attach_step(std::chrono::milliseconds budget);
    bool scanning() const { return !queue_.empty(); }
    // Both at once (tests, and tools that need every uprobe in place before they go on).
    void scan_selected() {
        begin_scan();
        while (!attach_step(std::chrono::milliseconds(100))) {
        }
    }

    void on_exec(uint32_t pid) { exec_pending_.insert(pid); }
    void on_exit(uint32_t pid);
    // Rescans what changed since the last tick (see above). Call a few times per second.
    void tick();

    size_t attached_binaries() const;
    size_t attached_processes() const { return by_pid_.size(); }
    // "pid 123: /usr/lib/x86_64-linux-gnu/libssl.so.3 (SSL_read SSL_write ...)" per covered
    // (process, binary).
    std::vector<std::string> describe() const;

  private:
    using Key = std::pair<dev_t, ino_t>;
    // A binary some process maps, found by a scan.
    struct Found {
        uint32_t pid;
        Key key;
        std::string open_path;  // through /proc/PID/root (or /proc/PID/exe)
    };
    struct Binary {
        std::string path;  // as the first process maps it
        std::string functions;
        TlsSymbols syms;
        std::vector<bpf_link*> shared;                   // pid -1, once many processes map it
        std::map<uint32_t, std::vector<bpf_link*>> own;  // per process
        std::set<uint32_t> pids;                         // covered processes
    };

    std::vector<Found> scan(uint32_t pid);
    void consider(uint32_t pid, const std::string& open_path, const std::string& shown_path,
                  bool require_export, std::vector<Found>& out);
    void cover(const Found& f);
    bool attach_shared(Binary& b, const std::string& open_path);
    bool attach(Binary& b, pid_t pid, const std::string& open_path, std::vector<bpf_link*>& out);
    void uncover(uint32_t pid);
    void update_gauges();
    std::optional<TlsSymbols> symbols(const std::string& open_path, dev_t dev, ino_t ino);

    BpfProbes& probes_;
    Counters& counters_;
    bool trace_all_;
    uint32_t self_;
    bool many_ = false;  // started with more than kPerProcessMax selected: per binary at once
    std::deque<Found> queue_;
    std::map<Key, Binary> binaries_;
    std::map<uint32_t, std::vector<Key>> by_pid_;
    std::set<uint32_t> scanned_;
    std::set<uint32_t> exec_pending_;
    std::map<Key, std::optional<TlsSymbols>> elf_cache_;
    LinkReaper reaper_;
};

}  // namespace passport::agent
