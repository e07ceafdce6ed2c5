/* The value of an X-Amzn-Trace-Id header in an outgoing request head, one byte at a time (the
 * framing state machine calls it for that header's value bytes): `key=value` parts separated by
 * ';', keys in any case, blanks around keys and values ignored. Only Root (1-<8 hex>-<24 hex>) and
 * Parent (16 hex) are kept, in binary, when valid; a key given twice counts with its last value,
 * as the X-Ray SDKs read it (a malformed later Parent is ignored, as the context parser does).
 * inject/insert.bpf.h compares them with the requests the process
 * received (map forwardable) and rewrites Parent's digits in place. */
#ifndef PASSPORT_INJECT_XRAY_VALUE_BPF_H
#define PASSPORT_INJECT_XRAY_VALUE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "inject_maps.bpf.h"

enum {
    XS_KEY = 0,   /* before or in a key */
    XS_KEY_END,   /* blanks after a key, before '=' */
    XS_VALUE,     /* in a value */
    XS_VALUE_END, /* blanks after a value, before ';' */
};
enum {
    XK_OTHER = 0,
    XK_ROOT,
    XK_PARENT,
};
#define XR_ROOT   1
#define XR_PARENT 2

#define XR_KEY_ROOT   0x726f6f74ULL     /* "root" */
#define XR_KEY_PARENT 0x706172656e74ULL /* "parent" */

/* 0-15, or 16 for a byte that is not a hex digit. */
static __always_inline __u8 xr_hex(__u8 c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return 16;
}

/* The header's value begins (after the colon). */
static __always_inline void xr_begin(struct pp_inj_sock *s)
{
    s->xr_state = XS_KEY;
    s->xr_keylen = 0;
    s->xr_keyroll = 0;
}

/* A value ended: what it set, valid or not (a later duplicate replaces an earlier one). */
static __always_inline void xr_commit(struct pp_inj_sock *s)
{
    if (s->xr_state != XS_VALUE && s->xr_state != XS_VALUE_END)
        return;
    if (s->xr_key == XK_ROOT) {
        s->xr_ok &= ~XR_ROOT;
        if (!s->xr_bad && s->xr_vi == 35) {
            s->xr_epoch = s->xr_acc_epoch;
            __builtin_memcpy(s->xr_rand, s->xr_acc_rand, sizeof(s->xr_rand));
            s->xr_ok |= XR_ROOT;
        }
    } else if (s->xr_key == XK_PARENT) {
        /* As the kernel's context parser reads a repeated key (lib/ctx_parse.bpf.h): a later
         * malformed Root voids an earlier one, a malformed Parent is ignored. */
        if (!s->xr_bad && s->xr_vi == 16) {
            s->xr_parent = s->xr_acc;
            s->xr_parent_app = s->xr_acc_app;
            s->xr_ok |= XR_PARENT;
        }
    }
}

/* One byte of a Root value: "1-" 8 hex "-" 24 hex. */
static __always_inline void xr_root_char(struct pp_inj_sock *s, __u8 c)
{
    __u32 vi = s->xr_vi;
    __u8 d = xr_hex(c);
    if (vi == 0) {
        s->xr_bad |= c != '1';
    } else if (vi == 1 || vi == 10) {
        s->xr_bad |= c != '-';
    } else if (vi < 10) {
        s->xr_bad |= d > 15;
        s->xr_acc_epoch = (s->xr_acc_epoch << 4) | (d & 15);
    } else if (vi < 35) {
        __u32 k = (vi - 11) >> 1;
        s->xr_bad |= d > 15;
        if (k < sizeof(s->xr_acc_rand))
            s->xr_acc_rand[k] = ((vi - 11) & 1) ? s->xr_acc_rand[k] | (d & 15) : (d & 15) << 4;
    } else {
        s->xr_bad = 1;
    }
}

/* One byte of a Parent value: 16 hex. */
static __always_inline void xr_parent_char(struct pp_inj_sock *s, __u8 c)
{
    __u8 d = xr_hex(c);
    s->xr_bad |= d > 15 || s->xr_vi >= 16;
    s->xr_acc = (s->xr_acc << 4) | (d & 15);
}

/* The '=' after a key: which key it was, and a fresh value. */
static __always_inline void xr_key_done(struct pp_inj_sock *s)
{
    s->xr_key = XK_OTHER;
    if (s->xr_keylen == 4 && s->xr_keyroll == XR_KEY_ROOT)
        s->xr_key = XK_ROOT;
    else if (s->xr_keylen == 6 && s->xr_keyroll == XR_KEY_PARENT)
        s->xr_key = XK_PARENT;
    s->xr_state = XS_VALUE;
    s->xr_vi = 0;
    s->xr_bad = 0;
    s->xr_acc = 0;
    s->xr_acc_epoch = 0;
}

/* One byte of a value (not blank, not ';'); app is its offset in the app's stream. */
static __always_inline void xr_value_char(struct pp_inj_sock *s, __u8 c, __u64 app)
{
    if (s->xr_state == XS_VALUE_END)
        s->xr_bad = 1; /* blanks inside a value */
    s->xr_state = XS_VALUE;
    if (s->xr_vi == 0)
        s->xr_acc_app = app;
    if (s->xr_key == XK_ROOT)
        xr_root_char(s, c);
    else if (s->xr_key == XK_PARENT)
        xr_parent_char(s, c);
    if (s->xr_vi < 0xffff)
        s->xr_vi++;
}

/* One byte of the header's value before its line's LF (the CR included). */
static __noinline int xr_char(struct pp_inj_sock *s, __u8 c, __u64 app)
{
    if (!s)
        return 0;
    int blank = c == ' ' || c == '\t' || c == '\r';
    if (c == ';') {
        xr_commit(s);
        xr_begin(s);
    } else if (s->xr_state == XS_VALUE || s->xr_state == XS_VALUE_END) {
        if (blank)
            s->xr_state = s->xr_vi ? XS_VALUE_END : XS_VALUE;
        else
            xr_value_char(s, c, app);
    } else if (c == '=') {
        xr_key_done(s);
    } else if (blank) {
        if (s->xr_keylen)
            s->xr_state = XS_KEY_END;
    } else if (s->xr_state == XS_KEY_END) {
        s->xr_keylen = 0xff; /* two words before '=': no key we know */
    } else {
        s->xr_keyroll = (s->xr_keyroll << 8) | (c >= 'A' && c <= 'Z' ? c | 0x20 : c);
        if (s->xr_keylen < 0xff)
            s->xr_keylen++;
    }
    return 0;
}

#endif /* PASSPORT_INJECT_XRAY_VALUE_BPF_H */
