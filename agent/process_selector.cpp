#include "agent/process_selector.hpp"
#include "agent/proc_list.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string_view>

#include <spdlog/spdlog.h>

#include "userspace/k8s/pod_identity.hpp"

namespace passport::agent {
namespace {

std::string read_link(const std::string& p) {
    std::array<char, 4096> buf{};
    ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size() - 1);
    return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "";
}

// The first `cap` bytes of a small file ("" when it cannot be read).
std::string read_small(const std::string& path, size_t cap) {
    std::ifstream in(path, std::ios::binary);
    std::string text(cap, '\0');
    in.read(text.data(), static_cast<std::streamsize>(cap));
    text.resize(static_cast<size_t>(in.gcount()));
    return text;
}

constexpr size_t kMaxCgroupFile = size_t{64} << 10;

std::string proc_path(uint32_t pid, const char* what) {
    return "/proc/" + std::to_string(pid) + "/" + what;
}

std::string read_comm(uint32_t pid) {
    std::ifstream in(proc_path(pid, "comm"));
    std::string s;
    std::getline(in, s);
    return s;
}

uint32_t read_ppid(uint32_t pid) {
    std::ifstream in(proc_path(pid, "status"));
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("PPid:", 0) == 0)
            return static_cast<uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
    }
    return 0;
}

// PF_KTHREAD in the flags field (the 9th) of /proc/PID/stat, counted after the ")" that ends
// the command name (which may itself hold spaces and parentheses).
bool is_kernel_thread(uint32_t pid) {
    constexpr unsigned long kPfKthread = 0x00200000;
    const std::string stat = read_small(proc_path(pid, "stat"), 1024);
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) return false;
    std::string_view rest = std::string_view(stat).substr(close + 1);
    for (int field = 3; field < 9; field++) {  // skip state, ppid, pgrp, session, tty, tpgid
        const size_t sp = rest.find(' ', 1);
        if (sp == std::string_view::npos) return false;
        rest.remove_prefix(sp);
    }
    return (std::strtoul(std::string(rest.substr(1, 24)).c_str(), nullptr, 10) & kPfKthread) != 0;
}

// The kubelet, container runtimes, their shims and monitors, by executable name.
bool node_service_exe(const std::string& name) {
    constexpr std::array<std::string_view, 11> kNames{
        "kubelet",      "containerd",  "crio", "conmon", "conmonrs",       "dockerd",
        "docker-proxy", "cri-dockerd", "runc", "crun",   "containerd-shim"};
    if (name.rfind("containerd-shim", 0) == 0) return true;  // containerd-shim-runc-v2, ...
    return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

std::string base_name(const std::string& path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string own_pod_uid() {
    auto id = k8s::pod_identity_of_cgroup_file(read_small("/proc/self/cgroup", kMaxCgroupFile));
    return id ? id->pod_uid : std::string();
}

// A pod's namespace as its service-account volume says it (absent when the pod mounts no token).
// The volume is mounted at /var/run/secrets/kubernetes.io/serviceaccount; in images where
// /var/run is a symlink to /run the runtime mounts it at /run/secrets/…. An absolute symlink
// under /proc/PID/root would resolve against the agent's own root, so /var/run is followed only
// when it is a real directory in the container.
std::string namespace_file(uint32_t pid) {
    const std::string root = proc_path(pid, "root");
    const char* const kTail = "/secrets/kubernetes.io/serviceaccount/namespace";
    struct stat st {};
    std::string ns;
    if (::lstat((root + "/var/run").c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        ns = read_small(root + "/var/run" + kTail, 256);
    if (ns.empty()) ns = read_small(root + "/run" + kTail, 256);
    while (!ns.empty() && (ns.back() == '\n' || ns.back() == ' ')) ns.pop_back();
    return ns;
}

}  // namespace

ProcessSelector::ProcessSelector(const Config& cfg, BpfProbes& probes, Counters& counters,
                                 const k8s::PodCache* pods)
    : cfg_(cfg), probes_(probes), counters_(counters), pods_(pods), own_pod_uid_(own_pod_uid()) {}

bool ProcessSelector::matches_exe(uint32_t pid, const std::string& filename,
                                  const std::string& comm) const {
    std::string exe = read_link(proc_path(pid, "exe"));
    for (const auto& g : cfg_.exe_globs) {
        if (exe_matches(g, exe, comm) || (!filename.empty() && exe_matches(g, filename, "")))
            return true;
    }
    return false;
}

bool ProcessSelector::named_by_pid(uint32_t pid) const {
    return std::find(cfg_.pids.begin(), cfg_.pids.end(), pid) != cfg_.pids.end();
}

// Kernel threads and the node's own services, unless named: by --pid, or by an --exe without
// wildcards that matches the process.
bool ProcessSelector::node_service(uint32_t pid, const std::string& comm) const {
    const std::string exe = read_link(proc_path(pid, "exe"));
    if (exe.empty() && is_kernel_thread(pid)) return true;
    const bool service =
        node_service_exe(base_name(exe)) ||
        k8s::in_node_service_cgroup(read_small(proc_path(pid, "cgroup"), kMaxCgroupFile));
    if (!service || named_by_pid(pid)) return false;
    return std::none_of(cfg_.exe_globs.begin(), cfg_.exe_globs.end(), [&](const std::string& g) {
        return g.find_first_of("*?[") == std::string::npos && exe_matches(g, exe, comm);
    });
}

void ProcessSelector::select(uint32_t pid, bool inject) {
    if (pid == static_cast<uint32_t>(::getpid())) return;
    if (probes_.is_selected(pid)) return;
    if (!inject) {
        probes_.set_no_inject(pid, true);  // before the selection bit: never injected in between
        counters_.add("select.k8s_no_inject");
    }
    if (auto r = probes_.select_pid(pid); !r) {
        probes_.set_no_inject(pid, false);  // a later process with this pid starts clean
        counters_.add("select.map_update_failed");
        return;
    }
    counters_.add("select.processes");
}

ProcessSelector::Outcome ProcessSelector::consider(uint32_t pid, const std::string& comm) {
    if (pid == static_cast<uint32_t>(::getpid())) return Outcome::kSkipped;
    if (node_service(pid, comm)) {
        counters_.add("select.node_service_skipped");
        return Outcome::kSkipped;
    }
    if (!cfg_.k8s.any()) {
        select(pid);
        return Outcome::kSelected;
    }
    return consider_pod(pid);
}

ProcessSelector::Outcome ProcessSelector::consider_pod(uint32_t pid) {
    auto skipped = [&](const char* reason) {
        waiting_.erase(pid);
        counters_.add(std::string("select.k8s_skipped.") + reason);
        return Outcome::kSkipped;
    };
    auto id =
        k8s::pod_identity_of_cgroup_file(read_small(proc_path(pid, "cgroup"), kMaxCgroupFile));
    if (!id) return skipped("not_in_pod");
    if (id->runtime_monitor) return skipped("runtime");
    if (!own_pod_uid_.empty() && id->pod_uid == own_pod_uid_) return skipped("own_pod");
    k8s::PodFacts facts;
    std::shared_ptr<const k8s::PodCache::Map> snapshot;
    if (pods_) {
        snapshot = pods_->snapshot();
        auto it = snapshot->find(id->pod_uid);
        if (it == snapshot->end()) {
            if (waiting_.emplace(pid, id->pod_uid).second) counters_.add("select.k8s_waited");
            return Outcome::kWaiting;
        }
        facts.meta = &it->second;
        facts.namespace_name = it->second.namespace_name;
    } else {
        facts.namespace_name = namespace_file(pid);
    }
    const k8s::Decision d = k8s::decide(cfg_.k8s, facts);
    if (d.verdict == k8s::Verdict::kSkip) return skipped(d.reason);
    waiting_.erase(pid);
    select(pid, d.inject);
    return Outcome::kSelected;
}

Result<size_t> ProcessSelector::scan() {
    if (cfg_.trace_all()) return size_t{0};
    if (pods_) {
        // The verdict of each known pod now: later changes are followed from here (refresh()).
        pods_version_ = pods_->version();
        std::vector<uint32_t> none;
        follow_pod_changes(*pods_->snapshot(), none);
    }
    auto chosen = choose();
    if (!chosen) return make_error(chosen.error());
    size_t selected = 0;
    for (uint32_t pid : *chosen) selected += consider(pid, read_comm(pid)) == Outcome::kSelected;
    return selected;
}

// The candidates --pid/--exe choose now (every process with only --k8s-* rules), with their
// descendants (fills by_exe_).
Result<std::set<uint32_t>> ProcessSelector::choose() {
    for (uint32_t pid : cfg_.pids) {
        if (::access(proc_path(pid, "").c_str(), F_OK) != 0)
            return make_error("--pid " + std::to_string(pid) + ": no such process");
    }
    const bool every_candidate = cfg_.pids.empty() && cfg_.exe_globs.empty();  // --k8s-* only
    std::map<uint32_t, std::vector<uint32_t>> children;
    std::set<uint32_t> chosen(cfg_.pids.begin(), cfg_.pids.end());
    by_exe_.clear();
    for (uint32_t pid : list_pids()) {
        children[read_ppid(pid)].push_back(pid);
        if (every_candidate) {
            chosen.insert(pid);
        } else if (!cfg_.exe_globs.empty() && matches_exe(pid, "", read_comm(pid))) {
            chosen.insert(pid);
            by_exe_.insert(pid);
        }
    }
    // Descendants of chosen processes: the kernel only sees forks from now on.
    std::vector<uint32_t> todo(chosen.begin(), chosen.end());
    while (!todo.empty()) {
        uint32_t p = todo.back();
        todo.pop_back();
        for (uint32_t c : children[p]) {
            if (chosen.insert(c).second) todo.push_back(c);
        }
    }
    return chosen;
}

Result<ProcessSelector::Change> ProcessSelector::rescan() {
    auto chosen = choose();
    if (!chosen) return make_error(chosen.error());
    Change change;
    for (uint32_t pid : probes_.selected_pids()) {
        if (!chosen->count(pid)) {
            probes_.unselect_pid(pid);
            waiting_.erase(pid);
            change.removed.push_back(pid);
        }
    }
    for (uint32_t pid : *chosen) {
        if (pid == static_cast<uint32_t>(::getpid()) || probes_.is_selected(pid)) continue;
        if (consider(pid, read_comm(pid)) == Outcome::kSelected) change.added.push_back(pid);
    }
    return change;
}

void ProcessSelector::on_exec(const events::ProcExec& e) {
    const bool every_candidate = cfg_.pids.empty() && cfg_.exe_globs.empty();
    if (every_candidate) {
        if (!cfg_.trace_all() && !probes_.is_selected(e.tgid)) consider(e.tgid, e.comm);
        return;
    }
    if (cfg_.exe_globs.empty()) return;
    if (matches_exe(e.tgid, e.filename, e.comm)) {
        if (by_exe_.insert(e.tgid).second || !probes_.is_selected(e.tgid)) consider(e.tgid, e.comm);
    } else if (by_exe_.erase(e.tgid)) {
        // It was chosen for the program it ran; it now runs another one.
        waiting_.erase(e.tgid);
        if (!named_by_pid(e.tgid)) probes_.unselect_pid(e.tgid);
    }
}

void ProcessSelector::on_exit(const events::ProcExit& e) {
    by_exe_.erase(e.tgid);
    waiting_.erase(e.tgid);
    // The kernel deletes it at exit too; a mask written after that (from an older view of the
    // process) goes here.
    probes_.clear_process_rules(e.tgid);
}

std::vector<uint32_t> ProcessSelector::refresh() {
    std::vector<uint32_t> selected;
    if (!pods_) return selected;
    const uint64_t version = pods_->version();
    if (version == pods_version_) return selected;
    pods_version_ = version;
    std::vector<uint32_t> pids;
    for (const auto& entry : waiting_) pids.push_back(entry.first);
    for (uint32_t pid : pids) {
        if (::access(proc_path(pid, "").c_str(), F_OK) != 0) {
            waiting_.erase(pid);  // gone without an exit event we saw
            continue;
        }
        if (consider_pod(pid) == Outcome::kSelected) selected.push_back(pid);
    }
    follow_pod_changes(*pods_->snapshot(), selected);
    return selected;
}

// A process --pid/--exe let through (every process when only --k8s-* rules are given).
bool ProcessSelector::candidate(uint32_t pid) {
    if (cfg_.pids.empty() && cfg_.exe_globs.empty()) return true;
    return named_by_pid(pid) || by_exe_.count(pid) != 0 ||
           (!cfg_.exe_globs.empty() && matches_exe(pid, "", read_comm(pid)));
}

void ProcessSelector::follow_pod_changes(const k8s::PodCache::Map& pods,
                                         std::vector<uint32_t>& selected) {
    std::map<std::string, bool> now;
    std::set<std::string> changed;
    for (const auto& [uid, meta] : pods) {
        const bool traced =
            k8s::decide(cfg_.k8s, {meta.namespace_name, &meta}).verdict == k8s::Verdict::kTrace;
        now[uid] = traced;
        auto before = pod_traced_.find(uid);
        if (before != pod_traced_.end() && before->second != traced) changed.insert(uid);
    }
    pod_traced_ = std::move(now);
    if (changed.empty()) return;
    const size_t before = selected.size();
    size_t unselected = 0;
    for (uint32_t pid : list_pids()) {
        auto id =
            k8s::pod_identity_of_cgroup_file(read_small(proc_path(pid, "cgroup"), kMaxCgroupFile));
        if (!id || changed.count(id->pod_uid) == 0) continue;
        if (!pod_traced_[id->pod_uid]) {
            if (!probes_.is_selected(pid)) continue;
            probes_.unselect_pid(pid);
            unselected++;
        } else if (!probes_.is_selected(pid) && candidate(pid) &&
                   consider(pid, read_comm(pid)) == Outcome::kSelected) {
            selected.push_back(pid);
        }
    }
    counters_.add("select.k8s_unselected", unselected);
    spdlog::info("kubernetes: {} pod(s) changed selection; {} process(es) selected, {} unselected",
                 changed.size(), selected.size() - before, unselected);
}

}  // namespace passport::agent
