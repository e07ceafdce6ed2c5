/* close() of a tracked connection: handled at entry, while the fd still resolves.
 * Hooks: syscalls:sys_enter_close. Maps: conns, ignored_fds, gate_spans (entries removed), events,
 * thread_ctx (the closing thread's context of a request on this connection ends: it goes back to
 * an earlier request the thread read that is still unanswered, from ctx_history, or is deleted),
 * ctx_counters. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "conn.bpf.h"

/* Copies into *tc the newest request in the thread's history, other than those on the closing
 * connection, whose connection is still open and has sent nothing since it was read. 1 when one
 * was found. On a thread serving one request at a time every earlier request was answered, so
 * this only ever finds a request an event loop is still serving. */
static __always_inline int restore_unanswered(__u32 tgid, __s32 fd, __u64 gen,
                                              struct pp_trace_ctx *tc)
{
    struct pp_ctx_history *h = bpf_task_storage_get(&ctx_history, bpf_get_current_task_btf(), 0, 0);
    if (!h)
        return 0;
    for (__u32 i = 1; i <= PP_CTX_HISTORY; i++) {
        __u32 slot = (h->next - i) % PP_CTX_HISTORY;
        struct pp_trace_ctx *c = &h->ctx[slot];
        if (c->segment_id == 0 || c->conn.tgid != tgid || (c->conn.fd == fd && c->conn.gen == gen))
            continue;
        __u64 key = conn_map_key(tgid, c->conn.fd);
        struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
        if (!st || st->gen != c->conn.gen || st->tx_pos != h->tx_mark[slot])
            continue;
        __builtin_memcpy(tc, c, sizeof(*tc));
        return 1;
    }
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int close_enter(struct trace_event_raw_sys_enter *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    if (!is_traced(tgid))
        return 0;
    __s32 fd = (__s32)ctx->args[0];
    __u64 key = conn_map_key(tgid, fd);
    bpf_map_delete_elem(&ignored_fds, &key);
    struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st)
        return 0;
    struct pp_conn_close_event ev = {};
    fill_header(&ev.hdr, PP_EV_CONN_CLOSE, pid_tgid, bpf_ktime_get_ns());
    ev.conn.tgid = tgid;
    ev.conn.fd = fd;
    ev.conn.gen = st->gen;
    ev.rx_bytes = st->rx_pos;
    ev.tx_bytes = st->tx_pos;
    if (st->gate_span) /* gated requests nobody will report now: the connection ends here */
        bpf_map_delete_elem(&gate_spans, &key);
    if (bpf_map_delete_elem(&conns, &key) == 0)
        lru_count(PP_LRU_CONNS_DELETED);
    /* The closing thread's trace context belonged to a request on this connection: it ends. */
    struct pp_trace_ctx *tc = bpf_map_lookup_elem(&thread_ctx, &pid_tgid);
    if (tc && tc->conn.fd == fd && tc->conn.gen == ev.conn.gen) {
        if (restore_unanswered(tgid, fd, ev.conn.gen, tc))
            pp_ctx_count(PP_CTXC_RESTORED);
        else if (bpf_map_delete_elem(&thread_ctx, &pid_tgid) == 0)
            lru_count(PP_LRU_CTX_DELETED);
    }
    emit(&ev, sizeof(ev));
    return 0;
}
