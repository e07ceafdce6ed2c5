/* What the syscall and TLS probes share about HTTP/1 requests in a byte stream: recognising a
 * request's first bytes, and the head budget that copies a large request head whole. */
#ifndef PASSPORT_HTTP_BPF_H
#define PASSPORT_HTTP_BPF_H

#include "vmlinux.h"

#include "passport/abi.h"

/* The first 4 bytes of m as a little-endian word (the order pp_starts_with_method expects). */
static __always_inline __u32 pp_first_word(const __u8 *m)
{
    return (__u32)m[0] | (__u32)m[1] << 8 | (__u32)m[2] << 16 | (__u32)m[3] << 24;
}

/* 1 when the stream's first 4 bytes (w, little-endian) begin a request: "GET ", "POST", "PUT ",
 * "HEAD", "DELE", "PATC", "OPTI", "CONN", "TRAC". */
static __always_inline int pp_starts_with_method(__u32 w)
{
    switch (w) {
    case 0x20544547: /* GET  */
    case 0x54534f50: /* POST */
    case 0x20545550: /* PUT  */
    case 0x44414548: /* HEAD */
    case 0x454c4544: /* DELE */
    case 0x43544150: /* PATC */
    case 0x4954504f: /* OPTI */
    case 0x4e4e4f43: /* CONN */
    case 0x43415254: /* TRAC */
        return 1;
    }
    return 0;
}

/* Bytes of a call that moved n bytes to copy in full (at least `first`, the first piece), from
 * the direction's head budget: a call starting a request (`request`) opens a new budget of
 * PP_HEAD_BUDGET, which this call and the next ones in the same direction use up. The budget
 * left is stored in st. */
static __always_inline __u32 pp_head_budget_take(struct pp_conn_state *st, int ingress, int request,
                                                 __u64 n, __u32 first)
{
    __u32 budget = ingress ? st->rx_head_budget : st->tx_head_budget;
    if (request)
        budget = PP_HEAD_BUDGET;
    __u32 full = n > budget ? budget : (__u32)n;
    if (full < first)
        full = first;
    __u32 left = budget > full ? budget - full : 0;
    if (ingress)
        st->rx_head_budget = left;
    else
        st->tx_head_budget = left;
    return full;
}

#endif /* PASSPORT_HTTP_BPF_H */
