#include "userspace/correlate/link_rule.hpp"

namespace passport::correlate {

std::string_view link_rule_name(LinkRule rule) {
    switch (rule) {
        case LinkRule::kForwardedHeader:
            return "forwarded_header";
        case LinkRule::kKernelThreadContext:
            return "kernel_thread_context";
        case LinkRule::kLastIoOnThread:
            return "last_io_on_thread";
        case LinkRule::kLatestOnThread:
            return "latest_on_thread";
        case LinkRule::kGoHandoff:
            return "go_handoff";
        case LinkRule::kNone:
            break;
    }
    return "none";
}

void ThreadsServingMany::saw(uint64_t thread, size_t open) {
    if (open < 2 || threads_.count(thread)) return;
    if (threads_.size() >= max_) threads_.clear();
    threads_.insert(thread);
}

bool link_is_inferred(LinkRule rule, bool thread_serves_many, size_t open) {
    if (rule == LinkRule::kForwardedHeader || rule == LinkRule::kGoHandoff ||
        rule == LinkRule::kNone)
        return false;
    return thread_serves_many || open > 1;
}

void count_link(Counters& counters, LinkRule rule, bool inferred) {
    if (rule == LinkRule::kNone) return;
    counters.add(inferred ? "correlate.links_inferred" : "correlate.links_exact");
    if (rule == LinkRule::kGoHandoff) counters.add("correlate.links_go_handoff");
}

}  // namespace passport::correlate
