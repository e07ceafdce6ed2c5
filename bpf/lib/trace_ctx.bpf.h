/* Trace ids made in the kernel: new X-Ray trace ids and 64-bit segment/subsegment ids, with the
 * epoch seconds taken from the offset userspace keeps in clock_sync. Shared by the server-side
 * context code and the injection program so both mint ids the same way. */
#ifndef PASSPORT_TRACE_CTX_BPF_H
#define PASSPORT_TRACE_CTX_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"

/* A random 64-bit id, never 0 (0 means "none" in struct pp_trace_ctx). */
static __always_inline __u64 pp_random_id(void)
{
    __u64 id = ((__u64)bpf_get_prandom_u32() << 32) | bpf_get_prandom_u32();
    return id ? id : 1;
}

/* Epoch seconds now; 0 if userspace has not written the offset yet. */
static __always_inline __u32 pp_epoch_seconds(void)
{
    __u32 zero = 0;
    struct pp_clock *c = bpf_map_lookup_elem(&clock_sync, &zero);
    if (!c || c->mono_to_epoch_ns == 0)
        return 0;
    return (__u32)((bpf_ktime_get_ns() + (__u64)c->mono_to_epoch_ns) / 1000000000ULL);
}

/* Fills a new trace id (epoch + 96 random bits) and a new segment id; leaves the rest. */
static __always_inline void pp_mint_trace(struct pp_trace_ctx *ctx)
{
    ctx->trace_epoch = pp_epoch_seconds();
    __u32 r0 = bpf_get_prandom_u32(), r1 = bpf_get_prandom_u32(), r2 = bpf_get_prandom_u32();
    __builtin_memcpy(&ctx->trace_rand[0], &r0, 4);
    __builtin_memcpy(&ctx->trace_rand[4], &r1, 4);
    __builtin_memcpy(&ctx->trace_rand[8], &r2, 4);
    ctx->segment_id = pp_random_id();
    ctx->parent_id = 0;
    ctx->source = PP_CTX_MINTED;
}

#endif /* PASSPORT_TRACE_CTX_BPF_H */
