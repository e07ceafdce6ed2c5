/* close() of a tracked connection: handled at entry, while the fd still resolves.
 * Hooks: syscalls:sys_enter_close. Maps: conns, ignored_fds (entries removed), events,
 * thread_ctx (the closing thread's context of a request on this connection is deleted). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "conn.bpf.h"

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
    if (bpf_map_delete_elem(&conns, &key) == 0)
        lru_count(PP_LRU_CONNS_DELETED);
    /* The closing thread's trace context belonged to a request on this connection: it ends. */
    struct pp_trace_ctx *tc = bpf_map_lookup_elem(&thread_ctx, &pid_tgid);
    if (tc && tc->conn.fd == fd && tc->conn.gen == ev.conn.gen &&
        bpf_map_delete_elem(&thread_ctx, &pid_tgid) == 0)
        lru_count(PP_LRU_CTX_DELETED);
    emit(&ev, sizeof(ev));
    return 0;
}
