#include "agent/process_selector.hpp"
#include "agent/proc_list.hpp"

#include <dirent.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <map>

namespace passport::agent {
namespace {

std::string read_link(const std::string& p) {
    std::array<char, 4096> buf{};
    ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size() - 1);
    return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "";
}

std::string read_comm(uint32_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
    std::string s;
    std::getline(in, s);
    return s;
}

uint32_t read_ppid(uint32_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("PPid:", 0) == 0)
            return static_cast<uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
    }
    return 0;
}

}  // namespace

ProcessSelector::ProcessSelector(const Config& cfg, BpfProbes& probes, Counters& counters)
    : cfg_(cfg), probes_(probes), counters_(counters) {}

bool ProcessSelector::matches_exe(uint32_t pid, const std::string& filename,
                                  const std::string& comm) const {
    std::string exe = read_link("/proc/" + std::to_string(pid) + "/exe");
    for (const auto& g : cfg_.exe_globs) {
        if (exe_matches(g, exe, comm) || (!filename.empty() && exe_matches(g, filename, "")))
            return true;
    }
    return false;
}

void ProcessSelector::select(uint32_t pid) {
    if (pid == static_cast<uint32_t>(::getpid())) return;
    if (auto r = probes_.select_pid(pid); !r) {
        counters_.add("select.map_update_failed");
        return;
    }
    counters_.add("select.processes");
}

Result<size_t> ProcessSelector::scan() {
    if (cfg_.trace_all()) return size_t{0};
    auto chosen = choose();
    if (!chosen) return make_error(chosen.error());
    for (uint32_t pid : *chosen) select(pid);
    return chosen->size();
}

Result<std::set<uint32_t>> ProcessSelector::choose() {
    for (uint32_t pid : cfg_.pids) {
        if (::access(("/proc/" + std::to_string(pid)).c_str(), F_OK) != 0)
            return make_error("--pid " + std::to_string(pid) + ": no such process");
    }
    std::map<uint32_t, std::vector<uint32_t>> children;
    std::set<uint32_t> chosen(cfg_.pids.begin(), cfg_.pids.end());
    by_exe_.clear();
    for (uint32_t pid : list_pids()) {
        children[read_ppid(pid)].push_back(pid);
        if (!cfg_.exe_globs.empty() && matches_exe(pid, "", read_comm(pid))) {
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
            change.removed.push_back(pid);
        }
    }
    for (uint32_t pid : *chosen) {
        if (pid == static_cast<uint32_t>(::getpid()) || probes_.is_selected(pid)) continue;
        select(pid);
        change.added.push_back(pid);
    }
    return change;
}

void ProcessSelector::on_exec(const events::ProcExec& e) {
    if (cfg_.exe_globs.empty()) return;
    if (matches_exe(e.tgid, e.filename, e.comm)) {
        if (by_exe_.insert(e.tgid).second || !probes_.is_selected(e.tgid)) select(e.tgid);
    } else if (by_exe_.erase(e.tgid)) {
        // It was chosen for the program it ran; it now runs another one.
        bool by_pid = false;
        for (uint32_t p : cfg_.pids) by_pid |= (p == e.tgid);
        if (!by_pid) probes_.unselect_pid(e.tgid);
    }
}

}  // namespace passport::agent
