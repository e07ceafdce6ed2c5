#include "agent/tls_tracer.hpp"
#include "agent/proc_list.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

// Keys of a hash map with u32 keys.
std::vector<uint32_t> map_keys(int fd) {
    std::vector<uint32_t> out;
    if (fd < 0) return out;
    uint32_t key = 0;
    uint32_t next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        out.push_back(next);
        key = next;
        prev = &key;
    }
    return out;
}

}  // namespace

TlsTracer::TlsTracer(BpfProbes& probes, Counters& counters, bool trace_all)
    : probes_(probes),
      counters_(counters),
      trace_all_(trace_all),
      self_(static_cast<uint32_t>(::getpid())) {}

TlsTracer::~TlsTracer() {
    for (auto& [pid, list] : by_pid_) {
        for (auto& a : list) {
            for (bpf_link* l : a.links) bpf_link__destroy(l);
        }
    }
}

size_t TlsTracer::attached_binaries() const {
    size_t n = 0;
    for (const auto& [pid, list] : by_pid_) n += list.size();
    return n;
}

std::vector<std::string> TlsTracer::describe() const {
    std::vector<std::string> out;
    for (const auto& [pid, list] : by_pid_) {
        for (const auto& a : list) {
            out.push_back("pid " + std::to_string(pid) + ": " + a.path + " (" + a.functions + ")");
        }
    }
    return out;
}

void TlsTracer::scan_selected() {
    if (trace_all_) {
        for (uint32_t pid : list_pids()) scan(pid);
    } else {
        for (uint32_t pid : map_keys(probes_.map_fd("traced_pids"))) scan(pid);
    }
}

void TlsTracer::tick() {
    // Libraries mapped since the last look (the kernel flags selected processes at mmap).
    const int rescan_fd = probes_.map_fd("tls_rescan");
    for (uint32_t pid : map_keys(rescan_fd)) {
        bpf_map_delete_elem(rescan_fd, &pid);
        counters_.add("tls.rescans");
        scan(pid);
    }
    for (uint32_t pid : exec_pending_) {
        scanned_.erase(pid);
        if (trace_all_ || probes_.is_selected(pid)) scan(pid);
    }
    exec_pending_.clear();
    // Selected since the last look: exec'd later (--exe), forked by a selected process.
    if (!trace_all_) {
        for (uint32_t pid : map_keys(probes_.map_fd("traced_pids"))) {
            if (!scanned_.count(pid)) scan(pid);
        }
    }
}

void TlsTracer::on_exit(uint32_t pid) {
    scanned_.erase(pid);
    exec_pending_.erase(pid);
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) return;
    for (auto& a : it->second) {
        for (bpf_link* l : a.links) bpf_link__destroy(l);
        spdlog::debug("tls: detached pid {}: {}", pid, a.path);
    }
    by_pid_.erase(it);
    int procs = probes_.map_fd("tls_procs");
    if (procs >= 0) bpf_map_delete_elem(procs, &pid);
    probes_.set_tls_proc(pid, false);
    counters_.add("tls.detached_processes");
}

void TlsTracer::scan(uint32_t pid) {
    if (pid == self_ || pid == 0) return;
    scanned_.insert(pid);
    const std::string proc = "/proc/" + std::to_string(pid);
    std::ifstream maps(proc + "/maps");
    if (!maps) return;  // exited meanwhile
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
        consider(pid, std::string(proc).append("/root").append(lib), lib, false);
    // The program itself, when it carries OpenSSL (node): only if it exports SSL_write.
    char exe[4096];
    ssize_t n = ::readlink((proc + "/exe").c_str(), exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        if (!is_libssl(exe)) consider(pid, proc + "/exe", exe, true);
    }
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

void TlsTracer::consider(uint32_t pid, const std::string& open_path, const std::string& shown_path,
                         bool require_export) {
    struct stat st {};
    if (::stat(open_path.c_str(), &st) != 0) return;
    auto& list = by_pid_[pid];
    for (const auto& a : list) {
        if (a.dev == st.st_dev && a.ino == st.st_ino) return;  // already attached
    }
    auto syms = symbols(open_path, st.st_dev, st.st_ino);
    if (!syms || !syms->usable() || (require_export && !syms->exported)) {
        if (list.empty()) by_pid_.erase(pid);
        return;
    }
    Attachment a;
    a.dev = st.st_dev;
    a.ino = st.st_ino;
    a.path = shown_path;
    // Before the uprobes can fire: the socket probes look at the TLS maps only for flagged
    // processes, and a call caught by a new uprobe must find its socket I/O looked at.
    probes_.set_tls_proc(pid, true);
    if (!attach(pid, open_path, *syms, a)) {
        if (list.empty()) {
            by_pid_.erase(pid);
            probes_.set_tls_proc(pid, false);
        }
        return;
    }
    spdlog::debug("tls: attached pid {}: {} ({})", pid, a.path, a.functions);
    counters_.add("tls.attached_binaries");
    by_pid_[pid].push_back(std::move(a));
    uint8_t one = 1;
    int procs = probes_.map_fd("tls_procs");
    if (procs >= 0) bpf_map_update_elem(procs, &pid, &one, BPF_ANY);
}

bool TlsTracer::attach(uint32_t pid, const std::string& open_path, const TlsSymbols& syms,
                       Attachment& a) {
    std::set<std::string> functions;
    for (const Hook& h : kHooks) {
        if (!has(syms, h.function)) continue;
        bpf_program* prog = probes_.program(h.program);
        if (!prog) return false;
        LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = h.retprobe, .func_name = h.function);
        bpf_link* link = bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid),
                                                         open_path.c_str(), 0, &opts);
        if (!link) {
            const int err = errno;
            if (!h.required) continue;
            spdlog::warn("tls: cannot attach {} in {} for pid {}: {}", h.function, a.path, pid,
                         std::strerror(err));
            counters_.add("tls.attach_failed");
            for (bpf_link* l : a.links) bpf_link__destroy(l);
            a.links.clear();
            return false;
        }
        a.links.push_back(link);
        functions.insert(h.function);
    }
    for (const auto& f : functions) a.functions += (a.functions.empty() ? "" : " ") + f;
    return true;
}

}  // namespace passport::agent
