/* pp_host_head_scan (ctx_parse_host.h): bpf/lib/ctx_parse.bpf.h itself, compiled against the
 * helper stubs in bpf_stub/. */
#include "ctx_parse_host.h"

#include <string.h>

#include "bpf_stub.h"
#include "ctx_parse.bpf.h"

static struct pp_data_scratch scratch;

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

void pp_host_head_scan(const uint8_t *head, size_t len, const uint8_t *stale, size_t stale_len,
                       int head_text, int ring_full, struct pp_host_head_result *out)
{
    pp_stub_reset();
    pp_stub_set_ringbuf_full(ring_full);
    *(volatile __u32 *)&pp_head_text = head_text ? 1 : 0;

    __u32 captured = len > PP_MAX_CHUNK ? PP_MAX_CHUNK : (__u32)len;
    unsigned char *buf = scratch.ev.msg;
    size_t room = sizeof(scratch) - offsetof(struct pp_data_scratch, ev.msg);
    for (size_t i = 0; i < room; i++)
        buf[i] = stale_len ? stale[i % stale_len] : 0;
    memcpy(buf, head, captured);
    scratch.ev.captured = captured;
    scratch.ev.conn.tgid = 4242;

    pp_server_request_ctx(&scratch, captured, 0);

    memset(out, 0, sizeof(*out));
    __u32 zero = 0;
    const struct pp_head_scan *h = bpf_map_lookup_elem(&head_scratch, &zero);
    out->xray = h->xray;
    out->traceparent = h->tp;

    size_t size = 0;
    const struct pp_trace_ctx_event *ev = pp_stub_ringbuf_last(&size);
    out->emitted = ev != NULL;
    if (!ev)
        ev = (const struct pp_trace_ctx_event *)scratch.spare;
    out->source = ev->ctx.source;
    out->sampled = ev->ctx.sampled;
    out->rejected = ev->rejected;
    out->parent_id = ev->ctx.parent_id;
    root_text(out->root, &ev->ctx);
    __u64 key = bpf_get_current_pid_tgid();
    const struct pp_trace_ctx *stored = bpf_map_lookup_elem(&thread_ctx, &key);
    out->stored = stored && memcmp(stored, &ev->ctx, sizeof(*stored)) == 0;
}
