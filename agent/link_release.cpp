#include "agent/link_release.hpp"

#include <bpf/libbpf.h>

#include <algorithm>
#include <system_error>
#include <thread>

namespace passport::agent {

void release_links_together(std::vector<bpf_link*> links) {
    for (size_t first = 0; first < links.size(); first += kMaxReleaseThreads) {
        const size_t last = std::min(links.size(), first + kMaxReleaseThreads);
        std::vector<std::thread> threads;
        for (size_t i = first; i < last; i++) {
            bpf_link* link = links[i];
            try {
                threads.emplace_back([link] { bpf_link__destroy(link); });
            } catch (const std::system_error&) {
                bpf_link__destroy(link);
            }
        }
        for (auto& t : threads) t.join();
    }
}

}  // namespace passport::agent
