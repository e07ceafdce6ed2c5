#pragma once
// TlsTracer: attaches the OpenSSL uprobes (bpf/probes/tls.bpf.c) to the selected processes, per
// process and per binary, so no other process ever hits one of their breakpoints (a uprobe trap
// costs 5-20 us on the measured VM).
//
// What is attached, for each selected process:
//   - every `libssl.so*` it maps executable (/proc/PID/maps), opened through /proc/PID/root so
//     a container's own copy is the one probed;
//   - its executable, when that exports SSL_write in .dynsym (OpenSSL linked statically: node).
// Functions: SSL_read, SSL_write, SSL_read_ex, SSL_write_ex (entry + return), SSL_set_fd (entry),
// by name through libbpf's func_name resolution. A (pid, binary) pair is attached once.
//
// When processes are (re)scanned:
//   - at start: every selected process (trace-all: every process);
//   - on tick(): processes the kernel flagged in tls_rescan because they mapped executable memory
//     (a library loaded late: dlopen, python's `import ssl`), selected processes not scanned yet
//     (exec'd later, forked children), and processes whose exec was reported;
//   - on exit: the process's uprobes are detached.
// Pipeline thread only.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/tls_elf.hpp"
#include "userspace/common/counters.hpp"

struct bpf_link;

namespace passport::agent {

class TlsTracer {
  public:
    TlsTracer(BpfProbes& probes, Counters& counters, bool trace_all);
    ~TlsTracer();
    TlsTracer(const TlsTracer&) = delete;
    TlsTracer& operator=(const TlsTracer&) = delete;

    // Scans every selected process (trace-all: every process in /proc).
    void scan_selected();
    void on_exec(uint32_t pid) { exec_pending_.insert(pid); }
    void on_exit(uint32_t pid);
    // Rescans what changed since the last tick (see above). Call a few times per second.
    void tick();

    size_t attached_binaries() const;
    size_t attached_processes() const { return by_pid_.size(); }
    // "pid 123: /usr/lib/x86_64-linux-gnu/libssl.so.3 (SSL_read SSL_write ...)" per binary.
    std::vector<std::string> describe() const;

  private:
    struct Attachment {
        dev_t dev = 0;
        ino_t ino = 0;
        std::string path;  // as the process maps it
        std::string functions;
        std::vector<bpf_link*> links;
    };
    void scan(uint32_t pid);
    void consider(uint32_t pid, const std::string& open_path, const std::string& shown_path,
                  bool require_export);
    bool attach(uint32_t pid, const std::string& open_path, const TlsSymbols& syms, Attachment& a);
    std::optional<TlsSymbols> symbols(const std::string& open_path, dev_t dev, ino_t ino);

    BpfProbes& probes_;
    Counters& counters_;
    bool trace_all_;
    uint32_t self_;
    std::map<uint32_t, std::vector<Attachment>> by_pid_;
    std::set<uint32_t> scanned_;
    std::set<uint32_t> exec_pending_;
    std::map<std::pair<dev_t, ino_t>, std::optional<TlsSymbols>> elf_cache_;
};

}  // namespace passport::agent
