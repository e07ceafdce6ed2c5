#include "userspace/correlate/call_linking.hpp"

#include <algorithm>

namespace passport::correlate {

void link_forwarded_header(CallContext& call, const RequestKey& parent) {
    call.has_parent = true;
    call.parent = parent;
    call.link = LinkRule::kForwardedHeader;
    call.link_inferred = false;
}

void link_go_handoff(CallContext& call, const RequestKey& parent) {
    call.has_parent = true;
    call.parent = parent;
    call.link = LinkRule::kGoHandoff;
    call.link_inferred = false;
}

void link_kernel_thread_context(CallContext& call, const RequestKey& parent) {
    call.has_parent = true;
    call.parent = parent;
    // The thread rules' doubt (a thread serving many) stays for the kernel's choice.
    call.link = LinkRule::kKernelThreadContext;
}

std::optional<RequestKey> link_last_io_on_thread(const ContextTable& table, uint64_t thread) {
    const std::vector<RequestKey>* open = table.open_on(thread);
    const RequestKey* last = table.last_activity(thread);
    if (open == nullptr || last == nullptr) return std::nullopt;
    if (std::find(open->begin(), open->end(), *last) == open->end()) return std::nullopt;
    return *last;
}

std::optional<RequestKey> link_latest_on_thread(const ContextTable& table, uint64_t thread,
                                                uint64_t call_start_ns) {
    const std::vector<RequestKey>* open = table.open_on(thread);
    if (open == nullptr) return std::nullopt;
    const RequestKey* best = nullptr;
    for (const RequestKey& k : *open) {
        if (k.start_ns <= call_start_ns && (!best || k.start_ns >= best->start_ns)) best = &k;
    }
    if (best == nullptr) return std::nullopt;
    return *best;
}

bool link_from_inject_report(CallContext& call, const events::Inject& inj,
                             const ContextTable& table) {
    const RequestKey* parent = table.server_at(ConnPos{inj.ctx_conn, inj.ctx_request_pos});
    if (parent == nullptr) return false;
    if (inj.outcome == events::InjectOutcome::kRewritten) {
        link_forwarded_header(call, *parent);
    } else if (call.has_parent && call.link == LinkRule::kGoHandoff && call.parent == *parent) {
        // The kernel injected the very request the Go transport handed over: still exact.
    } else {
        link_kernel_thread_context(call, *parent);
    }
    return true;
}

void note_forwarded_header(CallContext& call, const protocol::http1::Request& sent,
                           const ServerContext& parent, Counters& counters) {
    xray::TraceHeader header = request_trace_header(sent, nullptr);
    if (!header.has_root() || !has_own_header(parent)) return;
    std::string root;
    std::string parent_id;
    own_header_ids(parent, root, parent_id);
    if (root != header.root || parent_id != header.parent) return;
    call.forwards_parent_header = true;
    call.forwarded_root = std::move(root);
    call.forwarded_parent = std::move(parent_id);
    counters.add("correlate.calls_forwarding_header");
}

void CallLinker::link_by_thread(CallContext& call, const ContextTable& table, uint64_t thread,
                                bool kernel_minted) const {
    if (!kernel_minted) {
        std::optional<RequestKey> parent = link_last_io_on_thread(table, thread);
        call.link = LinkRule::kLastIoOnThread;
        if (!parent) {
            parent = link_latest_on_thread(table, thread, call.start_ns);
            call.link = parent ? LinkRule::kLatestOnThread : LinkRule::kNone;
        }
        call.has_parent = parent.has_value();
        if (parent) call.parent = *parent;
    }
    const std::vector<RequestKey>* open = table.open_on(thread);
    call.link_inferred = link_is_inferred(call.link, event_loops_.contains(thread),
                                          open != nullptr ? open->size() : 0);
}

}  // namespace passport::correlate
