#pragma once
// Call -> request linking: which server request an outgoing call was made for. One function per
// rule (link_rule.hpp names them in metadata.passport.link.rule):
//  - forwarded_header       link_forwarded_header: the kernel rewrote the Parent of a header the
//                           proxy forwarded, so the request it forwarded is known (exact);
//  - kernel_thread_context  link_kernel_thread_context: the request the writing thread was
//                           serving when the kernel injected the header;
//  - last_io_on_thread      link_last_io_on_thread: the open request whose I/O the thread handled
//                           last (its head, or the response of one of its calls);
//  - latest_on_thread       link_latest_on_thread: the latest request the thread started before
//                           the call;
//  - go_handoff             link_go_handoff: Go net/http handed the request's context to the
//                           thread that writes the call (go_handoff.hpp; exact).
// The thread rules are inferred on a thread that serves more than one request at once (an event
// loop; CallLinker remembers those threads, link_rule.hpp ThreadsServingMany). A call the kernel
// reported as minted (no request on the thread) is linked to none: it is a segment of its own.
#include <cstdint>
#include <optional>

#include "userspace/common/counters.hpp"
#include "userspace/correlate/context_table.hpp"
#include "userspace/correlate/contexts.hpp"
#include "userspace/correlate/keys.hpp"
#include "userspace/correlate/link_rule.hpp"
#include "userspace/events/event.hpp"
#include "userspace/protocol/http1/http1_types.hpp"

namespace passport::correlate {

// forwarded_header: the call forwarded `parent`'s header and the kernel rewrote its Parent.
void link_forwarded_header(CallContext& call, const RequestKey& parent);
// go_handoff: the Go transport handed `parent`'s context to the thread writing the call.
void link_go_handoff(CallContext& call, const RequestKey& parent);
// kernel_thread_context: the kernel named `parent` as the writing thread's request.
void link_kernel_thread_context(CallContext& call, const RequestKey& parent);
// last_io_on_thread: the open request whose I/O `thread` handled last, if any.
std::optional<RequestKey> link_last_io_on_thread(const ContextTable& table, uint64_t thread);
// latest_on_thread: the latest request open on `thread` that started before the call.
std::optional<RequestKey> link_latest_on_thread(const ContextTable& table, uint64_t thread,
                                                uint64_t call_start_ns);

// The kernel's injection report for the call names the writing thread's request (ctx_from_thread):
// it becomes the parent by forwarded_header (the report says the header was rewritten) or
// kernel_thread_context. False when that request is no longer known (the call keeps its link).
bool link_from_inject_report(CallContext& call, const events::Inject& inj,
                             const ContextTable& table);

// A proxy passes its request's trace header on unchanged: marks the call when the header it
// sent (`sent`) is exactly its parent's own, so its callee on this node is stitched under it.
void note_forwarded_header(CallContext& call, const protocol::http1::Request& sent,
                           const ServerContext& parent, Counters& counters);

class CallLinker {
  public:
    // `open` requests are now open on `thread` (event-loop inference).
    void saw_open(uint64_t thread, size_t open) { event_loops_.saw(thread, open); }
    // Links a new call made on `thread` by the thread rules (last_io_on_thread, else
    // latest_on_thread) unless the kernel minted its context, and says whether it is inferred.
    void link_by_thread(CallContext& call, const ContextTable& table, uint64_t thread,
                        bool kernel_minted) const;

  private:
    // Threads seen serving more than one request at once (event loops): a call made there is
    // linked by inference (bounded).
    ThreadsServingMany event_loops_;
};

}  // namespace passport::correlate
