#include "agent/proc_list.hpp"

#include <dirent.h>

#include <cstdlib>

namespace passport::agent {

std::vector<uint32_t> list_pids() {
    std::vector<uint32_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        unsigned long v = std::strtoul(e->d_name, &end, 10);
        if (end != e->d_name && *end == '\0') out.push_back(static_cast<uint32_t>(v));
    }
    ::closedir(d);
    return out;
}

}  // namespace passport::agent
