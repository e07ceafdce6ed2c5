/* Header insertion of the sk_msg program: at the end of a request head, the trace context to
 * send (the writing thread's, or one minted here), the header line, its insertion into the
 * message, and the PP_EV_INJECT report. */
#ifndef PASSPORT_INJECT_INSERT_BPF_H
#define PASSPORT_INJECT_INSERT_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "inject_maps.bpf.h"
#include "sample.bpf.h"
#include "trace_ctx.bpf.h"
#include "xray_value.bpf.h"

static __always_inline __u8 hexdig(__u8 d)
{
    return d < 10 ? '0' + d : 'a' + d - 10;
}

static __always_inline void put_hex8(__u8 *dst, __u8 b)
{
    dst[0] = hexdig((b >> 4) & 15);
    dst[1] = hexdig(b & 15);
}

/* Writes the header line for run->ev.ctx + subsegment id into run->line. A function of its own:
 * inlined, its unrolled loops took most of on_head's stack. */
__noinline int format_line(struct pp_inj_run *run, __u64 sub)
{
    if (!run)
        return -1;
    const struct pp_trace_ctx *ctx = &run->ev.ctx;
    __u8 *p = run->line;
    __builtin_memcpy(p, "X-Amzn-Trace-Id: Root=1-", 24);
    __u32 e = ctx->trace_epoch;
#pragma unroll
    for (int k = 0; k < 4; k++)
        put_hex8(p + 24 + 2 * k, (__u8)(e >> (24 - 8 * k)));
    p[32] = '-';
#pragma unroll
    for (int k = 0; k < 12; k++)
        put_hex8(p + 33 + 2 * k, ctx->trace_rand[k]);
    __builtin_memcpy(p + 57, ";Parent=", 8);
#pragma unroll
    for (int k = 0; k < 8; k++)
        put_hex8(p + 65 + 2 * k, (__u8)(sub >> (56 - 8 * k)));
    __builtin_memcpy(p + 81, ";Sampled=", 9);
    p[90] = ctx->sampled == PP_SAMPLED_YES ? '1' : ctx->sampled == PP_SAMPLED_NO ? '0' : '?';
    p[91] = '\r';
    p[92] = '\n';
    return 0;
}

/* Inserts run->line at message offset at. 0 on success; on failure the message is as before. */
__noinline int insert_line(struct sk_msg_md *msg, struct pp_inj_run *run, __u32 at)
{
    if (!msg || !run)
        return -1;
    if (bpf_msg_push_data(msg, at, PP_INJECT_LINE_LEN, 0) != 0)
        return -1;
    if (bpf_msg_pull_data(msg, at, at + PP_INJECT_LINE_LEN, 0) != 0)
        goto undo;
    __u8 *data = (__u8 *)(long)msg->data;
    __u8 *end = (__u8 *)(long)msg->data_end;
    if (data + PP_INJECT_LINE_LEN > end)
        goto undo;
#pragma unroll
    for (int k = 0; k < PP_INJECT_LINE_LEN; k++)
        data[k] = run->line[k];
    /* The insert left the message in three pieces (before, the line, after), which TCP sends as
     * three pushes; a small message is copied back into one piece (measured: much cheaper). */
    __u32 size = msg->size;
    if (size <= PP_INJ_LINEARIZE_MAX)
        bpf_msg_pull_data(msg, 0, size, 0); /* best effort: on failure the pieces stay */
    return 0;
undo:
    bpf_msg_pop_data(msg, at, PP_INJECT_LINE_LEN, 0);
    return -1;
}

static __always_inline void report(struct pp_inj_run *run, __u8 outcome, __u64 app_pos)
{
    struct pp_inject_event *ev = &run->ev;
    struct pp_inj_sock *s = &run->st;
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    fill_header(&ev->hdr, PP_EV_INJECT, pid_tgid, bpf_ktime_get_ns());
    ev->local = s->local;
    ev->remote = s->remote;
    ev->netns = s->netns;
    ev->outcome = outcome;
    ev->app_pos = app_pos;
    ev->socket_cookie = s->cookie;
    emit(ev, sizeof(*ev));
}

/* The context the header carries: the writing thread's server request, or (a call outside any
 * served request) a trace of its own, sampled here by the local rules on the call's method, path
 * and Host (its own segment follows this decision, and so does the callee through Sampled=).
 * Undecided when the head did not fit the first window or a rule needs userspace: Sampled=?. */
static __always_inline void choose_context(struct pp_inj_run *run)
{
    struct pp_inj_sock *s = &run->st;
    struct pp_inject_event *ev = &run->ev;
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pp_trace_ctx *tctx = bpf_map_lookup_elem(&thread_ctx, &pid_tgid);
    if (tctx) {
        ev->ctx = *tctx;
        ev->ctx_from_thread = 1;
    } else {
        pp_mint_trace(&ev->ctx);
        ev->ctx.sampled = PP_SAMPLED_UNKNOWN;
        if (run->req_win0 && s->head_len <= PP_INJ_WINDOW) {
            /* In the scratch, not on the stack: the call chain's stack is near its limit. */
            /* Offsets not found are 0, which the helper leaves out. */
            pp_sample_text_from(&run->attrs, s->a_method_len, s->a_path_start, s->a_path_end,
                                s->a_host_start, s->a_host_end, s->a_host_colon, s->a_host_colons);
            run->rule = PP_RULE_NONE;
            run->attrs.now = ev->ctx.trace_epoch;
            ev->ctx.sampled = pp_sample_request(pid_tgid >> 32, run->buf, &run->attrs, &run->rule);
            ev->rule = run->rule;
        }
    }
}

/* The request of this process whose own header had this head's Root and Parent, or NULL. */
static __always_inline struct pp_trace_ctx *forwarded_from(struct pp_inj_sock *s)
{
    if ((s->xr_ok & (XR_ROOT | XR_PARENT)) != (XR_ROOT | XR_PARENT))
        return NULL;
    struct pp_fwd_key k = {};
    k.tgid = bpf_get_current_pid_tgid() >> 32;
    k.trace_epoch = s->xr_epoch;
    __builtin_memcpy(k.trace_rand, s->xr_rand, sizeof(k.trace_rand));
    k.parent_id = s->xr_parent;
    return bpf_map_lookup_elem(&forwardable, &k);
}

/* A head that forwards the header of a request its process received (a proxy): Parent's 16 hex
 * digits become the id of the proxy's call (same length: no byte count changes), and the report
 * names that request. 1 when rewritten; 0 leaves the message as it was. */
__noinline int rewrite_parent(struct sk_msg_md *msg, struct pp_inj_run *run, __u64 my_gen)
{
    if (!msg || !run)
        return 0;
    struct pp_inj_sock *s = &run->st;
    if (s->xr_parent_app < run->msg_app_base)
        return 0; /* the digits went out in an earlier send */
    struct pp_trace_ctx *from = forwarded_from(s);
    if (!from)
        return 0;
    run->ev.ctx = *from;
    __u64 at64 = s->xr_parent_app - run->msg_app_base + run->shift;
    if (run->gen != my_gen || at64 + 16 > run->size)
        return 0;
    __u32 at = (__u32)at64;
    if (bpf_msg_pull_data(msg, at, at + 16, 0) != 0)
        return 0;
    __u8 *data = (__u8 *)(long)msg->data;
    __u8 *end = (__u8 *)(long)msg->data_end;
    if (data + 16 > end)
        return 0;
    __u64 sub = pp_random_id();
#pragma unroll
    for (int k = 0; k < 8; k++)
        put_hex8(data + 2 * k, (__u8)(sub >> (56 - 8 * k)));
    run->ev.subsegment_id = sub;
    run->ev.ctx_from_thread = 1;
    return 1;
}

/* At the end of a head that lies wholly in this message: inject or report why not. */
__noinline int on_head(struct sk_msg_md *msg, struct pp_inj_run *run, __u64 my_gen)
{
    if (!msg || !run)
        return 0;
    struct pp_inj_sock *s = &run->st;
    struct pp_inject_event *ev = &run->ev;
    __u64 req = s->req_app_pos;
    if (s->head_reported) {
        s->head_reported = 0; /* handled when the message ended on the blank line's CR */
        return 0;
    }
    ev->subsegment_id = 0;
    ev->rule = PP_RULE_NONE;
    __builtin_memset(&ev->ctx, 0, sizeof(ev->ctx));
    ev->ctx_from_thread = 0;
    if (s->flags & F_XRAY) {
        if (rewrite_parent(msg, run, my_gen)) {
            inj_count(PP_INJC_REWRITTEN);
            report(run, PP_INJ_REWRITTEN, req);
            return 0;
        }
        __builtin_memset(&ev->ctx, 0, sizeof(ev->ctx));
        ev->subsegment_id = 0;
        inj_count(PP_INJC_APP_HEADER);
        report(run, PP_INJ_APP_HEADER, req);
        return 0;
    }
    /* Where the line goes: after the request line when the whole head is in this message;
     * before the blank line when the head began in an earlier send (those bytes are gone), if
     * the blank line lies wholly in this message. */
    __u64 at_app = s->reqline_end_app;
    if (req < run->msg_app_base) {
        if (s->blank_app < run->msg_app_base) {
            inj_count(PP_INJC_SKIP_SPLIT);
            report(run, PP_INJ_SKIP_SPLIT, req);
            return 0;
        }
        at_app = s->blank_app;
    }
    choose_context(run);
    __u64 sub = pp_random_id();
    format_line(run, sub);
    __u64 at64 = at_app - run->msg_app_base + run->shift;
    /* A run preempted on this CPU (preemptible kernels) may find its scratch reused: never
     * modify a message from a scratch that is no longer ours. */
    if (run->gen != my_gen) {
        run->stop = 1;
        return 0;
    }
    if (at64 >= run->size || insert_line(msg, run, (__u32)at64) != 0) {
        inj_count(PP_INJC_SKIP_FAILED);
        report(run, PP_INJ_SKIP_FAILED, req);
        return 0;
    }
    run->shift += PP_INJECT_LINE_LEN;
    run->off += PP_INJECT_LINE_LEN;
    run->size += PP_INJECT_LINE_LEN;
    ev->subsegment_id = sub;
    inj_count(PP_INJC_INJECTED);
    if (at_app != s->reqline_end_app)
        inj_count(PP_INJC_SPLIT_INJECTED);
    report(run, PP_INJ_INJECTED, req);
    return 0;
}

#endif /* PASSPORT_INJECT_INSERT_BPF_H */
