/* The HTTP/1 request framing state machine of the sk_msg program: one byte at a time, state in
 * the socket's struct pp_inj_sock, so body bytes are never taken for a request. */
#ifndef PASSPORT_INJECT_FRAMING_BPF_H
#define PASSPORT_INJECT_FRAMING_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "inject_maps.bpf.h"
#include "xray_value.bpf.h"

/* Words matched byte by byte, packed little-endian into constants: .rodata arrays from several
 * objects do not survive `bpftool gen object` of this bpftool version. */
#define NAME_CL_LEN   14 /* content-length */
#define NAME_TE_LEN   17 /* transfer-encoding */
#define NAME_XRAY_LEN 15 /* x-amzn-trace-id */
#define CHUNKED_LEN   7

static __always_inline __u8 packed_char(__u64 w0, __u64 w1, __u64 w2, __u32 k)
{
    __u64 w = k < 8 ? w0 : k < 16 ? w1 : w2;
    return (__u8)(w >> (8 * (k & 7)));
}
#define name_cl_at(k)   packed_char(0x2d746e65746e6f63ULL, 0x6874676e656cULL, 0, (k))
#define name_te_at(k)   packed_char(0x726566736e617274ULL, 0x6e69646f636e652dULL, 0x67ULL, (k))
#define name_xray_at(k) packed_char(0x742d6e7a6d612d78ULL, 0x64692d65636172ULL, 0, (k))
#define chunked_at(k)   packed_char(0x64656b6e756863ULL, 0, 0, (k))
#define NAME_HOST_LEN   4
#define name_host_at(k) packed_char(0x74736f68ULL, 0, 0, (k))

static __always_inline __u8 lower(__u8 c)
{
    return (c >= 'A' && c <= 'Z') ? c | 0x20 : c;
}

/* A header name stays a candidate (`bit` of s->cand) while byte k of the line, lowercased, is
 * byte k of that name (`want`; packed_char gives a value for any k). */
static __always_inline void keep_name(struct pp_inj_sock *s, __u32 bit, __u32 k, __u32 len,
                                      __u8 want, __u8 l)
{
    if (k >= len || l != want)
        s->cand &= ~bit;
}

/* Methods packed big-endian into the rolling value as they arrive ("GET" = 0x474554). */
static __always_inline int known_method(__u64 m, __u32 len)
{
    switch (len) {
    case 3:
        return m == 0x474554 /* GET */ || m == 0x505554 /* PUT */;
    case 4:
        return m == 0x504f5354 /* POST */ || m == 0x48454144 /* HEAD */;
    case 5:
        return m == 0x5041544348 /* PATCH */ || m == 0x5452414345 /* TRACE */;
    case 6:
        return m == 0x44454c455445 /* DELETE */;
    case 7:
        return m == 0x4f5054494f4e53 /* OPTIONS */;
    }
    return 0;
}

#define HTTP11 0x485454502f312e31ULL /* "HTTP/1.1" */
#define HTTP10 0x485454502f312e30ULL /* "HTTP/1.0" */

struct pp_inj_loop {
    struct pp_inj_run *run;
};

/* One byte of a header name (or the colon ending it). */
static __always_inline int name_char(struct pp_inj_sock *s, __u8 c)
{
    if (c == '\n') {
        s->mode = M_HDR_START; /* a line without a colon: tolerated, ignored */
        return 0;
    }
    if (c == ':') {
        __u8 m = 0;
        if ((s->cand & H_CL) && s->line_len == NAME_CL_LEN)
            m = H_CL;
        else if ((s->cand & H_TE) && s->line_len == NAME_TE_LEN)
            m = H_TE;
        else if ((s->cand & H_XRAY) && s->line_len == NAME_XRAY_LEN)
            m = H_XRAY;
        else if ((s->cand & H_HOST) && s->line_len == NAME_HOST_LEN &&
                 !(s->attr_flags & A_HOST_SEEN))
            m = H_HOST;
        s->matched = m;
        if (m == H_XRAY) {
            s->flags |= F_XRAY;
            xr_begin(s);
        }
        if (m == H_CL) {
            if (s->flags & F_HAS_CL)
                s->flags |= F_BAD; /* two Content-Lengths: do not guess */
            s->flags |= F_HAS_CL;
            s->cl = 0;
        }
        s->te_match = 0;
        if (m == H_HOST)
            s->attr_flags |= A_HOST_SEEN;
        s->mode = m ? M_HDR_VALUE : M_HDR_SKIP;
        return 0;
    }
    __u8 l = lower(c);
    __u32 k = s->line_len;
    keep_name(s, H_CL, k, NAME_CL_LEN, name_cl_at(k), l);
    keep_name(s, H_TE, k, NAME_TE_LEN, name_te_at(k), l);
    keep_name(s, H_XRAY, k, NAME_XRAY_LEN, name_xray_at(k), l);
    keep_name(s, H_HOST, k, NAME_HOST_LEN, name_host_at(k), l);
    if (s->line_len < 0xffff)
        s->line_len++;
    return 0;
}

/* The feed_* steps take one byte in one parser mode. Each returns 1 to stop the window here (the
 * byte is consumed), 0 to go on. */

/* Stops following the socket; counted under counter c. */
static __always_inline int framing_lost(struct pp_inj_sock *s, __u32 c)
{
    s->mode = M_DEAD;
    inj_count(c);
    return 1;
}

/* M_START: a request's first byte (an upper-case method letter), or the socket is not HTTP/1. */
static __always_inline int feed_start(struct pp_inj_sock *s, __u8 c)
{
    if (c < 'A' || c > 'Z')
        return framing_lost(s, s->wire_bytes == 0 ? PP_INJC_NOT_HTTP : PP_INJC_FRAMING_LOST);
    s->mode = M_METHOD;
    s->rolling = c;
    s->line_len = 1;
    s->head_len = 1;
    s->flags = 0;
    s->cl = 0;
    s->blank_cr = 0;
    s->head_reported = 0;
    s->attr_flags = 0;
    s->a_method_len = s->a_path_start = s->a_path_end = 0;
    s->a_host_start = s->a_host_end = s->a_host_colon = 0;
    s->a_host_colons = 0;
    s->xr_ok = 0;
    return 0;
}

/* M_METHOD: up to the space after the method, which must be one we know (or CONNECT). */
static __always_inline int feed_method(struct pp_inj_sock *s, __u8 c)
{
    s->head_len++;
    if (c == ' ') {
        s->method_ok = known_method(s->rolling, s->line_len);
        if (!s->method_ok && s->rolling != 0x434f4e4e454354 /* CONNECT */)
            return framing_lost(s, PP_INJC_NOT_HTTP);
        s->mode = M_REQLINE;
        s->a_method_len = (__u16)s->line_len;
        s->a_path_start = (__u16)(s->line_len + 1);
        s->line_len++;
        return 0;
    }
    if (c < 'A' || c > 'Z' || s->line_len >= 7)
        return framing_lost(s, PP_INJC_NOT_HTTP);
    s->rolling = (s->rolling << 8) | c;
    s->line_len++;
    return 0;
}

/* M_REQLINE: the rest of the request line, which must end in HTTP/1.1 or HTTP/1.0. */
static __always_inline int feed_reqline(struct pp_inj_run *run, struct pp_inj_sock *s, __u8 c,
                                        __u32 i)
{
    s->head_len++;
    if (!(s->attr_flags & A_PATH_DONE) && (c == '?' || c == ' ' || c == '\r' || c == '\n')) {
        s->a_path_end = (__u16)i;
        s->attr_flags |= A_PATH_DONE;
    }
    if (c == '\r')
        return 0;
    if (c == '\n') {
        /* HTTP/0.9, HTTP/2 preface, or not HTTP at all */
        if (s->rolling != HTTP11 && s->rolling != HTTP10)
            return framing_lost(s, PP_INJC_NOT_HTTP);
        s->reqline_end_app = run->msg_app_base + run->off + i + 1 - run->shift;
        s->mode = M_HDR_START;
        return 0;
    }
    s->rolling = (s->rolling << 8) | c;
    s->line_len++;
    return 0;
}

/* The LF of the head's blank line: the head ends; what follows is its body, or the next
 * request. */
static __always_inline int end_head(struct pp_inj_run *run, struct pp_inj_sock *s, __u32 i)
{
    /* blank_app is where the blank line begins. */
    if (!s->blank_cr)
        s->blank_app = run->msg_app_base + run->off + i - run->shift;
    s->blank_cr = 0;
    if (s->flags & F_BAD)
        return framing_lost(s, PP_INJC_FRAMING_LOST);
    if (!s->method_ok) {
        /* CONNECT: what follows is a tunnel, not requests. */
        s->mode = M_DEAD;
        return 1;
    }
    run->head_done = 1;
    if (s->flags & F_CHUNKED) {
        s->mode = M_CHUNK_SIZE;
        s->body_left = 0;
    } else if (s->cl > 0) {
        s->mode = M_BODY;
        s->body_left = s->cl;
    } else {
        s->mode = M_START;
    }
    return 1;
}

/* M_HDR_START: the first byte of a header line, or of the blank line ending the head. */
static __always_inline int feed_hdr_start(struct pp_inj_run *run, struct pp_inj_sock *s, __u8 c,
                                          __u32 i)
{
    s->head_len++;
    if (c == '\r') {
        if (!s->blank_cr) {
            s->blank_cr = 1;
            s->blank_app = run->msg_app_base + run->off + i - run->shift;
        }
        return 0;
    }
    if (c == '\n')
        return end_head(run, s, i);
    s->blank_cr = 0;
    s->mode = M_HDR_NAME;
    s->cand = H_CL | H_TE | H_XRAY | H_HOST;
    s->line_len = 0;
    return name_char(s, c);
}

/* A Host value byte: where the value (and its port's colon) lie, for the sampling rules. */
static __always_inline void host_value_char(struct pp_inj_sock *s, __u8 c, __u32 i)
{
    if (c == ' ' || c == '\t' || c == '\r')
        return;
    if (!(s->attr_flags & A_HOST_VALUE)) {
        s->a_host_start = (__u16)i;
        s->attr_flags |= A_HOST_VALUE;
    }
    s->a_host_end = (__u16)(i + 1);
    if (c == ':') {
        s->a_host_colon = (__u16)i;
        if (s->a_host_colons < 255)
            s->a_host_colons++;
    }
}

/* M_HDR_VALUE: the value of Content-Length, Transfer-Encoding, Host or X-Amzn-Trace-Id. */
static __always_inline int feed_hdr_value(struct pp_inj_run *run, struct pp_inj_sock *s, __u8 c,
                                          __u32 i)
{
    s->head_len++;
    if (c == '\n') {
        if (s->matched == H_TE && s->te_match == CHUNKED_LEN)
            s->flags |= F_CHUNKED;
        if (s->matched == H_XRAY)
            xr_commit(s);
        s->mode = M_HDR_START;
        return 0;
    }
    if (s->matched == H_XRAY) {
        xr_char(s, c, run->msg_app_base + run->off + i - run->shift);
    } else if (s->matched == H_CL) {
        if (c >= '0' && c <= '9') {
            if (s->cl > (1ULL << 50))
                s->flags |= F_BAD;
            s->cl = s->cl * 10 + (c - '0');
            s->flags |= F_VALUE_NUM;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            s->flags |= F_BAD;
        }
    } else if (s->matched == H_HOST) {
        host_value_char(s, c, i);
    } else if (s->te_match < CHUNKED_LEN) {
        __u8 l = lower(c);
        if (l == chunked_at(s->te_match))
            s->te_match++;
        else
            s->te_match = l == 'c' ? 1 : 0;
    } else if (c != ' ' && c != '\t' && c != '\r') {
        s->te_match = 0; /* "chunked" must be the last coding */
    }
    return 0;
}

/* M_BODY, M_CHUNK_DATA: small bodies inside the window are walked here; large ones are skipped
 * by the step. */
static __always_inline int feed_body(struct pp_inj_sock *s)
{
    if (s->body_left > 1) {
        s->body_left--;
        return 0;
    }
    s->body_left = 0;
    s->mode = s->mode == M_BODY ? M_START : M_CHUNK_DATA_END;
    return s->mode == M_START;
}

/* The LF ending a chunk-size line: the chunk's data, or the trailer after the last chunk. */
static __always_inline int chunk_line_end(struct pp_inj_run *run, struct pp_inj_sock *s, __u32 i)
{
    if (s->body_left == 0) {
        s->mode = M_TRAILER_START;
        return 0;
    }
    s->mode = M_CHUNK_DATA;
    /* Stop when the data runs past this window: the step skips it without reading. */
    if (s->body_left > run->win - i - 1)
        return 1;
    return 0;
}

/* M_CHUNK_SIZE: hex digits of a chunk's size, up to its extension or its line's end. */
static __always_inline int feed_chunk_size(struct pp_inj_run *run, struct pp_inj_sock *s, __u8 c,
                                           __u32 i)
{
    if (c >= '0' && c <= '9') {
        s->body_left = (s->body_left << 4) | (c - '0');
    } else if (lower(c) >= 'a' && lower(c) <= 'f') {
        s->body_left = (s->body_left << 4) | (lower(c) - 'a' + 10);
    } else if (c == ';' || c == ' ' || c == '\t') {
        s->mode = M_CHUNK_EXT;
        return 0;
    } else if (c == '\r') {
        return 0;
    } else if (c == '\n') {
        return chunk_line_end(run, s, i);
    } else {
        return framing_lost(s, PP_INJC_FRAMING_LOST);
    }
    if (s->body_left > (1ULL << 40))
        return framing_lost(s, PP_INJC_FRAMING_LOST);
    return 0;
}

/* M_CHUNK_DATA_END: the CRLF after a chunk's data. */
static __always_inline int feed_chunk_data_end(struct pp_inj_sock *s, __u8 c)
{
    if (c == '\r')
        return 0;
    if (c == '\n') {
        s->mode = M_CHUNK_SIZE;
        s->body_left = 0;
        return 0;
    }
    return framing_lost(s, PP_INJC_FRAMING_LOST);
}

/* M_TRAILER_START: a trailer line, or the blank line ending the chunked body. */
static __always_inline int feed_trailer_start(struct pp_inj_sock *s, __u8 c)
{
    if (c == '\r')
        return 0;
    if (c == '\n') {
        s->mode = M_START;
        return 1;
    }
    s->mode = M_TRAILER;
    return 0;
}

/* One byte, in whatever mode the socket's parser is. */
static __always_inline int feed(struct pp_inj_run *run, struct pp_inj_sock *s, __u8 c, __u32 i)
{
    switch (s->mode) {
    case M_START:
        return feed_start(s, c);
    case M_METHOD:
        return feed_method(s, c);
    case M_REQLINE:
        return feed_reqline(run, s, c, i);
    case M_HDR_START:
        return feed_hdr_start(run, s, c, i);
    case M_HDR_NAME:
        s->head_len++;
        return name_char(s, c);
    case M_HDR_VALUE:
        return feed_hdr_value(run, s, c, i);
    case M_HDR_SKIP:
        s->head_len++;
        if (c == '\n')
            s->mode = M_HDR_START;
        return 0;
    case M_BODY:
    case M_CHUNK_DATA:
        return feed_body(s);
    case M_CHUNK_SIZE:
        return feed_chunk_size(run, s, c, i);
    case M_CHUNK_EXT:
        return c == '\n' ? chunk_line_end(run, s, i) : 0;
    case M_CHUNK_DATA_END:
        return feed_chunk_data_end(s, c);
    case M_TRAILER_START:
        return feed_trailer_start(s, c);
    case M_TRAILER:
        if (c == '\n')
            s->mode = M_TRAILER_START;
        return 0;
    }
    return 1;
}

static long feed_cb(__u64 idx, void *ctx)
{
    struct pp_inj_loop *l = ctx;
    struct pp_inj_run *run = l->run;
    __u32 i = (__u32)idx;
    if (i >= run->win || i >= PP_INJ_WINDOW) {
        run->consumed = run->win;
        return 1;
    }
    __u64 bi = i;
    /* Bound the index where the verifier sees it (clang drops a mask it can prove redundant). */
    asm volatile("%[b] &= 0xfff" : [b] "+r"(bi));
    __u8 c = run->buf[bi];
    struct pp_inj_sock *s = &run->st;
    int stop = feed(run, s, c, i);
    if (s->head_len > PP_INJ_MAX_HEAD && s->mode >= M_METHOD && s->mode <= M_HDR_SKIP) {
        s->mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
        stop = 1;
    }
    /* Enter a body with more bytes than the window holds: let the step skip it. */
    if (!stop && (s->mode == M_BODY || s->mode == M_CHUNK_DATA) && s->body_left > run->win - i - 1)
        stop = 1;
    if (stop) {
        run->consumed = i + 1;
        return 1;
    }
    run->consumed = i + 1;
    return 0;
}

#endif /* PASSPORT_INJECT_FRAMING_BPF_H */
