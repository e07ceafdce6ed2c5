/* Server-side trace context, decided in the kernel from a request's head, however many reads and
 * pieces it comes in: each piece (the up to PP_MAX_CHUNK bytes a data event carries) is scanned
 * in one bpf_loop pass, one byte per step, except that the bytes no state looks at (the rest of
 * the request line after the path, header lines whose name is none of ours) are passed over 8 at
 * a time up to their '\n' (pp_head_skip). The scan state carries over from piece to piece, and
 * from a read to the connection's next read (head_pending), until the blank line ending the head,
 * or until the head budget (PP_HEAD_BUDGET) is used up: then what was found counts
 * (PP_CTXC_HEAD_UNENDED). The context is decided before the data event that completes the head,
 * i.e. before the application has the whole head. It holds:
 *   - the request line (method, path without query) and Host (without port), for sampling;
 *   - X-Amzn-Trace-Id (name case-insensitive; Root/Parent/Sampled keys case-insensitive, any
 *     order, spaces around parts, a repeated key: its last usable value wins, as the X-Ray SDKs
 *     and OpenTelemetry do): Root must be "1-<8 hex>-<24 hex>" with a non-zero random part (a
 *     later malformed Root voids an earlier one), Parent 16 hex not zero (an invalid Parent is
 *     ignored), Sampled 0/1/?. A value longer than PP_MAX_TRACE_HEADER or no valid Root: the
 *     header is treated as absent; the first X-Amzn-Trace-Id line counts;
 *   - else W3C traceparent "vv-<32 lower hex>-<16 lower hex>-<2 hex>" (W3C Trace Context,
 *     https://www.w3.org/TR/trace-context/);
 *   - else a new trace (pp_mint_trace).
 * Only header lines that end inside the scanned bytes count. The context goes to thread_ctx for
 * the reading thread and to userspace as PP_EV_TRACE_CTX. */
#ifndef PASSPORT_CTX_PARSE_BPF_H
#define PASSPORT_CTX_PARSE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "go_ctx.bpf.h"
#include "sample.bpf.h"
#include "trace_ctx.bpf.h"

/* The longest X-Amzn-Trace-Id value read: the X-Ray trace header's documented maximum length
 * (XAmznTraceId, "Maximum length of 8192",
 * https://docs.aws.amazon.com/lambda/latest/api/API_TraceHeader.html). Longer: treated as absent,
 * as userspace does (kMaxTraceHeaderLength). */
#define PP_MAX_TRACE_HEADER 8192

/* Literals as little-endian byte strings, so a byte is a shift away (no string tables). */
#define PP_C8(a, b, c, d, e, f, g, h)                                                              \
    ((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |       \
     (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

static __always_inline __u8 pp_lit(__u64 lo, __u64 hi, __u32 k)
{
    if (k < 8)
        return (lo >> (k * 8)) & 0xff;
    if (k < 16)
        return (hi >> ((k - 8) * 8)) & 0xff;
    return 0;
}

/* Header names. Content-Length and Transfer-Encoding give the body's framing, which the gate on
 * unsampled requests follows; Transfer-Encoding is recognised by its first 16 characters and its
 * length (any such header only makes the request be captured in full). */
#define PP_H_XRAY    1
#define PP_H_TP      2
#define PP_H_HOST    4
#define PP_H_ALL     7
#define PP_H_CL      8
#define PP_H_TE      16
#define PP_H_FRAMING (PP_H_CL | PP_H_TE)
/* Trace header keys. */
#define PP_K_ROOT    1
#define PP_K_PARENT  2
#define PP_K_SAMPLED 4
#define PP_K_ALL     7

static __always_inline __u8 pp_name_char(__u32 which, __u32 k)
{
    switch (which) {
    case PP_H_XRAY:
        return pp_lit(PP_C8('x', '-', 'a', 'm', 'z', 'n', '-', 't'),
                      PP_C8('r', 'a', 'c', 'e', '-', 'i', 'd', 0), k);
    case PP_H_TP:
        return pp_lit(PP_C8('t', 'r', 'a', 'c', 'e', 'p', 'a', 'r'),
                      PP_C8('e', 'n', 't', 0, 0, 0, 0, 0), k);
    case PP_H_HOST:
        return pp_lit(PP_C8('h', 'o', 's', 't', 0, 0, 0, 0), 0, k);
    case PP_H_CL:
        return pp_lit(PP_C8('c', 'o', 'n', 't', 'e', 'n', 't', '-'),
                      PP_C8('l', 'e', 'n', 'g', 't', 'h', 0, 0), k);
    case PP_H_TE:
        return pp_lit(PP_C8('t', 'r', 'a', 'n', 's', 'f', 'e', 'r'),
                      PP_C8('-', 'e', 'n', 'c', 'o', 'd', 'i', 'n'), k);
    case PP_K_ROOT | 0x100:
        return pp_lit(PP_C8('r', 'o', 'o', 't', 0, 0, 0, 0), 0, k);
    case PP_K_PARENT | 0x100:
        return pp_lit(PP_C8('p', 'a', 'r', 'e', 'n', 't', 0, 0), 0, k);
    case PP_K_SAMPLED | 0x100:
        return pp_lit(PP_C8('s', 'a', 'm', 'p', 'l', 'e', 'd', 0), 0, k);
    }
    return 0;
}

static __always_inline __u32 pp_name_len(__u32 which)
{
    switch (which) {
    case PP_H_XRAY:
        return 15;
    case PP_H_TP:
        return 11;
    case PP_H_HOST:
        return 4;
    case PP_H_CL:
        return 14;
    case PP_H_TE:
        return 17;
    }
    return 0;
}

/* Keeps the candidates (bits) whose name has character c at position k. */
static __always_inline __u32 pp_narrow(__u32 cand, __u32 k, __u8 c, __u32 key_space)
{
    __u32 out = 0;
    if ((cand & 1) && pp_name_char(1 | key_space, k) == c)
        out |= 1;
    if ((cand & 2) && pp_name_char(2 | key_space, k) == c)
        out |= 2;
    if ((cand & 4) && pp_name_char(4 | key_space, k) == c)
        out |= 4;
    if ((cand & PP_H_CL) && pp_name_char(PP_H_CL | key_space, k) == c)
        out |= PP_H_CL;
    if ((cand & PP_H_TE) && pp_name_char(PP_H_TE | key_space, k) == c)
        out |= PP_H_TE;
    return out;
}

/* The candidate whose full name is exactly k characters long, or 0. */
static __always_inline __u32 pp_exact(__u32 cand, __u32 k)
{
    if ((cand & 1) && pp_name_len(1) == k)
        return 1;
    if ((cand & 2) && pp_name_len(2) == k)
        return 2;
    if ((cand & 4) && pp_name_len(4) == k)
        return 4;
    if ((cand & PP_H_CL) && pp_name_len(PP_H_CL) == k)
        return PP_H_CL;
    if ((cand & PP_H_TE) && pp_name_len(PP_H_TE) == k)
        return PP_H_TE;
    return 0;
}

/* Key lengths differ from header lengths: keys use their own table. */
static __always_inline __u32 pp_exact_key(__u32 cand, __u32 k)
{
    if ((cand & PP_K_ROOT) && k == 4)
        return PP_K_ROOT;
    if ((cand & PP_K_PARENT) && k == 6)
        return PP_K_PARENT;
    if ((cand & PP_K_SAMPLED) && k == 7)
        return PP_K_SAMPLED;
    return 0;
}

/* 0..15, or 16 when c is not a hex digit (lower_only: A-F rejected). */
static __always_inline __u32 pp_hex(__u8 c, int lower_only)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (!lower_only && c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 16;
}

enum { PP_PH_NAME = 0, PP_PH_LEAD = 1, PP_PH_VALUE = 2, PP_PH_SKIP = 3 };

/* 0 when no local sampling rule the kernel can reach looks at a request's method, path or Host
 * (the loader works it out from the rules, which it writes once before attaching): the scan then
 * passes over the request line and the Host line 8 bytes a step, like any line it does not read,
 * and the rules see those attributes as absent, which such rules match exactly as they match the
 * real text (patterns made only of '*'). The trace headers are read either way. */
const volatile __u32 pp_head_text __weak = 1;

/* Defined in conn.bpf.h, which every probe including this header includes too (the host tests
 * bring a stand-in). */
static __noinline int pp_local_caller(__s32 fd);

/* 1: the gate on unsampled requests is on (the loader clears it for --no-sample-gate). */
const volatile __u32 pp_gate __weak = 1;

/* bpf_loop context (stack): pointers only. */
struct pp_head_loop {
    struct pp_data_scratch *s;
    struct pp_head_scan *h;
};

static __always_inline void pp_x_end_part(struct pp_head_scan *h)
{
    if (!h->x_inkey && h->x_j > 0 && h->x_key) {
        h->x_seen |= h->x_key; /* a repeated key: the last usable value wins */
        if (h->x_key == PP_K_ROOT)
            h->x_root_ok = !h->x_bad && h->x_j == 35 && (h->x_hi | h->x_lo) != 0;
        else if (h->x_key == PP_K_PARENT) {
            if (!h->x_bad && h->x_j == 16 && h->x_cur != 0) {
                h->x_par = h->x_cur;
                h->x_par_ok = 1;
            }
        } else if (h->x_key == PP_K_SAMPLED && !h->x_bad)
            h->x_sampled = (__u32)h->x_cur;
    }
    h->x_inkey = 1;
    h->x_kpos = 0;
    h->x_kcand = PP_K_ALL;
    h->x_key = 0;
    h->x_j = 0;
    h->x_bad = 0;
    h->x_trail = 0;
    h->x_cur = 0;
}

static __always_inline void pp_x_char(struct pp_head_scan *h, __u8 c)
{
    if (++h->x_len > PP_MAX_TRACE_HEADER) {
        h->x_dup = 1; /* too long: the whole header is rejected */
        return;
    }
    if (c == ';') {
        pp_x_end_part(h);
        return;
    }
    int space = c == ' ' || c == '\t';
    if (h->x_inkey) {
        /* x_trail: a blank after the key's first character. Blanks around a key are allowed,
         * one inside it ("Ro ot") makes it none of ours, as in userspace. */
        if (space) {
            if (h->x_kpos > 0)
                h->x_trail = 1;
            return;
        }
        if (c == '=') {
            h->x_key = pp_exact_key(h->x_kcand, h->x_kpos);
            h->x_inkey = 0;
            h->x_trail = 0;
            return;
        }
        if (h->x_trail)
            h->x_kcand = 0;
        h->x_kcand = h->x_kpos < 8 ? pp_narrow(h->x_kcand, h->x_kpos, pp_fold(c), 0x100) : 0;
        h->x_kpos++;
        return;
    }
    if (space) {
        if (h->x_j > 0)
            h->x_trail = 1;
        return;
    }
    if (h->x_trail)
        h->x_bad = 1;
    __u32 j = h->x_j;
    if (j < 255)
        h->x_j = j + 1;
    if (h->x_bad)
        return;
    if (h->x_key == PP_K_ROOT) {
        __u32 v = pp_hex(c, 0);
        if (j == 0)
            h->x_bad = c != '1';
        else if (j == 1 || j == 10)
            h->x_bad = c != '-';
        else if (j >= 35 || v > 15)
            h->x_bad = 1;
        else if (j < 10)
            h->x_epoch = h->x_epoch << 4 | v;
        else if (j < 27)
            h->x_hi = h->x_hi << 4 | v;
        else
            h->x_lo = h->x_lo << 4 | v;
        if (j == 0) { /* a new Root value: start over */
            h->x_epoch = 0;
            h->x_hi = 0;
            h->x_lo = 0;
        }
    } else if (h->x_key == PP_K_PARENT) {
        __u32 v = pp_hex(c, 0);
        if (j >= 16 || v > 15)
            h->x_bad = 1;
        else
            h->x_cur = h->x_cur << 4 | v;
    } else if (h->x_key == PP_K_SAMPLED) {
        /* Held in x_cur until the part ends: only a value of exactly one of these characters
         * decides ("1x" is no decision, as in userspace). */
        if (j > 0)
            h->x_bad = 1;
        else if (c == '1')
            h->x_cur = PP_SAMPLED_YES;
        else if (c == '0')
            h->x_cur = PP_SAMPLED_NO;
        else if (c == '?')
            h->x_cur = PP_SAMPLED_UNKNOWN;
        else
            h->x_bad = 1;
    }
}

static __always_inline void pp_t_char(struct pp_head_scan *h, __u8 c)
{
    if (c == ' ' || c == '\t') {
        if (h->t_j > 0)
            h->t_trail = 1;
        return;
    }
    if (h->t_trail)
        h->t_bad = 1;
    __u32 j = h->t_j;
    if (j < 1024)
        h->t_j = j + 1;
    else
        h->t_bad = 1;
    if (h->t_bad)
        return;
    __u32 v = pp_hex(c, 1);
    if (j == 2 || j == 35 || j == 52) {
        h->t_bad = c != '-';
    } else if (j >= 55) {
        /* Versions after 00 may append fields after another '-'. */
        if (h->t_ver == 0 || (j == 55 && c != '-'))
            h->t_bad = 1;
    } else if (v > 15) {
        h->t_bad = 1;
    } else if (j < 2) {
        h->t_ver = h->t_ver << 4 | v;
    } else if (j < 11) {
        h->t_epoch = h->t_epoch << 4 | v;
    } else if (j < 27) {
        h->t_hi = h->t_hi << 4 | v;
    } else if (j < 35) {
        h->t_lo = h->t_lo << 4 | v;
    } else if (j < 52) {
        h->t_par = h->t_par << 4 | v;
    } else {
        h->t_flags = h->t_flags << 4 | v;
    }
}

/* One character of the Content-Length value: digits, blanks only around them. */
static __always_inline void pp_cl_char(struct pp_head_scan *h, __u8 c)
{
    if (c == ' ' || c == '\t') {
        if (h->cl_digits > 0)
            h->cl_trail = 1;
        return;
    }
    if (c < '0' || c > '9' || h->cl_trail || h->cl_digits >= 15) {
        h->cl_bad = 1;
        return;
    }
    h->cl = h->cl * 10 + (c - '0');
    h->cl_digits++;
}

/* A header line ended. */
static __always_inline void pp_end_line(struct pp_head_scan *h)
{
    if (h->phase == PP_PH_VALUE || h->phase == PP_PH_LEAD) {
        if (h->hdr == PP_H_XRAY) {
            pp_x_end_part(h);
            h->xray = (!h->x_dup && h->x_root_ok) ? 1 : 2;
        } else if (h->hdr == PP_H_TP) {
            h->tp = (!h->t_bad && h->t_j >= 55 && h->t_ver != 0xff && (h->t_hi | h->t_lo) != 0 &&
                     h->t_par != 0)
                        ? 1
                        : 2;
        } else if (h->hdr == PP_H_CL && h->cl_digits == 0) {
            h->cl_bad = 1;
        }
    }
    h->phase = PP_PH_NAME;
    h->name_pos = 0;
    h->cand = h->want;
    h->hdr = 0;
}

/* In a state that only waits for the end of the line, the offset of the next '\n' among the 8
 * bytes at i (0..7), or 8 when there is none. One word load and a zero-byte test instead of 8
 * loop steps: header lines Passport does not read (User-Agent, Accept, Cookie...) are most of a
 * request head. The lowest flagged byte of the test is exact (borrows only flag bytes above a
 * true match). The 8 bytes may run past len into the scratch's spare bytes (see the caller). */
static __always_inline __u32 pp_head_skip(const struct pp_data_scratch *s, __u32 i)
{
    __u32 idx = i & (PP_MAX_CHUNK - 1);
    __u64 w = *(const __u64 *)&s->ev.msg[idx];
    __u64 x = w ^ 0x0a0a0a0a0a0a0a0aULL;
    __u64 m = (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
    if (!m)
        return 8;
    __u64 low = m & -m;
    return (low > 0x80ULL) + (low > 0x8000ULL) + (low > 0x800000ULL) + (low > 0x80000000ULL) +
           (low > 0x8000000000ULL) + (low > 0x800000000000ULL) + (low > 0x80000000000000ULL);
}

static __always_inline long pp_head_byte(struct pp_head_loop *l, struct pp_head_scan *h, __u32 i);

static long pp_head_step(__u32 n, void *arg)
{
    struct pp_head_loop *l = arg;
    struct pp_head_scan *h = l->h;
    __u32 i = h->pos;
    if (i >= h->len || i >= PP_MAX_CHUNK)
        return 1;
    if ((h->line == 0 && h->rl_state == 2) || (h->line != 0 && h->phase == PP_PH_SKIP)) {
        /* Past len the bytes are not the request's: a '\n' there, or none, both end the
         * scan with pos >= len, as the line does not end inside the captured bytes. */
        __u32 k = pp_head_skip(l->s, i);
        if (k > 0) {
            /* No '\n' before i + k; bytes past len belong to the next piece. */
            h->pos = i + k > h->len ? h->len : i + k;
            return 0;
        }
    }
    h->pos = i + 1;
    return pp_head_byte(l, h, i);
}

/* One byte at i: the state machine. */
static __always_inline long pp_head_byte(struct pp_head_loop *l, struct pp_head_scan *h, __u32 i)
{
    __u32 idx = i & (PP_MAX_CHUNK - 1);
    __u8 c = l->s->ev.msg[idx];

    if (h->line == 0) {
        if (c == '\n') {
            if (h->rl_state == 1)
                h->path_end = h->base + i;
            h->line = 1;
            pp_end_line(h);
            h->phase = PP_PH_NAME;
            return 0;
        }
        if (h->rl_state == 0 && c == ' ') {
            h->method_end = h->base + i;
            h->path_start = h->base + i + 1;
            h->rl_state = 1;
        } else if (h->rl_state == 1 && (c == '?' || c == ' ' || c == '\r')) {
            h->path_end = h->base + i;
            h->rl_state = 2;
        }
        return 0;
    }
    if (c == '\n') {
        if (h->phase == PP_PH_NAME && h->name_pos == 0) {
            h->done = 1;
            h->head_len = h->base + i + 1;
            return 1; /* blank line: end of the head */
        }
        pp_end_line(h);
        return 0;
    }
    if (c == '\r')
        return 0;
    if (h->phase == PP_PH_SKIP)
        return 0;
    if (h->phase == PP_PH_NAME) {
        if (c == ':') {
            __u32 which = pp_exact(h->cand, h->name_pos);
            if (which == PP_H_TE)
                h->te = 1; /* its value does not matter: the body is not followed */
            if (which == PP_H_CL && (h->seen & which))
                h->cl_bad = 1;
            if (!which || which == PP_H_TE || (h->seen & which)) {
                h->phase = PP_PH_SKIP; /* not ours, or a repeat: the first one counts */
                return 0;
            }
            h->seen |= which;
            h->hdr = which;
            h->phase = PP_PH_LEAD;
            if (which == PP_H_XRAY) {
                h->x_inkey = 1;
                h->x_kcand = PP_K_ALL;
                h->x_sampled = PP_SAMPLED_UNKNOWN;
            } else if (which == PP_H_HOST) {
                h->host_start = h->base + i + 1;
                h->host_end = h->base + i + 1;
            }
            return 0;
        }
        h->cand =
            h->name_pos < 16 ? pp_narrow(h->cand, h->name_pos, pp_fold(c), 0) : (h->cand & PP_H_TE);
        h->name_pos++;
        if (!h->cand)
            h->phase = PP_PH_SKIP;
        return 0;
    }
    if (h->phase == PP_PH_LEAD) {
        if (c == ' ' || c == '\t')
            return 0;
        h->phase = PP_PH_VALUE;
        if (h->hdr == PP_H_HOST)
            h->host_start = h->base + i;
    }
    if (h->hdr == PP_H_XRAY) {
        pp_x_char(h, c);
    } else if (h->hdr == PP_H_TP) {
        pp_t_char(h, c);
    } else if (h->hdr == PP_H_CL) {
        pp_cl_char(h, c);
    } else if (h->hdr == PP_H_HOST) {
        if (c != ' ' && c != '\t')
            h->host_end = h->base + i + 1;
        if (c == ':') {
            if (!h->host_colons)
                h->host_colon = h->base + i;
            h->host_colons++;
        }
    }
    return 0;
}

static __always_inline void pp_store_be32(__u8 *dst, __u32 v)
{
    dst[0] = v >> 24;
    dst[1] = v >> 16;
    dst[2] = v >> 8;
    dst[3] = v;
}

/* Random part of a trace id (24 hex digits = hi 16 digits + lo 8) into printing order. */
static __always_inline void pp_set_rand(struct pp_trace_ctx *ctx, __u64 hi, __u32 lo)
{
    pp_store_be32(&ctx->trace_rand[0], hi >> 32);
    pp_store_be32(&ctx->trace_rand[4], (__u32)hi);
    pp_store_be32(&ctx->trace_rand[8], lo);
}

/* Heads read in part, per connection (conn_map_key), waiting for the read that brings their next
 * bytes; pp_conn_state.head_pending says one is here. LRU: a head whose client went quiet is
 * pushed out by newer ones. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 1024);
    __type(key, __u64);
    __type(value, struct pp_head_scan);
} head_pending SEC(".maps") __weak;

/* Starts the scan (per-CPU head_scratch) of a request head whose first byte is at stream
 * position pos. Returns 1 when the scan is open. */
static __always_inline __u32 pp_head_open(__u64 pos, __u64 gen)
{
    __u32 zero = 0;
    struct pp_head_scan *hp = bpf_map_lookup_elem(&head_scratch, &zero);
    if (!hp)
        return 0;
    __builtin_memset(hp, 0, sizeof(*hp));
    hp->want = (pp_head_text ? PP_H_ALL : (PP_H_XRAY | PP_H_TP)) | PP_H_FRAMING;
    hp->cand = hp->want;
    if (!pp_head_text)
        hp->rl_state = 2; /* the request line: only its end matters */
    hp->x_inkey = 1;
    hp->x_kcand = PP_K_ALL;
    hp->x_sampled = PP_SAMPLED_UNKNOWN;
    hp->request_pos = pos;
    hp->next_pos = pos;
    hp->gen = gen;
    return 1;
}

/* Takes back the scan of the head left unfinished on connection `key` when this read continues
 * it (same connection generation, the very next stream position). Returns 1 when resumed. */
static __always_inline __u32 pp_head_resume(__u64 key, __u64 pos, __u64 gen)
{
    __u32 zero = 0;
    struct pp_head_scan *hp = bpf_map_lookup_elem(&head_scratch, &zero);
    struct pp_head_scan *p = bpf_map_lookup_elem(&head_pending, &key);
    __u32 ok = 0;
    if (hp && p && p->gen == gen && p->next_pos == pos) {
        __builtin_memcpy(hp, p, sizeof(*hp));
        ok = 1;
    }
    if (p)
        bpf_map_delete_elem(&head_pending, &key);
    return ok;
}

/* Keeps the open scan for the connection's next read. 0 when it could not be kept. */
static __always_inline __u32 pp_head_suspend(__u64 key, struct pp_conn_state *st)
{
    __u32 zero = 0;
    struct pp_head_scan *hp = bpf_map_lookup_elem(&head_scratch, &zero);
    if (!hp || bpf_map_update_elem(&head_pending, &key, hp, BPF_ANY) != 0)
        return 0;
    st->head_pending = 1;
    return 1;
}

/* Why an unsampled request must still be captured in full (a PP_CTXC_GATE_FB_* counter), or 0
 * when its bytes need not reach userspace: the decision is final, the head was read whole in
 * the read's first piece, its body's end is known and that read holds nothing beyond it.
 * `total` is the read's bytes from the request's first one (0: not a socket read, i.e. TLS
 * plaintext); `by_rule`: the kernel's rules decided (no trace header decided it). */
static __always_inline __u32 pp_gate_check(const struct pp_head_scan *hp, __u32 first_piece,
                                           __u32 total, __u32 by_rule, __s32 fd)
{
    if (!pp_gate)
        return PP_CTXC_GATE_FB_OFF;
    if (total == 0)
        return PP_CTXC_GATE_FB_TLS;
    if (!first_piece || !hp->done)
        return PP_CTXC_GATE_FB_HEAD_SPLIT;
    if (hp->te || hp->cl_bad)
        return PP_CTXC_GATE_FB_FRAMING;
    if ((__u64)hp->head_len + hp->cl < total)
        return PP_CTXC_GATE_FB_PIPELINED;
    /* A header's Sampled=0 (or traceparent's flag) is the caller's own decision; a rule's may
     * be overridden by a sampled caller on this node that the request is stitched under. */
    if (by_rule && pp_local_caller(fd))
        return PP_CTXC_GATE_FB_LOCAL_CALLER;
    return 0;
}

/* The first of a run of gated requests on connection `key` began at these stream positions. */
static __noinline __attribute__((unused)) void pp_gate_span_start(__u64 key, __u64 rx, __u64 tx)
{
    struct pp_gate_span span = {.rx_start = rx, .tx_start = tx};
    bpf_map_update_elem(&gate_spans, &key, &span, BPF_ANY);
}

/* Gates the request just decided (unsampled) when nothing needs its bytes: the connection stops
 * shipping them (pp_conn_state.gate_*); the next request's context will tell userspace. A function
 * of its own, like pp_remember_forwardable: the parser's call chain (TLS plaintext included) is
 * near the stack limit. The scan state says the rest (hp->total, hp->by_rule). */
static __noinline __attribute__((unused)) void
pp_gate_request(struct pp_head_scan *hp, struct pp_conn_state *cst, struct pp_trace_ctx_event *out)
{
    __u32 why = pp_gate_check(hp, hp->base == 0, hp->total, hp->by_rule, out->ctx.conn.fd);
    if (why) {
        pp_ctx_count(why);
        return;
    }
    if (!cst->gate_span) {
        pp_gate_span_start(conn_map_key(out->ctx.conn.tgid, out->ctx.conn.fd), hp->request_pos,
                           cst->tx_pos);
        cst->gate_span = 1;
    }
    cst->gate_rx = 1;
    cst->gate_tx = 1;
    cst->gate_body_end = hp->request_pos + hp->head_len + hp->cl;
    cst->rx_head_budget = 0;
    hp->gated = 1;
    pp_ctx_count(PP_CTXC_GATED);
}

/* The gated requests before this one on the connection (key), for userspace. */
static __noinline __attribute__((unused)) void pp_gate_report(struct pp_conn_state *cst, __u64 key,
                                                              struct pp_trace_ctx_event *out)
{
    struct pp_gate_span *span = bpf_map_lookup_elem(&gate_spans, &key);
    cst->gate_span = 0;
    if (!span)
        return; /* forgotten: userspace counts the positions lost */
    out->unsampled = 1;
    out->unsampled_rx_pos = span->rx_start;
    out->unsampled_tx_pos = span->tx_start;
    bpf_map_delete_elem(&gate_spans, &key);
}

/* The context of the scanned head (head_scratch), to thread_ctx and to userspace. s->ev.msg
 * holds the head's last scanned piece: the sampling rules can read the request line and Host
 * there only when that piece is the head's first. */
static __always_inline void pp_head_decide(struct pp_data_scratch *s, struct pp_head_scan *hp,
                                           __u32 first_piece)
{
    if (!hp->done)
        pp_ctx_count(PP_CTXC_HEAD_UNENDED);
    /* Built in the ring buffer, or (ring full) in the scratch's spare bytes, which no copy of
     * this syscall has used yet: the thread still gets its context. */
    struct pp_trace_ctx_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
    struct pp_trace_ctx_event *out = ev ? ev : (struct pp_trace_ctx_event *)s->spare;
    __builtin_memset(out, 0, sizeof(*out));
    struct pp_trace_ctx *ctx = &out->ctx;
    out->rule = PP_RULE_NONE;
    if (hp->xray == 2) {
        out->rejected |= PP_REJECT_XRAY;
        pp_ctx_count(PP_CTXC_XRAY_REJECTED);
    }
    if (hp->tp == 2) {
        out->rejected |= PP_REJECT_TRACEPARENT;
        pp_ctx_count(PP_CTXC_TP_REJECTED);
    }
    __u32 need_rules = 0;
    hp->by_rule = 0;
    if (hp->xray == 1) {
        ctx->trace_epoch = hp->x_epoch;
        pp_set_rand(ctx, hp->x_hi, hp->x_lo);
        ctx->parent_id = hp->x_par_ok ? hp->x_par : 0;
        ctx->sampled = hp->x_sampled;
        ctx->source = PP_CTX_XRAY_HEADER;
        ctx->segment_id = pp_random_id();
        need_rules = hp->x_sampled == PP_SAMPLED_UNKNOWN;
        pp_ctx_count(PP_CTXC_XRAY);
    } else if (hp->tp == 1) {
        ctx->trace_epoch = hp->t_epoch;
        pp_set_rand(ctx, hp->t_hi, hp->t_lo);
        ctx->parent_id = hp->t_par;
        ctx->sampled = (hp->t_flags & 1) ? PP_SAMPLED_YES : PP_SAMPLED_NO;
        ctx->source = PP_CTX_TRACEPARENT;
        ctx->segment_id = pp_random_id();
        pp_ctx_count(PP_CTXC_TRACEPARENT);
    } else {
        pp_mint_trace(ctx);
        if (ctx->trace_epoch == 0)
            pp_ctx_count(PP_CTXC_NO_CLOCK);
        need_rules = 1;
        pp_ctx_count(PP_CTXC_MINTED);
    }
    if (need_rules && pp_head_text && !first_piece) {
        /* The request line is no longer in s->ev.msg: userspace decides with the same rules. */
        ctx->sampled = PP_SAMPLED_UNKNOWN;
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
    } else if (need_rules) {
        struct pp_sample_text a;
        pp_sample_text_from(&a, hp->method_end, hp->path_start, hp->path_end, hp->host_start,
                            hp->host_end, hp->host_colon, hp->host_colons);
        __u16 rule = PP_RULE_NONE;
        /* A minted id's second is the reservoir's: its epoch shows which second counted it. */
        if (ctx->source == PP_CTX_MINTED)
            a.now = ctx->trace_epoch;
        ctx->sampled = pp_sample_request(s->ev.conn.tgid, s->ev.msg, &a, &rule);
        out->rule = rule;
        hp->by_rule = 1;
    }
    ctx->conn = s->ev.conn;
    ctx->request_pos = hp->request_pos;

    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (pp_store_thread_ctx(pid_tgid, ctx) != 0)
        pp_ctx_count(PP_CTXC_STORE_FAILED);
    __u64 ckey = conn_map_key(ctx->conn.tgid, ctx->conn.fd);
    struct pp_conn_state *cst = bpf_map_lookup_elem(&conns, &ckey);
    if (cst)
        pp_ctx_history_push(ctx, cst->tx_pos);
    if (ctx->sampled == PP_SAMPLED_UNKNOWN)
        pp_ctx_count(PP_CTXC_GATE_FB_DEFERRED);
    else if (ctx->sampled == PP_SAMPLED_NO && cst)
        pp_gate_request(hp, cst, out);
    if (cst && cst->gate_span && !hp->gated) /* the first request shipped after gated ones */
        pp_gate_report(cst, ckey, out);
    pp_remember_forwardable(pid_tgid >> 32, ctx);
    pp_go_note_request(pid_tgid);
    if (hp->gated) { /* no record: the next request's says where the gated ones were */
        if (ev)
            bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);
        return;
    }
    fill_header(&out->hdr, PP_EV_TRACE_CTX, pid_tgid, bpf_ktime_get_ns());
    if (ev)
        bpf_ringbuf_submit(ev, 0);
    else
        count_drop(PP_DROP_RINGBUF_FULL);
}

/* Scans the next piece of the open head: the `captured` bytes in s->ev.msg, of the n bytes the
 * piece moved. Called before the piece's data event, so the context (decided when the head ends
 * here, or when `last`: no further byte of the head will be looked at) comes before the event
 * that completes the head for userspace. Returns 1 while the head goes on past this piece, 2
 * when the request was gated (its bytes are not to be shipped), else 0. `total`: the socket
 * read's bytes from the request's first one, 0 for TLS plaintext (see pp_gate_check).
 * A global function (scalars in, the scratch maps looked up here): the verifier checks it once,
 * not once per call site. */
__weak __noinline int pp_head_piece(__u32 captured, __u32 n, __u32 last, __u32 total)
{
    __u32 zero = 0;
    struct pp_data_scratch *s = bpf_map_lookup_elem(&data_scratch, &zero);
    struct pp_head_scan *hp = bpf_map_lookup_elem(&head_scratch, &zero);
    if (!s || !hp)
        return 0;
    hp->pos = 0;
    hp->len = captured > PP_MAX_CHUNK ? PP_MAX_CHUNK : captured;
    hp->total = total;
    struct pp_head_loop loop = {.s = s, .h = hp};
    bpf_loop(PP_MAX_CHUNK, pp_head_step, &loop, 0);
    if (hp->done || last) {
        pp_head_decide(s, hp, hp->base == 0);
        return hp->gated ? 2 : 0;
    }
    hp->base += n;
    hp->next_pos += n;
    return 1;
}

#endif /* PASSPORT_CTX_PARSE_BPF_H */
