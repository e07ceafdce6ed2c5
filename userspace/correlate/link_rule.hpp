#pragma once
// Which rule linked an outgoing call to the request it was made for, and whether that link is
// known or inferred. Written into the call's subsegment as metadata.passport.link
// ({"rule": "...", "inferred": true|false}) and counted (correlate.links_exact,
// correlate.links_inferred), so a reader of a trace can tell a certain parent from a likely one.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <unordered_set>

#include "userspace/common/counters.hpp"

namespace passport::correlate {

// Each rule is one function in call_linking.hpp, named link_<rule name>; a new rule is a new
// value here (at the end), its name in link_rule_name() and its function there.
enum class LinkRule : uint8_t {
    kNone = 0,  // not linked: the call is a segment of its own
    // The proxy's forwarded header named the request (the kernel rewrote its Parent): known.
    kForwardedHeader,
    // The writing thread's request as the kernel saw it when the header was injected.
    kKernelThreadContext,
    // The request whose I/O the thread handled last (its head, or a response of one of its calls).
    kLastIoOnThread,
    // The latest request the thread started before the call.
    kLatestOnThread,
    // Go net/http: the transport handed the request's context to the thread that wrote the call
    // (userspace/correlate/go_handoff.hpp): known.
    kGoHandoff,
};

std::string_view link_rule_name(LinkRule rule);

// Threads ((tgid << 32) | tid) that have served more than one request at once. On such a thread
// (an event loop) nothing in the syscalls says which request a call was made for, so a link made
// there by the thread rules is inferred; on a thread that serves one request at a time it is
// known. Bounded: past `max` threads the set starts over (links are then counted exact until a
// thread shows again that it serves many).
class ThreadsServingMany {
  public:
    explicit ThreadsServingMany(size_t max = 65536) : max_(max) {}
    // The thread now has `open` requests open.
    void saw(uint64_t thread, size_t open);
    bool contains(uint64_t thread) const { return threads_.count(thread) != 0; }
    size_t size() const { return threads_.size(); }

  private:
    size_t max_;
    std::unordered_set<uint64_t> threads_;
};

// Whether a link by `rule`, made on a thread with `open` requests open, is inferred.
bool link_is_inferred(LinkRule rule, bool thread_serves_many, size_t open);

// Counts the link (correlate.links_exact / correlate.links_inferred).
void count_link(Counters& counters, LinkRule rule, bool inferred);

}  // namespace passport::correlate
