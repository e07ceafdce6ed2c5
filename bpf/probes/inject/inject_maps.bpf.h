/* The header injection's maps and per-socket state (probes/inject.bpf.c): declared once, here.
 * Named in lib/maps.bpf.h, which holds the maps the injection shares with the syscall probes. */
#ifndef PASSPORT_INJECT_INJECT_MAPS_BPF_H
#define PASSPORT_INJECT_INJECT_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"
#include "sample.bpf.h"

/* Bytes of the message looked at per window (heads larger than this are parsed over several
 * windows of the same message). Power of two: used as a mask. */
#define PP_INJ_WINDOW 4096
/* Windows/body skips per message: enough for dozens of pipelined requests in one send. */
#define PP_INJ_MAX_STEPS 96
/* A head longer than this is not followed (framing lost, injection stops on the socket). */
#define PP_INJ_MAX_HEAD (64 * 1024)
/* After an insert, a message up to this size is made one buffer again (see insert_line). */
#define PP_INJ_LINEARIZE_MAX 4096

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u16); /* destination port, host order */
    __type(value, __u8);
} inject_deny_ports SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 256);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct pp_deny_key);
    __type(value, __u8);
} inject_deny_cidrs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 65536);
    __type(key, __u64); /* socket cookie */
    __type(value, __u64);
} inject_socks SEC(".maps");

/* Sockets adopted by the agent whose first message has not been seen yet (socket cookie ->
 * endpoints, netns, egress offset). Removed when that message creates the socket state; the
 * agent prunes entries of sockets that closed first. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct pp_inject_adopt);
} inject_adopt SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PP_INJC_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} inject_counters SEC(".maps");

/* Parser modes. */
enum {
    M_START = 0, /* at a request boundary */
    M_METHOD,    /* in the method */
    M_REQLINE,   /* rest of the request line */
    M_HDR_START, /* at the start of a header line */
    M_HDR_NAME,
    M_HDR_VALUE,
    M_HDR_SKIP, /* rest of a header line we do not care about */
    M_BODY,     /* Content-Length body: body_left bytes */
    M_CHUNK_SIZE,
    M_CHUNK_EXT,      /* chunk extension up to the end of the size line */
    M_CHUNK_DATA,     /* body_left bytes of chunk data */
    M_CHUNK_DATA_END, /* the CRLF after chunk data */
    M_TRAILER_START,
    M_TRAILER,
    M_DEAD, /* not followed any more: never touched again */
};

/* Header names of interest, as bits. */
#define H_CL   1
#define H_TE   2
#define H_XRAY 4
#define H_HOST 8

/* Per-socket state. */
struct pp_inj_sock {
    __u64 app_bytes; /* app bytes of all earlier messages */
    __u64 body_left;
    __u64 cl;              /* Content-Length being parsed */
    __u64 req_app_pos;     /* app offset of the current request's first byte */
    __u64 reqline_end_app; /* app offset just after the request line's LF */
    __u64 rolling;         /* last 8 bytes of the request line (CR dropped) */
    __u64 cookie;
    __u64 wire_bytes; /* bytes that left through this program (app + inserted) */
    struct pp_endpoint local;
    struct pp_endpoint remote;
    __u32 netns;
    __u32 line_len; /* bytes of the current line (CR dropped) */
    __u32 head_len;
    __u8 marked; /* set at connect: a selected process, destination allowed */
    __u8 mode;
    __u8 cand;          /* header name candidates (H_*) */
    __u8 matched;       /* the header whose value is being read */
    __u8 flags;         /* F_* of the current head */
    __u8 te_match;      /* progress matching "chunked" in Transfer-Encoding */
    __u8 method_ok;     /* the method is one we inject into */
    __u8 seq_known;     /* seq_base is set */
    __u8 last_inserted; /* the previous message got a header line */
    __u8 blank_cr;      /* the current header line began with CR (its start is in blank_app) */
    __u8 leave;         /* enum pp_inject_leave: the socket must leave the sockhash */
    __u8 attr_flags;    /* A_* */
    __u32 seq_base;     /* tcp write_seq when wire_bytes was 0 */
    __u8 adopted;       /* joined from userspace: no header-option callback, the agent removes it */
    __u8 leave_sent;    /* adopted: the agent was asked to remove it */
    __u8 head_reported; /* the current head was handled before its final LF arrived */
    __u8 _pad0;
    __u64 blank_app; /* app offset of the first byte of the current header line */
    /* Where the current request's method, path and Host value lie, as offsets from its first
     * byte (valid while the head fits the first window), for the sampling rules. */
    __u16 a_method_len;
    __u16 a_path_start;
    __u16 a_path_end;
    __u16 a_host_start;
    __u16 a_host_end;
    __u16 a_host_colon;
    __u8 a_host_colons;
    __u8 _pad[3];
    /* The current head's X-Amzn-Trace-Id (inject/xray_value.bpf.h): the last Root and Parent
     * read whole and valid (duplicated keys: the last one counts), and where Parent's digits are.
     */
    __u64 xr_parent;
    __u64 xr_parent_app; /* app offset of Parent's first hex digit */
    __u64 xr_acc;        /* the value being read: Parent digits so far */
    __u64 xr_acc_app;    /* app offset of the value's first byte */
    __u64 xr_keyroll;    /* the key being read, lowercased, last 8 bytes */
    __u32 xr_epoch;
    __u32 xr_acc_epoch;
    __u8 xr_rand[12];
    __u8 xr_acc_rand[12];
    __u16 xr_vi;   /* bytes of the value so far (blanks around it excluded) */
    __u8 xr_state; /* XS_* */
    __u8 xr_key;   /* XK_*: the key whose value is being read */
    __u8 xr_ok;    /* XR_ROOT | XR_PARENT */
    __u8 xr_bad;   /* the value being read is not valid */
    __u8 xr_keylen;
    __u8 _pad1;
};

#define F_HAS_CL    1
#define F_CHUNKED   2
#define F_XRAY      4
#define F_BAD       8  /* head cannot be framed (bad Content-Length) */
#define F_VALUE_NUM 16 /* Content-Length digits started */

#define A_PATH_DONE  1 /* the path's end is known */
#define A_HOST_SEEN  2 /* a Host header was read (the first one counts) */
#define A_HOST_VALUE 4 /* a non-blank Host value byte was seen */

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct pp_inj_sock);
} inject_sk SEC(".maps");

/* Per-CPU scratch of one sk_msg run. */
struct pp_inj_run {
    struct pp_inj_sock st; /* working copy of the socket state */
    struct pp_inject_event ev;
    __u64 msg_app_base; /* app offset of this message's first byte */
    __u32 off;          /* current offset in the message (injected bytes included) */
    __u32 size;         /* message size (grows with each insert) */
    __u32 shift;        /* bytes inserted so far in this message */
    __u32 win;          /* bytes in buf */
    __u32 consumed;     /* bytes of buf the parser consumed */
    __u8 head_done;     /* the parser ended a head */
    __u8 stop;          /* stop: dead socket */
    __u8 req_win0;      /* the current window begins at the current request's first byte */
    __u8 _pad;
    struct pp_sample_text attrs; /* a minted call's method, path and Host in buf (sampling) */
    __u16 rule;
    __u8 _pad3[6];
    __u64 gen; /* bumped by every run on this CPU (the run keeps its value on its stack) */
    __u8 line[PP_INJECT_LINE_LEN + 3];
    __u8 buf[2 * PP_INJ_WINDOW];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_inj_run);
} inject_scratch SEC(".maps");

static __always_inline void inj_count(__u32 c)
{
    pp_count(&inject_counters, c);
}

static __always_inline void count_leave(__u8 why)
{
    inj_count(why == PP_LEAVE_BLOCKING ? PP_INJC_LEFT_BLOCKING
              : why == PP_LEAVE_SNDBUF ? PP_INJC_LEFT_SNDBUF
                                       : PP_INJC_LEFT_NOT_HTTP);
}

#endif /* PASSPORT_INJECT_INJECT_MAPS_BPF_H */
