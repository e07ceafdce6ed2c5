/* Ring buffer output with batched wakeups, and drop counting. */
#ifndef PASSPORT_EMIT_BPF_H
#define PASSPORT_EMIT_BPF_H

#include "maps.bpf.h"

/* A wakeup costs ~5 us per event on a nested VM; the agent drains on a timer instead and is only
 * woken when this much data is waiting. */
#define PP_WAKEUP_THRESHOLD (256 * 1024)

static __always_inline void emit(void *data, __u64 size)
{
    __u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > PP_WAKEUP_THRESHOLD
                      ? BPF_RB_FORCE_WAKEUP
                      : BPF_RB_NO_WAKEUP;
    if (bpf_ringbuf_output(&events, data, size, flags) != 0)
        count_drop(PP_DROP_RINGBUF_FULL);
}

static __always_inline void fill_header(struct pp_event_header *h, __u8 kind, __u64 pid_tgid,
                                        __u64 ts)
{
    h->kind = kind;
    h->_pad[0] = h->_pad[1] = h->_pad[2] = 0;
    h->tgid = pid_tgid >> 32;
    h->tid = (__u32)pid_tgid;
    h->_pad2 = 0;
    h->ts_ns = ts;
}

#endif /* PASSPORT_EMIT_BPF_H */
