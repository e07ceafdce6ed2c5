/* pp_host_head_scan (ctx_parse_host.h): bpf/lib/ctx_parse.bpf.h itself, compiled against the
 * helper stubs in bpf_stub/. */
#include "ctx_parse_host.h"

#include <string.h>

#include "bpf_stub.h"
#include "ctx_parse.bpf.h"
#include "http.bpf.h"

/* The probes' conn.bpf.h reads the socket's ends; these reads never gate (see host_read). */
static __noinline int pp_local_caller(__s32 fd)
{
    (void)fd;
    return 1;
}

/* The data_scratch map's value, as the probes use it. */
static struct pp_data_scratch *scratch_of(void)
{
    __u32 zero = 0;
    return bpf_map_lookup_elem(&data_scratch, &zero);
}

static void root_text(char *out, const struct pp_trace_ctx *c)
{
    static const char digits[] = "0123456789abcdef";
    char *p = out;
    *p++ = '1';
    *p++ = '-';
    for (int shift = 28; shift >= 0; shift -= 4)
        *p++ = digits[(c->trace_epoch >> shift) & 15];
    *p++ = '-';
    for (int i = 0; i < 12; i++) {
        *p++ = digits[c->trace_rand[i] >> 4];
        *p++ = digits[c->trace_rand[i] & 15];
    }
    *p = 0;
}

/* One read of the connection: the call-site logic of io_exit (data_syscalls.bpf.c) for a server
 * connection's ingress data, piece by piece. */
static void host_read(struct pp_conn_state *st, const uint8_t *rd, __u32 r, __u64 pos, int request,
                      const uint8_t *stale, size_t stale_len)
{
    const __u64 key = 99;
    __u32 first = r > PP_MAX_CHUNK ? PP_MAX_CHUNK : r;
    __u32 full = pp_head_budget_take(st, 1, request, r, first);
    __u32 scan = 0;
    if (request)
        scan = pp_head_open(pos, st->gen);
    else if (st->head_pending)
        scan = pp_head_resume(key, pos, st->gen);
    st->head_pending = 0;
    int head_end = st->rx_head_budget == 0;
    struct pp_data_scratch *sc = scratch_of();
    unsigned char *buf = sc->ev.msg;
    size_t room = sizeof(*sc) - offsetof(struct pp_data_scratch, ev.msg);
    for (__u32 off = 0; off < full;) {
        __u32 n = full - off > PP_MAX_CHUNK ? PP_MAX_CHUNK : full - off;
        for (size_t i = 0; i < room; i++)
            buf[i] = stale_len ? stale[i % stale_len] : 0;
        memcpy(buf, rd + off, n);
        sc->ev.captured = n;
        if (scan)
            scan = pp_head_piece(n, n, head_end && off + n >= full, 0);
        off += n;
    }
    if (scan && !pp_head_suspend(key, st))
        pp_head_piece(0, 0, 1, 0);
}

void pp_host_head_scan_reads(const uint8_t *head, size_t len, size_t read_size,
                             const uint8_t *stale, size_t stale_len, int head_text, int ring_full,
                             struct pp_host_head_result *out)
{
    pp_stub_reset();
    pp_stub_set_ringbuf_full(ring_full);
    *(volatile __u32 *)&pp_head_text = head_text ? 1 : 0;
    struct pp_data_scratch *sc = scratch_of();
    memset(sc, 0, sizeof(*sc));
    sc->ev.conn.tgid = 4242;
    struct pp_conn_state st = {.gen = 7, .role = PP_ROLE_SERVER};
    __u64 key = 99;
    bpf_map_delete_elem(&head_pending, &key); /* the stub's maps outlive a reset */

    for (size_t off = 0; off < len || off == 0;) {
        size_t r = read_size && len - off > read_size ? read_size : len - off;
        host_read(&st, head + off, (__u32)r, off, off == 0, stale, stale_len);
        off += r;
        if (r == 0)
            break;
    }

    memset(out, 0, sizeof(*out));
    __u32 zero = 0;
    const struct pp_head_scan *h = bpf_map_lookup_elem(&head_scratch, &zero);
    out->xray = h->xray;
    out->traceparent = h->tp;
    out->pending = st.head_pending;
    out->head_ended = h->done;

    size_t size = 0;
    const struct pp_trace_ctx_event *ev = pp_stub_ringbuf_last(&size);
    out->emitted = ev != NULL;
    if (!ev)
        ev = (const struct pp_trace_ctx_event *)sc->spare;
    out->source = ev->ctx.source;
    out->sampled = ev->ctx.sampled;
    out->rejected = ev->rejected;
    out->parent_id = ev->ctx.parent_id;
    root_text(out->root, &ev->ctx);
    __u64 tkey = bpf_get_current_pid_tgid();
    const struct pp_trace_ctx *stored = bpf_map_lookup_elem(&thread_ctx, &tkey);
    out->stored = stored && memcmp(stored, &ev->ctx, sizeof(*stored)) == 0;
}

void pp_host_head_scan(const uint8_t *head, size_t len, const uint8_t *stale, size_t stale_len,
                       int head_text, int ring_full, struct pp_host_head_result *out)
{
    pp_host_head_scan_reads(head, len, 0, stale, stale_len, head_text, ring_full, out);
}
