/* pp_inj_host_* (inject_host.h): bpf/probes/inject.bpf.c itself, compiled against the helper
 * stubs in stub/. The inline-asm bounds of the BPF sources (`asm volatile("%[w] &= ..." ...)`,
 * BPF assembly that only tells the verifier what the values already are) are compiled out by
 * the two macros below; everything else is the BPF source as is. */
#include "inject_host.h"

#include <stdlib.h>
#include <string.h>

#include "bpf_stub.h"
#include "vmlinux.h"

#ifdef __clang__
#pragma clang diagnostic ignored "-Wkeyword-macro"
#endif
#define asm
#define volatile(...)

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "maps.bpf.h"
#include "sample.bpf.h"
#include "trace_ctx.bpf.h"

#include "../../bpf/probes/inject.bpf.c"
#undef volatile
#undef asm

#define PP_HOST_SOCKS      16
#define PP_HOST_O_NONBLOCK 04000

struct pp_host_sock {
    struct tcp_sock tcp;
    struct socket so;
    struct file file;
};

static struct pp_host_sock host_socks[PP_HOST_SOCKS];
static int host_sock_count;
static struct sk_msg_md host_md;
static uint8_t *host_out;

void pp_inj_host_reset(void)
{
    pp_stub_reset();
    memset(host_socks, 0, sizeof(host_socks));
    host_sock_count = 0;
}

int pp_inj_host_socket(int adopted)
{
    if (host_sock_count == PP_HOST_SOCKS)
        abort();
    int id = host_sock_count++;
    struct pp_host_sock *h = &host_socks[id];
    h->file.f_flags = PP_HOST_O_NONBLOCK;
    h->so.file = &h->file;
    h->tcp.inet_conn.icsk_inet.sk.sk_socket = &h->so;
    __u64 cookie = 1000 + (__u64)id;
    h->tcp.inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter = (__s64)cookie;
    h->tcp.write_seq = 0x10000000u * (unsigned)(id + 1) + 12345u; /* any start */
    pp_stub_sock_set_tcp(&h->tcp, &h->tcp);
    if (adopted) {
        struct pp_inject_adopt a;
        memset(&a, 0, sizeof(a));
        a.netns = 4026531840u;
        bpf_map_update_elem(&inject_adopt, &cookie, &a, BPF_ANY);
    } else {
        struct pp_inj_sock *s =
            bpf_sk_storage_get(&inject_sk, &h->tcp, 0, BPF_SK_STORAGE_GET_F_CREATE);
        if (!s)
            abort();
        s->marked = 1;
        s->mode = M_START;
        s->cookie = cookie;
    }
    return id;
}

int pp_inj_host_send(int id, const uint8_t *in, size_t len, const uint8_t **out, size_t *out_len)
{
    if (id < 0 || id >= host_sock_count)
        abort();
    struct pp_host_sock *h = &host_socks[id];
    memset(&host_md, 0, sizeof(host_md));
    host_md.sk = (struct bpf_sock *)&h->tcp;
    pp_stub_msg_begin(&host_md, in, len);
    int verdict = inject_msg(&host_md);
    size_t n = 0;
    const uint8_t *bytes = pp_stub_msg_end(&n);
    free(host_out);
    host_out = malloc(n ? n : 1);
    if (!host_out)
        abort();
    memcpy(host_out, bytes, n);
    h->tcp.write_seq += (__u32)n;
    *out = host_out;
    *out_len = n;
    return verdict;
}

void pp_inj_host_bypass(int id, size_t len)
{
    if (id < 0 || id >= host_sock_count)
        abort();
    host_socks[id].tcp.write_seq += (__u32)len;
}

int pp_inj_host_dead(int id)
{
    if (id < 0 || id >= host_sock_count)
        abort();
    struct pp_inj_sock *s = bpf_sk_storage_get(&inject_sk, &host_socks[id].tcp, 0, 0);
    return !s || s->mode == M_DEAD;
}

size_t pp_inj_host_reports(struct pp_inj_host_report *out, size_t max)
{
    size_t n = 0, total = pp_stub_ringbuf_count();
    for (size_t i = 0; i < total; i++) {
        size_t size = 0;
        const struct pp_inject_event *ev = pp_stub_ringbuf_at(i, &size);
        if (size != sizeof(*ev) || ev->hdr.kind != PP_EV_INJECT)
            continue;
        if (n < max) {
            out[n].outcome = ev->outcome;
            out[n].sampled = ev->ctx.sampled;
            out[n].rule = ev->rule;
            out[n].app_pos = ev->app_pos;
            out[n].subsegment_id = ev->subsegment_id;
            out[n].socket_cookie = ev->socket_cookie;
            out[n].ctx_segment_id = ev->ctx.segment_id;
            out[n].ctx_from_thread = ev->ctx_from_thread;
        }
        n++;
    }
    return n;
}

uint64_t pp_inj_host_counter(unsigned c)
{
    __u32 key = c;
    __u64 *v = bpf_map_lookup_elem(&inject_counters, &key);
    return v ? *v : 0;
}

static int host_hex(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int pp_inj_host_received(const char *root, const char *parent, uint64_t segment_id)
{
    struct pp_trace_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    uint64_t v = 0;
    if (strlen(root) != 35 || strlen(parent) != 16 || host_hex(root + 2, 8, &v) != 0)
        return -1;
    ctx.trace_epoch = (uint32_t)v;
    for (int k = 0; k < 12; k++) {
        if (host_hex(root + 11 + 2 * k, 2, &v) != 0)
            return -1;
        ctx.trace_rand[k] = (uint8_t)v;
    }
    if (host_hex(parent, 16, &v) != 0)
        return -1;
    ctx.parent_id = v;
    ctx.segment_id = segment_id;
    ctx.sampled = PP_SAMPLED_YES;
    ctx.source = PP_CTX_XRAY_HEADER;
    pp_remember_forwardable((uint32_t)(bpf_get_current_pid_tgid() >> 32), &ctx);
    return 0;
}
