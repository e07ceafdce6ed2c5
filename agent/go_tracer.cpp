#include "agent/go_tracer.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "agent/go_elf.hpp"
#include "agent/proc_list.hpp"

namespace passport::agent {

namespace {

struct GoHook {
    const char* function;
    const char* program;
};

constexpr std::array<GoHook, 2> kGoHooks = {{
    {"net/http.(*persistConn).roundTrip", "go_persistconn_roundtrip"},
    {"net/http.(*Request).write", "go_request_write"},
}};

}  // namespace

GoTracer::GoTracer(BpfProbes& probes, Counters& counters, bool trace_all)
    : probes_(probes),
      counters_(counters),
      trace_all_(trace_all),
      self_(static_cast<uint32_t>(::getpid())) {
    counters_.set("go.processes_probed", 0);
}

GoTracer::~GoTracer() {
    for (auto& [pid, links] : links_) reaper_.release(std::move(links));
}

size_t GoTracer::scan_selected() {
    for (uint32_t pid : trace_all_ ? list_pids() : probes_.selected_pids()) look(pid);
    return links_.size();
}

void GoTracer::tick() {
    for (uint32_t pid : exec_pending_) {
        drop(pid);  // a new program: the old one's uprobes name nothing in it
        scanned_.erase(pid);
        if (trace_all_ || probes_.is_selected(pid)) look(pid);
    }
    exec_pending_.clear();
    if (trace_all_) return;
    for (uint32_t pid : probes_.selected_pids()) {
        if (!scanned_.count(pid)) look(pid);
    }
}

void GoTracer::on_exit(uint32_t pid) {
    scanned_.erase(pid);
    exec_pending_.erase(pid);
    drop(pid);
}

void GoTracer::drop(uint32_t pid) {
    auto it = links_.find(pid);
    if (it == links_.end()) return;
    reaper_.release(std::move(it->second));
    links_.erase(it);
    const int procs = probes_.map_fd("go_procs");
    if (procs >= 0) bpf_map_delete_elem(procs, &pid);
    spdlog::debug("go: detached pid {}", pid);
    counters_.set("go.processes_probed", links_.size());
}

// A selected process running a Go program that can be probed gets its uprobes.
void GoTracer::look(uint32_t pid) {
    if (pid == self_ || pid == 0 || !scanned_.insert(pid).second || links_.count(pid)) return;
    const std::string exe = "/proc/" + std::to_string(pid) + "/exe";
    auto bin = binary(exe);
    if (!bin || !bin->is_go) return;  // exited meanwhile, or not Go
    if (!bin->usable()) {
        spdlog::info("go: pid {} ({}) is not probed: {}; its calls keep the thread rules", pid,
                     bin->version, bin->why_not());
        counters_.add("go.not_probed");
        return;
    }
    if (links_.size() >= kMaxProcesses) {
        counters_.add("go.not_probed");
        return;
    }
    const int procs = probes_.map_fd("go_procs");
    const uint8_t one = 1;
    if (procs < 0 || bpf_map_update_elem(procs, &pid, &one, BPF_ANY) != 0) return;
    std::vector<bpf_link*> links;
    if (!attach(pid, exe, links)) {
        bpf_map_delete_elem(procs, &pid);
        counters_.add("go.attach_failed");
        return;
    }
    links_[pid] = std::move(links);
    counters_.set("go.processes_probed", links_.size());
    spdlog::debug("go: attached pid {}: {} (net/http client handoff)", pid, bin->version);
}

// What the executable offers, read once per (dev, inode): every process of a program shares it.
std::optional<GoBinary> GoTracer::binary(const std::string& exe) {
    struct stat st {};
    if (::stat(exe.c_str(), &st) != 0) return std::nullopt;
    const auto key = std::make_pair(st.st_dev, st.st_ino);
    if (auto it = elf_cache_.find(key); it != elf_cache_.end()) return it->second;
    auto r = read_go_binary(exe);
    if (!r) return std::nullopt;
    constexpr size_t kMaxCached = 4096;  // a machine that keeps building new programs
    if (elf_cache_.size() >= kMaxCached) elf_cache_.clear();
    elf_cache_[key] = *r;
    return *r;
}

bool GoTracer::attach(uint32_t pid, const std::string& exe, std::vector<bpf_link*>& out) {
    for (const GoHook& h : kGoHooks) {
        bpf_program* prog = probes_.program(h.program);
        if (!prog) return false;
        LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = false, .func_name = h.function);
        bpf_link* link =
            bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), exe.c_str(), 0, &opts);
        if (!link) {
            spdlog::warn("go: cannot attach {} for pid {}: {}", h.function, pid,
                         std::strerror(errno));
            reaper_.release(std::move(out));
            out.clear();
            return false;
        }
        out.push_back(link);
    }
    return true;
}

}  // namespace passport::agent
