#include "userspace/correlate/injection_matcher.hpp"

#include "userspace/correlate/call_linking.hpp"

namespace passport::correlate {

void InjectionMatcher::note_injected_id(const events::Inject& inj, const InjectKey& key) {
    if (!events::carries_our_ids(inj.outcome) || inj.subsegment_id == 0) return;
    if (size_t evicted = injected_ids_.put(inj.subsegment_id, key))
        counters_.add("correlate.injected_ids_evicted", evicted);
}

void InjectionMatcher::hold(const InjectKey& key, const events::Inject& inj) {
    if (size_t evicted = pending_.put(key, inj))
        counters_.add("correlate.inject_reports_evicted", evicted);
}

void InjectionMatcher::note_call(const InjectKey& key, const RequestKey& call) {
    if (size_t evicted = calls_.put(key, call))
        counters_.add("correlate.call_inject_keys_evicted", evicted);
}

namespace {

// The kernel saw no request being served: the call is a segment of its own, in the trace the
// kernel minted for it.
void take_minted_context(CallContext& call, const events::Inject& inj,
                         const std::vector<std::string>& kernel_rule_names) {
    call.link = LinkRule::kNone;
    call.has_parent = false;
    call.own_trace_id = inj.trace_id;
    call.own_segment_id = hex16(inj.segment_id);
    // The kernel's sampling decision went on the wire (Sampled=1/0): the segment follows it.
    if (inj.sampled != events::Sampled::kUnknown) {
        call.own_sampled = inj.sampled == events::Sampled::kYes;
        call.own_rule_name.clear();
        if (events::rule_index(inj.rule) < kernel_rule_names.size())
            call.own_rule_name = kernel_rule_names[events::rule_index(inj.rule)];
    }
}

}  // namespace

void apply_inject(CallContext& call, const events::Inject& inj, const ContextTable& table,
                  const std::vector<std::string>& kernel_rule_names, Counters& counters) {
    if (!events::carries_our_ids(inj.outcome)) {
        counters.add(inj.outcome == events::InjectOutcome::kAppHeader
                         ? "correlate.inject_app_header"
                         : "correlate.inject_skipped");
        return;
    }
    // What went on the wire wins: the downstream service takes these ids as its parent.
    call.subsegment_id = hex16(inj.subsegment_id);
    call.injected_id = inj.subsegment_id;
    call.injected = true;
    counters.add("correlate.inject_matched");
    if (inj.outcome == events::InjectOutcome::kRewritten) {
        // A proxy's forwarded header now names this call: the request it forwarded is its parent,
        // exactly, whatever the thread heuristics said.
        call.forwards_parent_header = false;
        counters.add("correlate.forwarded_header_rewritten");
    }
    if (inj.ctx_from_thread) {
        link_from_inject_report(call, inj, table);
        return;
    }
    take_minted_context(call, inj, kernel_rule_names);
}

}  // namespace passport::correlate
