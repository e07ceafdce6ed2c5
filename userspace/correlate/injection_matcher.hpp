#pragma once
// Injection matching: the kernel reports each X-Amzn-Trace-Id it injected (or found) in an
// outgoing request (events::Inject), usually before the request's bytes reach userspace. The
// report and the call meet by InjectKey (process, tuple, egress offset of the head):
//  - a report that comes first waits in `pending` until the call is parsed;
//  - a parsed call is findable by its InjectKey, for a report that comes after it;
//  - the subsegment ids the kernel wrote lead back to their report (injected_by), so a request
//    served on this node whose header names one as Parent finds the call that sent it;
//  - CalleeParents remembers which call ids requests served here named as their parent.
// Every table is bounded (8192 entries; the oldest go, counted).
#include <cstdint>
#include <string>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/correlate/call_truth.hpp"
#include "userspace/correlate/context_table.hpp"
#include "userspace/correlate/contexts.hpp"
#include "userspace/correlate/keys.hpp"
#include "userspace/events/event.hpp"

namespace passport::correlate {

class InjectionMatcher {
  public:
    explicit InjectionMatcher(Counters& counters) : counters_(counters) {}

    static InjectKey key_of(uint32_t tgid, const events::Endpoint& local,
                            const events::Endpoint& remote, uint64_t pos) {
        return InjectKey{tuple_of(local, remote), tgid, pos};
    }
    static InjectKey key_of(const events::Inject& inj) {
        return key_of(inj.tgid, inj.local, inj.remote, inj.app_pos);
    }

    // The report's injected subsegment id (when it carries ours) leads back to `key`.
    void note_injected_id(const events::Inject& inj, const InjectKey& key);
    // The report that wrote subsegment id `id`, while remembered.
    const InjectKey* injected_by(uint64_t id) const { return injected_ids_.find(id); }
    bool any_injected() const { return !injected_ids_.empty(); }

    void hold(const InjectKey& key, const events::Inject& inj);
    const events::Inject* pending(const InjectKey& key) const { return pending_.find(key); }
    void drop_pending(const InjectKey& key) { pending_.erase(key); }

    void note_call(const InjectKey& key, const RequestKey& call);
    const RequestKey* call_for(const InjectKey& key) const { return calls_.find(key); }

    CalleeParents& callee_parents() { return callee_parents_; }
    const CalleeParents& callee_parents() const { return callee_parents_; }

  private:
    static constexpr size_t kMaxEntries = 8192;
    Counters& counters_;
    BoundedMap<InjectKey, events::Inject, InjectKeyHash> pending_{kMaxEntries};
    BoundedMap<InjectKey, RequestKey, InjectKeyHash> calls_{kMaxEntries};
    BoundedMap<uint64_t, InjectKey, std::hash<uint64_t>> injected_ids_{kMaxEntries};
    // Call ids that requests served on this node named as parent: those calls are `traced`.
    CalleeParents callee_parents_;
};

// The call takes what the report says went on the wire: the injected subsegment id, and either
// the writing thread's request as parent (call_linking.hpp link_from_inject_report) or, when the
// kernel minted the context, a segment of its own in the kernel's trace and sampling decision
// (`kernel_rule_names` name the kernel's rules by index).
void apply_inject(CallContext& call, const events::Inject& inj, const ContextTable& table,
                  const std::vector<std::string>& kernel_rule_names, Counters& counters);

}  // namespace passport::correlate
