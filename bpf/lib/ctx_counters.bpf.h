/* Trace-context counters (map ctx_counters, enum pp_ctx_counter), read by the agent at exit. */
#ifndef PASSPORT_CTX_COUNTERS_BPF_H
#define PASSPORT_CTX_COUNTERS_BPF_H

#include "maps.bpf.h"

static __always_inline void pp_ctx_count(__u32 which)
{
    __u64 *v = bpf_map_lookup_elem(&ctx_counters, &which);
    if (v)
        *v += 1; /* per-CPU: no atomics needed */
}

#endif /* PASSPORT_CTX_COUNTERS_BPF_H */
