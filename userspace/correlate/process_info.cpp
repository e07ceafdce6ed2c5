#include "userspace/correlate/process_info.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#include "userspace/common/text.hpp"

namespace passport::correlate {
namespace {

std::string read_file(const std::string& path, size_t cap = 1 << 20) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    std::string s;
    s.resize(cap);
    in.read(s.data(), static_cast<std::streamsize>(cap));
    s.resize(static_cast<size_t>(in.gcount()));
    return s;
}

std::vector<std::string> split_nul(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
        size_t end = s.find('\0', start);
        if (end == std::string::npos) end = s.size();
        out.emplace_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::string basename_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// "python3.11" -> "python"; "node" -> "node"; others unchanged.
std::string interpreter_family(const std::string& exe_base) {
    static const std::array<const char*, 9> kFamilies = {"python", "node", "ruby", "perl", "php",
                                                         "bash",   "sh",   "dash", "java"};
    for (const char* f : kFamilies) {
        if (exe_base == f) return f;
        if (starts_with(exe_base, f)) {
            std::string rest = exe_base.substr(std::char_traits<char>::length(f));
            if (std::all_of(rest.begin(), rest.end(), [](char c) {
                    return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
                }))
                return f;
        }
    }
    return "";
}

// 64-hex container ids as docker/containerd/cri-o write them into cgroup paths.
std::string container_id_from_cgroup(const std::string& cgroup) {
    for (size_t i = 0; i + 64 <= cgroup.size(); i++) {
        size_t n = 0;
        while (n < 64 && std::isxdigit(static_cast<unsigned char>(cgroup[i + n])) &&
               !std::isupper(static_cast<unsigned char>(cgroup[i + n])))
            n++;
        if (n == 64 &&
            (i + 64 == cgroup.size() ||
             !std::isxdigit(static_cast<unsigned char>(cgroup[i + 64]))) &&
            (i == 0 || !std::isxdigit(static_cast<unsigned char>(cgroup[i - 1]))))
            return cgroup.substr(i, 64);
        i += n;
    }
    return "";
}

}  // namespace

std::string script_name(const std::vector<std::string>& argv) {
    if (argv.empty()) return "";
    std::string family = interpreter_family(basename_of(argv[0]));
    if (family.empty()) return "";
    for (size_t i = 1; i < argv.size(); i++) {
        const std::string& a = argv[i];
        if (family == "python" && a == "-m" && i + 1 < argv.size()) return argv[i + 1];
        if (family == "java" && a == "-jar" && i + 1 < argv.size()) return basename_of(argv[i + 1]);
        if (a == "-c" || a == "-e" || a == "--eval" || a == "-p" || a == "--print") return "";
        if (!a.empty() && a[0] == '-') {
            // Options that take a separate value in the common interpreters.
            if (a == "-W" || a == "-X" || a == "-r" || a == "--require" || a == "-I" ||
                a == "-cp" || a == "-classpath")
                i++;
            continue;
        }
        if (family == "java") return a;  // main class
        return basename_of(a);
    }
    return "";
}

std::string otel_resource_service_name(std::string_view attributes) {
    while (!attributes.empty()) {
        const size_t comma = attributes.find(',');
        std::string_view pair = attributes.substr(0, comma);
        attributes = comma == std::string_view::npos ? "" : attributes.substr(comma + 1);
        const size_t eq = pair.find('=');
        if (eq == std::string_view::npos) continue;
        if (text::trim(pair.substr(0, eq)) != "service.name") continue;
        return text::percent_decode(text::trim(pair.substr(eq + 1)), false, 256);
    }
    return "";
}

std::string program_name(const ProcessInfo& info) {
    std::string script = script_name(info.cmdline);
    if (!script.empty()) return script;
    if (!info.exe.empty()) return basename_of(info.exe);
    if (!info.cmdline.empty() && !info.cmdline[0].empty()) return basename_of(info.cmdline[0]);
    return info.comm;
}

std::optional<ProcessInfo> ProcessInfoCache::read(uint32_t pid) const {
    const std::string dir = proc_root_ + "/" + std::to_string(pid);
    if (::access(dir.c_str(), F_OK) != 0) return std::nullopt;
    ProcessInfo info;
    info.pid = pid;
    std::array<char, 4096> buf{};
    ssize_t n = ::readlink((dir + "/exe").c_str(), buf.data(), buf.size() - 1);
    if (n > 0) {
        info.exe.assign(buf.data(), static_cast<size_t>(n));
        const std::string deleted = " (deleted)";
        if (info.exe.size() > deleted.size() &&
            info.exe.compare(info.exe.size() - deleted.size(), deleted.size(), deleted) == 0)
            info.exe.resize(info.exe.size() - deleted.size());
    }
    info.comm = read_file(dir + "/comm", 64);
    if (!info.comm.empty() && info.comm.back() == '\n') info.comm.pop_back();
    info.cmdline = split_nul(read_file(dir + "/cmdline", size_t{64} * 1024));
    for (const std::string& kv : split_nul(read_file(dir + "/environ"))) {
        if (starts_with(kv, "AWS_XRAY_TRACING_NAME=")) info.xray_tracing_name = kv.substr(22);
        if (starts_with(kv, "OTEL_SERVICE_NAME=")) info.otel_service_name = kv.substr(18);
        if (starts_with(kv, "OTEL_RESOURCE_ATTRIBUTES="))
            info.otel_resource_service_name = otel_resource_service_name(kv.substr(25));
        if (starts_with(kv, "ECS_CONTAINER_METADATA_URI_V4="))
            info.ecs_metadata_uri = kv.substr(30);
    }
    std::istringstream status(read_file(dir + "/status", size_t{16} * 1024));
    for (std::string line; std::getline(status, line);) {
        if (starts_with(line, "PPid:"))
            info.ppid = static_cast<uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
    }
    const std::string cgroup = read_file(dir + "/cgroup", size_t{64} * 1024);
    info.container_id = container_id_from_cgroup(cgroup);
    info.pod = k8s::pod_identity_of_cgroup_file(cgroup);
    if (info.pod && !info.pod->container_id.empty()) info.container_id = info.pod->container_id;
    return info;
}

const ProcessInfo* ProcessInfoCache::get(uint32_t pid) {
    auto it = cache_.find(pid);
    if (it != cache_.end()) return &it->second;
    auto info = read(pid);
    if (!info) return nullptr;
    // Bound the cache: a busy host with many short-lived processes must not grow it forever.
    if (cache_.size() >= 16384) {
        cache_.erase(cache_.begin());
        evicted_++;
    }
    return &cache_.emplace(pid, std::move(*info)).first->second;
}

}  // namespace passport::correlate
