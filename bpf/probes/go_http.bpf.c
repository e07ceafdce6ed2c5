/* Go net/http client handoff: the request a call was made for reaches the thread that writes it.
 *
 * http.Transport runs a call's roundTrip on the handler's goroutine, then hands the request over a
 * channel to the connection's writeLoop goroutine, which writes it on whichever OS thread runs it;
 * that thread's context (thread_ctx) is whatever request it read last. Two uprobes on the Go
 * binary (attached per probed process by agent/go_tracer.cpp; Go >= 1.17 amd64 register ABI:
 * arguments in RAX, RBX, ...; the running goroutine's g in R14):
 *   net/http.(*persistConn).roundTrip(pc, treq *transportRequest)  - handler's goroutine:
 *     treq's first word is its *Request; the goroutine's request (go_g_ctx, noted when it read
 *     its request: go_ctx.bpf.h) is remembered for that *Request (go_req_ctx);
 *   net/http.(*Request).write(r, ...)                              - writeLoop's goroutine:
 *     r's request becomes the thread's context (thread_ctx) before the write syscalls that
 *     follow in the same call, where the injection program reads it; PP_EV_GO_HANDOFF tells
 *     userspace that this thread's context was handed over exactly.
 * A goroutine whose request is unknown (a goroutine the handler started, a call outside any
 * request) hands nothing over: the thread keeps its context, as without these probes. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "conn.bpf.h"
#include "emit.bpf.h"
#include "filter.bpf.h"
#include "go_ctx.bpf.h"
#include "maps.bpf.h"

/* The request's server connection is still the one it arrived on (a goroutine whose g was reused
 * after its connection closed names nothing). */
static __always_inline int request_conn_open(const struct pp_trace_ctx *ctx)
{
    __u64 key = conn_map_key(ctx->conn.tgid, ctx->conn.fd);
    struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    return st && st->gen == ctx->conn.gen;
}

SEC("uprobe")
int go_persistconn_roundtrip(struct pt_regs *regs)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_traced(tgid))
        return 0;
    struct pp_go_key gk = {.tgid = tgid, .ptr = regs->r14};
    struct pp_go_key rk = {.tgid = tgid};
    if (bpf_probe_read_user(&rk.ptr, sizeof(rk.ptr), (void *)regs->bx) != 0 || !rk.ptr)
        return 0;
    struct pp_trace_ctx *ctx = bpf_map_lookup_elem(&go_g_ctx, &gk);
    if (ctx && request_conn_open(ctx))
        bpf_map_update_elem(&go_req_ctx, &rk, ctx, BPF_ANY);
    else /* an older *Request at the same address named another request */
        bpf_map_delete_elem(&go_req_ctx, &rk);
    return 0;
}

SEC("uprobe")
int go_request_write(struct pt_regs *regs)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    if (!is_traced(tgid))
        return 0;
    struct pp_go_key rk = {.tgid = tgid, .ptr = regs->ax};
    struct pp_trace_ctx *ctx = bpf_map_lookup_elem(&go_req_ctx, &rk);
    struct pp_go_handoff_event ev = {};
    fill_header(&ev.hdr, PP_EV_GO_HANDOFF, pid_tgid, bpf_ktime_get_ns());
    if (ctx) {
        struct pp_trace_ctx copy = *ctx;
        if (pp_store_thread_ctx(pid_tgid, &copy) != 0) {
            pp_ctx_count(PP_CTXC_STORE_FAILED);
            return 0;
        }
        ev.ctx_conn = copy.conn;
        ev.request_pos = copy.request_pos;
    }
    /* Without a request (ctx_conn all zero) it still tells userspace that this thread's next
     * call was handed nothing: an earlier handoff must not name it. */
    emit(&ev, sizeof(ev));
    return 0;
}
