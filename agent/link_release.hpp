#pragma once
// Releasing BPF links. Detaching a tracepoint or uprobe program waits for an RCU grace period in
// the kernel (tens of milliseconds each: about 75 ms for a syscall tracepoint and 130 ms for a
// uprobe on Linux 6.18): one after another, thirty links take over two seconds. Waiters on
// different threads share grace periods, so links are released from threads of their own, all at
// once.
#include <cstddef>
#include <vector>

struct bpf_link;

namespace passport::agent {

// Destroys every link, concurrently (at most kMaxReleaseThreads at a time); returns when all are
// released. Falls back to this thread when no thread can be started.
void release_links_together(std::vector<bpf_link*> links);

inline constexpr size_t kMaxReleaseThreads = 64;

}  // namespace passport::agent
