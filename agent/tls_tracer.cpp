#include "agent/tls_tracer.hpp"
#include "agent/link_release.hpp"
#include "agent/proc_list.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include <spdlog/spdlog.h>

namespace passport::agent {

namespace {

struct Hook {
    const char* function;
    const char* program;
    bool retprobe;
    bool required;
};

// The uretprobe program is shared: it finds the call's direction in tls_calls.
constexpr Hook kHooks[] = {
    {"SSL_write", "ssl_write_enter", false, true},        {"SSL_write", "ssl_ret", true, true},
    {"SSL_read", "ssl_read_enter", false, true},          {"SSL_read", "ssl_ret", true, true},
    {"SSL_write_ex", "ssl_write_ex_enter", false, false}, {"SSL_write_ex", "ssl_ret", true, false},
    {"SSL_read_ex", "ssl_read_ex_enter", false, false},   {"SSL_read_ex", "ssl_ret", true, false},
    {"SSL_set_fd", "ssl_set_fd_enter", false, false},
};

bool has(const TlsSymbols& s, const char* fn) {
    std::string_view f = fn;
    if (f == "SSL_write") return s.ssl_write;
    if (f == "SSL_read") return s.ssl_read;
    if (f == "SSL_write_ex") return s.ssl_write_ex;
    if (f == "SSL_read_ex") return s.ssl_read_ex;
    if (f == "SSL_set_fd") return s.ssl_set_fd;
    return false;
}

bool is_libssl(const std::string& path) {
    auto slash = path.rfind('/');
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    return base.rfind("libssl.so", 0) == 0;
}

}  // namespace

LinkReaper::LinkReaper() : thread_([this] { run(); }) {}

LinkReaper::~LinkReaper() {
    {
        std::lock_guard<std::mutex> lock(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

void LinkReaper::release(std::vector<bpf_link*> links) {
    if (links.empty()) return;
    {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.insert(queue_.end(), links.begin(), links.end());
    }
    cv_.notify_one();
}

// Each destroy closes a perf event; the kernel returns once the uprobe's grace period is over.
// What is queued is released together (agent/link_release.hpp).
void LinkReaper::run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything released
        std::vector<bpf_link*> batch(queue_.begin(), queue_.end());
        queue_.clear();
        lock.unlock();
        release_links_together(std::move(batch));
        lock.lock();
    }
}

TlsTracer::TlsTracer(BpfProbes& probes, Counters& counters, bool trace_all)
    : probes_(probes),
      counters_(counters),
      trace_all_(trace_all),
      self_(static_cast<uint32_t>(::getpid())) {
    update_gauges();
    counters_.add("tls.attach_failed", 0);
}

// Every link goes to the reaper, whose destructor (it is the last member) waits for them.
TlsTracer::~TlsTracer() {
    for (auto& [key, b] : binaries_) {
        reaper_.release(std::move(b.shared));
        for (auto& [pid, links] : b.own) reaper_.release(std::move(links));
    }
}

size_t TlsTracer::attached_binaries() const {
    size_t n = 0;
    for (const auto& [key, b] : binaries_) n += b.shared.empty() && b.own.empty() ? 0 : 1;
    return n;
}

std::vector<std::string> TlsTracer::describe() const {
    std::vector<std::string> out;
    for (const auto& [key, b] : binaries_) {
        for (uint32_t pid : b.pids)
            out.push_back("pid " + std::to_string(pid) + ": " + b.path + " (" + b.functions + ")" +
                          (b.shared.empty() ? "" : " [per binary]"));
    }
    return out;
}

size_t TlsTracer::begin_scan() {
    const std::vector<uint32_t> pids = trace_all_ ? list_pids() : probes_.selected_pids();
    many_ = trace_all_ || pids.size() > kPerProcessMax;
    std::set<Key> keys;
    for (uint32_t pid : pids) {
        for (Found& f : scan(pid)) {
            keys.insert(f.key);
            queue_.push_back(std::move(f));
        }
    }
    return keys.size();
}

bool TlsTracer::attach_step(std::chrono::milliseconds budget) {
    const auto until = std::chrono::steady_clock::now() + budget;
    while (!queue_.empty() && std::chrono::steady_clock::now() < until) {
        Found f = std::move(queue_.front());
        queue_.pop_front();
        cover(f);
    }
    return queue_.empty();
}

void TlsTracer::tick() {
    if (scanning()) return;  // the start scan is being attached: tick resumes after it
    // Entries outlive their processes (queued work may name them); a machine that keeps making
    // new binaries must not grow the table for ever: forget those nothing uses, between scans.
    constexpr size_t kMaxBinaries = 4096;
    if (binaries_.size() >= kMaxBinaries)
        std::erase_if(binaries_, [](const auto& kv) { return kv.second.pids.empty(); });
    std::vector<Found> found;
    auto look = [&](uint32_t pid) {
        auto more = scan(pid);
        found.insert(found.end(), std::make_move_iterator(more.begin()),
                     std::make_move_iterator(more.end()));
    };
    // Libraries mapped since the last look (the kernel flags selected processes at mmap).
    const int rescan_fd = probes_.map_fd("tls_rescan");
    for (uint32_t pid : u32_map_keys(rescan_fd)) {
        bpf_map_delete_elem(rescan_fd, &pid);
        counters_.add("tls.rescans");
        look(pid);
    }
    for (uint32_t pid : exec_pending_) {
        scanned_.erase(pid);
        if (trace_all_ || probes_.is_selected(pid)) look(pid);
    }
    exec_pending_.clear();
    // Selected since the last look: exec'd later (--exe), forked by a selected process.
    if (!trace_all_) {
        for (uint32_t pid : probes_.selected_pids()) {
            if (!scanned_.count(pid)) look(pid);
        }
    }
    for (const Found& f : found) cover(f);
}

void TlsTracer::on_exit(uint32_t pid) {
    scanned_.erase(pid);
    exec_pending_.erase(pid);
    if (scanning()) {
        std::erase_if(queue_, [pid](const Found& f) { return f.pid == pid; });
    }
    if (!by_pid_.count(pid)) return;
    uncover(pid);
    counters_.add("tls.detached_processes");
    update_gauges();
}

// The process leaves every binary it was covered in; a binary left with no covered process
// loses its uprobes (unselected processes then take no more traps on it).
void TlsTracer::uncover(uint32_t pid) {
    auto it = by_pid_.find(pid);
    for (const Key& key : it->second) {
        Binary& b = binaries_.at(key);
        b.pids.erase(pid);
        if (auto own = b.own.find(pid); own != b.own.end()) {
            reaper_.release(std::move(own->second));
            b.own.erase(own);
        }
        spdlog::debug("tls: detached pid {}: {}", pid, b.path);
        if (b.pids.empty()) {  // the entry stays: queued processes may still need it
            reaper_.release(std::move(b.shared));
            b.shared.clear();
            for (auto& [other, links] : b.own) reaper_.release(std::move(links));
            b.own.clear();
        }
    }
    by_pid_.erase(it);
    int procs = probes_.map_fd("tls_procs");
    if (procs >= 0) bpf_map_delete_elem(procs, &pid);
    probes_.set_tls_proc(pid, false);
}

void TlsTracer::update_gauges() {
    counters_.set("tls.binaries_attached", attached_binaries());
    counters_.set("tls.processes_covered", by_pid_.size());
}

std::vector<TlsTracer::Found> TlsTracer::scan(uint32_t pid) {
    std::vector<Found> out;
    if (pid == self_ || pid == 0) return out;
    scanned_.insert(pid);
    const std::string proc = "/proc/" + std::to_string(pid);
    std::ifstream maps(proc + "/maps");
    if (!maps) return out;  // exited meanwhile
    std::set<std::string> libs;
    std::string line;
    while (std::getline(maps, line)) {
        // address perms offset dev inode path
        std::istringstream in(line);
        std::string addr, perms, offset, dev, inode, path;
        in >> addr >> perms >> offset >> dev >> inode;
        std::getline(in >> std::ws, path);
        if (perms.size() < 3 || perms[2] != 'x' || path.empty() || path[0] != '/') continue;
        if (path.find(" (deleted)") != std::string::npos) continue;
        if (is_libssl(path)) libs.insert(path);
    }
    for (const auto& lib : libs)
        consider(pid, std::string(proc).append("/root").append(lib), lib, false, out);
    // The program itself, when it carries OpenSSL (node): only if it exports SSL_write.
    std::array<char, 4096> exe{};
    ssize_t n = ::readlink((proc + "/exe").c_str(), exe.data(), exe.size() - 1);
    if (n > 0) {
        std::string path(exe.data(), static_cast<size_t>(n));
        if (!is_libssl(path)) consider(pid, proc + "/exe", path, true, out);
    }
    return out;
}

std::optional<TlsSymbols> TlsTracer::symbols(const std::string& open_path, dev_t dev, ino_t ino) {
    auto key = std::make_pair(dev, ino);
    if (auto it = elf_cache_.find(key); it != elf_cache_.end()) return it->second;
    auto r = read_tls_symbols(open_path);
    std::optional<TlsSymbols> v;
    if (r)
        v = *r;
    else
        spdlog::debug("tls: {}: {}", open_path, r.error());
    // One entry per distinct binary seen; a machine that keeps making new ones (builds) must not
    // grow it for ever: start over, the next look reads the ELF again.
    constexpr size_t kMaxElfCache = 4096;
    if (elf_cache_.size() >= kMaxElfCache) {
        counters_.add("tls.elf_cache_cleared");
        elf_cache_.clear();
    }
    elf_cache_[key] = v;
    return v;
}

// A binary of `pid` worth probing: queued in `out` unless the process is covered in it already.
void TlsTracer::consider(uint32_t pid, const std::string& open_path, const std::string& shown_path,
                         bool require_export, std::vector<Found>& out) {
    struct stat st {};
    if (::stat(open_path.c_str(), &st) != 0) return;
    const Key key{st.st_dev, st.st_ino};
    if (auto it = binaries_.find(key); it != binaries_.end() && it->second.pids.count(pid)) return;
    auto syms = symbols(open_path, st.st_dev, st.st_ino);
    if (!syms || !syms->usable() || (require_export && !syms->exported)) return;
    auto [it, added] = binaries_.try_emplace(key);
    if (added) {
        it->second.path = shown_path;
        it->second.syms = *syms;
    }
    out.push_back(Found{pid, key, open_path});
}

// Covers `f.pid` in binary `f.key`: its TLS bit first (the socket probes look at the TLS maps for
// it before a uprobe can let a call of it through), then uprobes of its own, or the binary's.
void TlsTracer::cover(const Found& f) {
    Binary& b = binaries_.at(f.key);  // made by consider(), never erased
    if (b.pids.count(f.pid)) return;
    const bool had_tls = by_pid_.count(f.pid) > 0;
    probes_.set_tls_proc(f.pid, true);
    bool ok = true;
    if (b.shared.empty()) {
        if (!many_ && b.own.size() < kPerProcessMax) {
            std::vector<bpf_link*> links;
            ok = attach(b, static_cast<pid_t>(f.pid), f.open_path, links);
            if (ok) b.own[f.pid] = std::move(links);
        } else {
            ok = attach_shared(b, f.open_path);
        }
    }
    if (!ok) {
        if (!had_tls) probes_.set_tls_proc(f.pid, false);
        update_gauges();
        return;
    }
    b.pids.insert(f.pid);
    by_pid_[f.pid].push_back(f.key);
    uint8_t one = 1;
    int procs = probes_.map_fd("tls_procs");
    if (procs >= 0) bpf_map_update_elem(procs, &f.pid, &one, BPF_ANY);
    spdlog::debug("tls: attached pid {}: {} ({})", f.pid, b.path, b.functions);
    counters_.add("tls.attached_processes");
    update_gauges();
}

// One set of uprobes for the binary, every process; its per-process ones are released after it
// is in place (a call seen by both is counted once: tls.bpf.c).
bool TlsTracer::attach_shared(Binary& b, const std::string& open_path) {
    if (!attach(b, -1, open_path, b.shared)) return false;
    spdlog::info("tls: {} is probed once for every process now ({} processes selected map it)",
                 b.path, b.own.size() + 1);
    for (auto& [pid, links] : b.own) reaper_.release(std::move(links));
    b.own.clear();
    return true;
}

std::string TlsTracer::can_attach() {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    std::string libc;
    while (libc.empty() && std::getline(maps, line)) {
        const auto slash = line.find('/');
        if (slash != std::string::npos && line.find("/libc.so") != std::string::npos)
            libc = line.substr(slash);
    }
    if (libc.empty()) return "no libc mapping found in /proc/self/maps to try a uprobe on";
    bpf_program* prog = probes_.program(kHooks[0].program);
    if (prog == nullptr) return std::string("no program ") + kHooks[0].program;
    // The agent is never selected, so the program returns at once if getpgrp() is called.
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = false, .func_name = "getpgrp");
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, ::getpid(), libc.c_str(), 0, &opts);
    if (link == nullptr) return std::strerror(errno);
    reaper_.release({link});
    return {};
}

bool TlsTracer::attach(Binary& b, pid_t pid, const std::string& open_path,
                       std::vector<bpf_link*>& out) {
    std::set<std::string> functions;
    for (const Hook& h : kHooks) {
        if (!has(b.syms, h.function)) continue;
        bpf_program* prog = probes_.program(h.program);
        if (!prog) return false;
        LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = h.retprobe, .func_name = h.function);
        bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, open_path.c_str(), 0, &opts);
        if (!link) {
            const int err = errno;
            if (!h.required) continue;
            spdlog::warn("tls: cannot attach {} in {} for {}: {}", h.function, b.path,
                         pid < 0 ? std::string("every process") : "pid " + std::to_string(pid),
                         std::strerror(err));
            counters_.add("tls.attach_failed");
            reaper_.release(std::move(out));
            out.clear();
            return false;
        }
        out.push_back(link);
        functions.insert(h.function);
    }
    b.functions.clear();
    for (const auto& f : functions) b.functions += (b.functions.empty() ? "" : " ") + f;
    return true;
}

}  // namespace passport::agent
