/* X-Amzn-Trace-Id injection into outgoing plaintext HTTP/1.x requests.
 *
 * sock_ops (cgroup v2 root):
 *   TCP_CONNECT_CB (runs in the connecting task): a selected process connecting to a destination
 *     that is not denied gets its socket marked in sk_storage (inject_sk);
 *     Kernel threads are never marked.
 *   ACTIVE_ESTABLISHED_CB: a marked socket joins the sockhash (inject_socks). EBUSY means another
 *     sk_msg user owns it: counted, left alone. The socket also gets the header-option callback
 *     (HDR_OPT_LEN_CB), which the kernel runs in every sendmsg and for every segment it builds:
 *     there a socket that must leave the sockhash is removed (see "Leaving" below).
 * Leaving: a socket in a sockhash gets the kernel's tcp_bpf receive path, and its blocking
 *   recv() returns EAGAIN when woken without data (tcp_bpf_recvmsg: tcp_msg_wait_data() waits
 *   once; a wake-up with no data, e.g. the send buffer's space coming back as ACKs arrive, makes
 *   it return -EAGAIN instead of waiting again as tcp_recvmsg does). So a socket leaves as soon as
 *   it is not HTTP/1, its file is blocking (checked on every send), or its send buffer filled
 *   (SOCK_NOSPACE: write-space wake-ups follow). The header-option callback runs inside the same
 *   sendmsg that ran sk_msg, so a blocking socket is out before the send returns and its reads
 *   take the plain TCP path.
 * Connections opened earlier (before the agent started, or before their process was selected)
 *   are adopted by the agent from userspace: it puts the socket's cookie in inject_adopt and the
 *   socket in the sockhash; the socket's first message then creates its state here, at a request
 *   boundary (agent/injection.cpp).
 * sk_msg (BPF_SK_MSG_VERDICT on inject_socks), per piece of a sendmsg:
 *   follows HTTP/1 request framing on the socket (head, Content-Length or chunked body) with a
 *   byte state machine kept in sk_storage, so body bytes are never taken for a request; at the
 *   end of each head, inserts one header line after the request line unless the head already
 *   has X-Amzn-Trace-Id. Nothing is ever held back: a head written over several sends is parsed
 *   as it passes, and its line goes before the head's blank line, in the send that ends the head
 *   (when that send holds the whole blank line). A call outside any served request gets a trace
 * minted here and the local sampling rules' decision. Anything unexpected (not HTTP/1, helper
 *   failure, framing that cannot be followed) leaves the bytes as the app wrote them and stops
 *   injection on that socket. Every request is reported (PP_EV_INJECT).
 *
 * Programs are loaded only when injection is on (the agent turns autoload off otherwise). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "maps.bpf.h"
#include "sample.bpf.h"
#include "trace_ctx.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PP_AF_INET  2
#define PP_AF_INET6 10

/* Bytes of the message looked at per window (heads larger than this are parsed over several
 * windows of the same message). Power of two: used as a mask. */
#define PP_INJ_WINDOW 4096
/* Windows/body skips per message: enough for dozens of pipelined requests in one send. */
#define PP_INJ_MAX_STEPS 96
/* A head longer than this is not followed (framing lost, injection stops on the socket). */
#define PP_INJ_MAX_HEAD (64 * 1024)
/* After an insert, a message up to this size is made one buffer again (see insert_line). */
#define PP_INJ_LINEARIZE_MAX 4096

/* ---- maps ---- */

struct pp_deny_key {
    __u32 prefixlen; /* over addr; IPv4 as ::ffff:a.b.c.d (prefix + 96) */
    __u8 addr[16];
};

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
    __u8 _pad3[2];
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
    __u64 *v = bpf_map_lookup_elem(&inject_counters, &c);
    if (v)
        *v += 1;
}

/* ---- sock_ops ---- */

/* The struct socket of a TCP socket (NULL once the socket has no file). */
static __always_inline struct socket *socket_of(struct tcp_sock *tp)
{
    return BPF_CORE_READ(tp, inet_conn.icsk_inet.sk.sk_socket);
}

/* The send buffer filled at some point (SOCK_NOSPACE): write-space wake-ups follow. */
static __always_inline int send_buffer_filled(struct socket *so)
{
    return (BPF_CORE_READ(so, flags) & (1UL << SOCK_NOSPACE)) != 0;
}

static __always_inline void count_leave(__u8 why)
{
    inj_count(why == PP_LEAVE_BLOCKING ? PP_INJC_LEFT_BLOCKING
              : why == PP_LEAVE_SNDBUF ? PP_INJC_LEFT_SNDBUF
                                       : PP_INJC_LEFT_NOT_HTTP);
}

static __always_inline int port_denied(__u16 port)
{
    return bpf_map_lookup_elem(&inject_deny_ports, &port) != NULL;
}

static __always_inline int addr_denied(struct bpf_sock_ops *skops)
{
    struct pp_deny_key k = {.prefixlen = 128};
    if (skops->family == PP_AF_INET) {
        __u32 a = skops->remote_ip4;
        k.addr[10] = 0xff;
        k.addr[11] = 0xff;
        __builtin_memcpy(&k.addr[12], &a, 4);
    } else if (skops->family == PP_AF_INET6) {
        __u32 a0 = skops->remote_ip6[0], a1 = skops->remote_ip6[1], a2 = skops->remote_ip6[2],
              a3 = skops->remote_ip6[3];
        __builtin_memcpy(&k.addr[0], &a0, 4);
        __builtin_memcpy(&k.addr[4], &a1, 4);
        __builtin_memcpy(&k.addr[8], &a2, 4);
        __builtin_memcpy(&k.addr[12], &a3, 4);
    } else {
        return 1;
    }
    return bpf_map_lookup_elem(&inject_deny_cidrs, &k) != NULL;
}

static __always_inline void fill_endpoints(struct bpf_sock_ops *skops, struct pp_inj_sock *s)
{
    __u16 family = (__u16)skops->family;
    s->local.family = s->remote.family = family;
    s->local.port = (__u16)skops->local_port;
    s->remote.port = (__u16)bpf_ntohl(skops->remote_port);
    if (family == PP_AF_INET) {
        __u32 l = skops->local_ip4, r = skops->remote_ip4;
        __builtin_memcpy(&s->local.addr[0], &l, 4);
        __builtin_memcpy(&s->remote.addr[0], &r, 4);
    } else {
        __u32 l0 = skops->local_ip6[0], l1 = skops->local_ip6[1], l2 = skops->local_ip6[2],
              l3 = skops->local_ip6[3];
        __u32 r0 = skops->remote_ip6[0], r1 = skops->remote_ip6[1], r2 = skops->remote_ip6[2],
              r3 = skops->remote_ip6[3];
        __builtin_memcpy(&s->local.addr[0], &l0, 4);
        __builtin_memcpy(&s->local.addr[4], &l1, 4);
        __builtin_memcpy(&s->local.addr[8], &l2, 4);
        __builtin_memcpy(&s->local.addr[12], &l3, 4);
        __builtin_memcpy(&s->remote.addr[0], &r0, 4);
        __builtin_memcpy(&s->remote.addr[4], &r1, 4);
        __builtin_memcpy(&s->remote.addr[8], &r2, 4);
        __builtin_memcpy(&s->remote.addr[12], &r3, 4);
    }
}

#define PP_PF_KTHREAD 0x00200000

/* TCP_CONNECT_CB, in connect() of the connecting task (the process is known here only): a
 * selected user process connecting to a destination that is not denied gets its socket marked. */
static __always_inline void on_connect(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!is_traced(tgid))
        return;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (BPF_CORE_READ(task, flags) & PP_PF_KTHREAD) {
        inj_count(PP_INJC_KTHREAD);
        return;
    }
    if (port_denied((__u16)bpf_ntohl(skops->remote_port)) || addr_denied(skops)) {
        inj_count(PP_INJC_DENIED);
        return;
    }
    struct pp_inj_sock *s = bpf_sk_storage_get(&inject_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!s) {
        inj_count(PP_INJC_NO_STORAGE);
        return;
    }
    s->marked = 1;
    s->mode = M_START;
    s->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
    inj_count(PP_INJC_MARKED);
}

/* ACTIVE_ESTABLISHED_CB (may run in softirq context, so only sockets marked at connect): the
 * socket joins the sockhash and gets the header-option callback, where it can leave again. */
static __always_inline void on_established(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
    struct pp_inj_sock *s = bpf_sk_storage_get(&inject_sk, sk, 0, 0);
    if (!s || !s->marked)
        return;
    fill_endpoints(skops, s);
    __u64 cookie = bpf_get_socket_cookie(skops);
    s->cookie = cookie;
    long err = bpf_sock_hash_update(skops, &inject_socks, &cookie, BPF_NOEXIST);
    if (err == 0) {
        bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
                                             BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
        inj_count(PP_INJC_ADDED);
    } else if (err == -16 /* EBUSY: another sk_msg/sockmap user owns the socket */) {
        s->marked = 0;
        inj_count(PP_INJC_EBUSY);
    } else {
        s->marked = 0;
        inj_count(PP_INJC_ADD_FAILED);
    }
}

/* HDR_OPT_LEN_CB: runs in every sendmsg (after sk_msg ran on its data) and for every segment the
 * socket builds. A socket the sk_msg program gave a reason to leave, or whose send buffer
 * filled, leaves the sockhash here (the kernel restores the plain TCP operations once the
 * current send is done). No option space is reserved. */
static __always_inline void on_header_options(struct bpf_sock_ops *skops, struct bpf_sock *sk)
{
    struct pp_inj_sock *s = bpf_sk_storage_get(&inject_sk, sk, 0, 0);
    if (!s || !s->marked)
        return;
    __u8 why = s->leave;
    if (!why) {
        struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
        if (!tp)
            return;
        struct socket *so = socket_of(tp);
        if (!so || !send_buffer_filled(so))
            return;
        why = PP_LEAVE_SNDBUF;
    }
    __u64 cookie = s->cookie;
    bpf_map_delete_elem(&inject_socks, &cookie);
    bpf_sock_ops_cb_flags_set(skops,
                              skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
    s->leave = why;
    s->marked = 0;
    count_leave(why);
}

SEC("sockops")
int inject_sockops(struct bpf_sock_ops *skops)
{
    __u32 op = skops->op;
    if (op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
        op != BPF_SOCK_OPS_HDR_OPT_LEN_CB)
        return 1;
    if (skops->family != PP_AF_INET && skops->family != PP_AF_INET6)
        return 1;
    struct bpf_sock *sk = skops->sk;
    if (!sk)
        return 1;
    if (op == BPF_SOCK_OPS_TCP_CONNECT_CB)
        on_connect(skops, sk);
    else if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
        on_established(skops, sk);
    else
        on_header_options(skops, sk);
    return 1;
}

/* ---- the HTTP/1 framing state machine ---- */

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
        if (m == H_XRAY)
            s->flags |= F_XRAY;
        if (m == H_CL) {
            if (s->flags & F_HAS_CL)
                s->flags |= F_BAD; /* two Content-Lengths: do not guess */
            s->flags |= F_HAS_CL;
            s->cl = 0;
        }
        s->te_match = 0;
        if (m == H_HOST)
            s->attr_flags |= A_HOST_SEEN;
        s->mode = m == H_CL || m == H_TE || m == H_HOST ? M_HDR_VALUE : M_HDR_SKIP;
        return 0;
    }
    __u8 l = lower(c);
    __u32 k = s->line_len;
    if (k < NAME_CL_LEN) {
        if (l != name_cl_at(k))
            s->cand &= ~H_CL;
    } else {
        s->cand &= ~H_CL;
    }
    if (k < NAME_TE_LEN) {
        if (l != name_te_at(k))
            s->cand &= ~H_TE;
    } else {
        s->cand &= ~H_TE;
    }
    if (k < NAME_XRAY_LEN) {
        if (l != name_xray_at(k))
            s->cand &= ~H_XRAY;
    } else {
        s->cand &= ~H_XRAY;
    }
    if (k < NAME_HOST_LEN) {
        if (l != name_host_at(k))
            s->cand &= ~H_HOST;
    } else {
        s->cand &= ~H_HOST;
    }
    if (s->line_len < 0xffff)
        s->line_len++;
    return 0;
}

/* One byte. Returns 1 to stop the window here (the byte is consumed), 0 to go on. */
static __always_inline int feed(struct pp_inj_run *run, struct pp_inj_sock *s, __u8 c, __u32 i)
{
    switch (s->mode) {
    case M_START:
        if (c < 'A' || c > 'Z') {
            s->mode = M_DEAD;
            inj_count(s->wire_bytes == 0 ? PP_INJC_NOT_HTTP : PP_INJC_FRAMING_LOST);
            return 1;
        }
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
        return 0;
    case M_METHOD:
        s->head_len++;
        if (c == ' ') {
            s->method_ok = known_method(s->rolling, s->line_len);
            if (!s->method_ok && s->rolling != 0x434f4e4e454354 /* CONNECT */) {
                s->mode = M_DEAD;
                inj_count(PP_INJC_NOT_HTTP);
                return 1;
            }
            s->mode = M_REQLINE;
            s->a_method_len = (__u16)s->line_len;
            s->a_path_start = (__u16)(s->line_len + 1);
            s->line_len++;
            return 0;
        }
        if (c < 'A' || c > 'Z' || s->line_len >= 7) {
            s->mode = M_DEAD;
            inj_count(PP_INJC_NOT_HTTP);
            return 1;
        }
        s->rolling = (s->rolling << 8) | c;
        s->line_len++;
        return 0;
    case M_REQLINE:
        s->head_len++;
        if (!(s->attr_flags & A_PATH_DONE) && (c == '?' || c == ' ' || c == '\r' || c == '\n')) {
            s->a_path_end = (__u16)i;
            s->attr_flags |= A_PATH_DONE;
        }
        if (c == '\r')
            return 0;
        if (c == '\n') {
            if (s->rolling != HTTP11 && s->rolling != HTTP10) {
                s->mode = M_DEAD; /* HTTP/0.9, HTTP/2 preface, or not HTTP at all */
                inj_count(PP_INJC_NOT_HTTP);
                return 1;
            }
            s->reqline_end_app = run->msg_app_base + run->off + i + 1 - run->shift;
            s->mode = M_HDR_START;
            return 0;
        }
        s->rolling = (s->rolling << 8) | c;
        s->line_len++;
        return 0;
    case M_HDR_START:
        s->head_len++;
        if (c == '\r') {
            if (!s->blank_cr) {
                s->blank_cr = 1;
                s->blank_app = run->msg_app_base + run->off + i - run->shift;
            }
            return 0;
        }
        if (c == '\n') {
            /* End of the head: blank_app is where its blank line begins. */
            if (!s->blank_cr)
                s->blank_app = run->msg_app_base + run->off + i - run->shift;
            s->blank_cr = 0;
            if (s->flags & F_BAD) {
                s->mode = M_DEAD;
                inj_count(PP_INJC_FRAMING_LOST);
                return 1;
            }
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
        s->blank_cr = 0;
        s->mode = M_HDR_NAME;
        s->cand = H_CL | H_TE | H_XRAY | H_HOST;
        s->line_len = 0;
        return name_char(s, c);
    case M_HDR_NAME:
        s->head_len++;
        return name_char(s, c);
    case M_HDR_VALUE:
        s->head_len++;
        if (c == '\n') {
            if (s->matched == H_TE && s->te_match == CHUNKED_LEN)
                s->flags |= F_CHUNKED;
            s->mode = M_HDR_START;
            return 0;
        }
        if (s->matched == H_CL) {
            if (c >= '0' && c <= '9') {
                if (s->cl > (1ULL << 50))
                    s->flags |= F_BAD;
                s->cl = s->cl * 10 + (c - '0');
                s->flags |= F_VALUE_NUM;
            } else if (c != ' ' && c != '\t' && c != '\r') {
                s->flags |= F_BAD;
            }
        } else if (s->matched == H_HOST) {
            if (c != ' ' && c != '\t' && c != '\r') {
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
    case M_HDR_SKIP:
        s->head_len++;
        if (c == '\n')
            s->mode = M_HDR_START;
        return 0;
    case M_BODY:
    case M_CHUNK_DATA:
        /* Small bodies inside the window are walked here; large ones are skipped by the step. */
        if (s->body_left > 1)
            s->body_left--;
        else {
            s->body_left = 0;
            s->mode = s->mode == M_BODY ? M_START : M_CHUNK_DATA_END;
            return s->mode == M_START;
        }
        return 0;
    case M_CHUNK_SIZE:
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
            goto chunk_line_end;
        } else {
            s->mode = M_DEAD;
            inj_count(PP_INJC_FRAMING_LOST);
            return 1;
        }
        if (s->body_left > (1ULL << 40)) {
            s->mode = M_DEAD;
            inj_count(PP_INJC_FRAMING_LOST);
            return 1;
        }
        return 0;
    case M_CHUNK_EXT:
        if (c != '\n')
            return 0;
    chunk_line_end:
        if (s->body_left == 0) {
            s->mode = M_TRAILER_START;
        } else {
            s->mode = M_CHUNK_DATA;
            /* Stop when the data runs past this window: the step skips it without reading. */
            if (s->body_left > run->win - i - 1)
                return 1;
        }
        return 0;
    case M_CHUNK_DATA_END:
        if (c == '\r')
            return 0;
        if (c == '\n') {
            s->mode = M_CHUNK_SIZE;
            s->body_left = 0;
            return 0;
        }
        s->mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
        return 1;
    case M_TRAILER_START:
        if (c == '\r')
            return 0;
        if (c == '\n') {
            s->mode = M_START;
            return 1;
        }
        s->mode = M_TRAILER;
        return 0;
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
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pp_trace_ctx *tctx = bpf_map_lookup_elem(&thread_ctx, &pid_tgid);
    if (tctx) {
        ev->ctx = *tctx;
        ev->ctx_from_thread = 1;
    } else {
        /* A call outside any served request: a trace of its own, sampled here by the local
         * rules on the call's method, path and Host (its own segment follows this decision,
         * and so does the callee through Sampled=). Undecided when the head did not fit the
         * first window or a rule needs userspace: Sampled=?. */
        pp_mint_trace(&ev->ctx);
        ev->ctx.sampled = PP_SAMPLED_UNKNOWN;
        if (run->req_win0 && s->head_len <= PP_INJ_WINDOW) {
            /* In the scratch, not on the stack: the call chain's stack is near its limit. */
            /* Offsets not found are 0, which the helper leaves out. */
            pp_sample_text_from(&run->attrs, s->a_method_len, s->a_path_start, s->a_path_end,
                                s->a_host_start, s->a_host_end, s->a_host_colon, s->a_host_colons);
            run->rule = PP_RULE_NONE;
            ev->ctx.sampled = pp_sample_request(pid_tgid >> 32, run->buf, &run->attrs, &run->rule);
            ev->rule = run->rule;
        }
    }
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

/* One step over the message: skip body bytes, or parse one window. 1 when done. */
__noinline int step(struct sk_msg_md *msg, struct pp_inj_run *run, __u64 my_gen)
{
    if (!msg || !run)
        return 1;
    struct pp_inj_sock *s = &run->st;
    if (run->off >= run->size || s->mode == M_DEAD)
        return 1;
    __u32 left = run->size - run->off;
    if (s->mode == M_BODY || s->mode == M_CHUNK_DATA) {
        __u64 n = s->body_left < left ? s->body_left : left;
        run->off += (__u32)n;
        s->body_left -= n;
        if (s->body_left == 0)
            s->mode = s->mode == M_BODY ? M_START : M_CHUNK_DATA_END;
        return 0;
    }
    if (s->mode == M_START) {
        s->req_app_pos = run->msg_app_base + run->off - run->shift;
        run->req_win0 = 1;
    } else {
        run->req_win0 = 0; /* a head (or body) that began in an earlier window */
    }
    __u32 w = left < PP_INJ_WINDOW ? left : PP_INJ_WINDOW;
    if (bpf_msg_pull_data(msg, run->off, run->off + w, 0) != 0) {
        s->mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
        return 1;
    }
    __u64 data = (__u64)(long)msg->data, end = (__u64)(long)msg->data_end;
    if (end < data + w) {
        s->mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
        return 1;
    }
    __u64 w64 = w;
    /* Bound the size where the verifier sees it (clang drops a mask it can prove redundant). */
    asm volatile("%[w] &= 0x1fff" : [w] "+r"(w64));
    if (w64 > PP_INJ_WINDOW || bpf_probe_read_kernel(run->buf, w64, (void *)data) != 0) {
        s->mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
        return 1;
    }
    run->win = w;
    run->consumed = 0;
    run->head_done = 0;
    struct pp_inj_loop l = {.run = run};
    bpf_loop(w, feed_cb, &l, 0);
    __u32 used = run->consumed;
    if (used == 0 || used > w)
        used = w;
    run->off += used;
    if (run->head_done)
        on_head(msg, run, my_gen);
    return 0;
}

/* The first message of a socket the agent adopted: its state starts here, at a request boundary
 * (a socket caught in the middle of a request is recognised on these first bytes and left
 * alone, see docs/injection.md). NULL when the socket was not adopted. */
static __always_inline struct pp_inj_sock *adopt(struct bpf_sock *sk)
{
    /* bpf_get_socket_cookie is not offered to sk_msg: read the cookie the agent's SO_COOKIE
     * (and the sockhash insert) already gave the socket. */
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp)
        return NULL;
    __u64 cookie = (__u64)tp->inet_conn.icsk_inet.sk.__sk_common.skc_cookie.counter;
    if (!cookie)
        return NULL;
    struct pp_inject_adopt *a = bpf_map_lookup_elem(&inject_adopt, &cookie);
    if (!a)
        return NULL;
    struct pp_inj_sock *s = bpf_sk_storage_get(&inject_sk, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!s) {
        inj_count(PP_INJC_NO_STORAGE);
        bpf_map_delete_elem(&inject_adopt, &cookie);
        return NULL;
    }
    /* Fresh storage is zeroed: no bytes seen through this program, write_seq taken below. */
    s->marked = 1;
    s->mode = M_START;
    s->local = a->local;
    s->remote = a->remote;
    s->netns = a->netns;
    s->app_bytes = a->app_pos; /* offsets the syscall probes use for this connection */
    s->cookie = cookie;
    s->adopted = 1;
    bpf_map_delete_elem(&inject_adopt, &cookie);
    return s;
}

/* Why the socket must leave the sockhash now (enum pp_inject_leave), or 0. Its file is read on
 * every send: a program may make a socket blocking after connect. O_NONBLOCK is 04000 on x86-64
 * and arm64. */
#define PP_O_NONBLOCK 04000
static __always_inline __u8 leave_reason(struct tcp_sock *tp)
{
    struct socket *so = socket_of(tp);
    if (!so)
        return 0;
    if (!(BPF_CORE_READ(so, file, f_flags) & PP_O_NONBLOCK))
        return PP_LEAVE_BLOCKING;
    if (send_buffer_filled(so))
        return PP_LEAVE_SNDBUF;
    return 0;
}

/* An adopted socket has no header-option callback: the agent removes it from the sockhash. */
static __always_inline void ask_agent_to_remove(struct pp_inj_sock *s)
{
    __u32 zero = 0;
    struct pp_inj_run *run = bpf_map_lookup_elem(&inject_scratch, &zero);
    if (!run)
        return;
    run->st = *s;
    __builtin_memset(&run->ev.ctx, 0, sizeof(run->ev.ctx));
    run->ev.subsegment_id = 0;
    run->ev.ctx_from_thread = 0;
    run->ev.rule = s->leave;
    report(run, PP_INJ_LEAVE, s->app_bytes);
    s->leave_sent = 1;
    count_leave(s->leave);
}

/* Write_seq against the bytes this program passed: the kernel may send fewer bytes of a message
 * than this program saw (a nonblocking send that ran out of memory frees the rest, the app sends
 * it again) and then pass the next message without running this program. Bytes never seen can
 * be skipped only inside a body; otherwise the framing is lost. 0 when the socket can go on. */
static __always_inline int resync(struct pp_inj_sock *s, struct tcp_sock *tp)
{
    __u32 wseq = tp->write_seq;
    if (!s->seq_known) {
        s->seq_base = wseq - (__u32)s->wire_bytes;
        s->seq_known = 1;
        return 0;
    }
    __s32 delta = (__s32)(wseq - s->seq_base - (__u32)s->wire_bytes);
    if (delta == 0)
        return 0;
    if (delta > 0 && !s->last_inserted && (s->mode == M_BODY || s->mode == M_CHUNK_DATA) &&
        s->body_left >= (__u64)delta) {
        s->body_left -= delta;
        if (s->body_left == 0)
            s->mode = s->mode == M_BODY ? M_START : M_CHUNK_DATA_END;
        s->app_bytes += delta;
        s->wire_bytes += delta;
        inj_count(PP_INJC_RESYNCED);
        return 0;
    }
    return -1;
}

/* Parses (and injects into) one message with the run's scratch. 0, or -1 when the socket's
 * framing is no longer known. */
static __always_inline int parse_message(struct sk_msg_md *msg, struct pp_inj_sock *s, __u32 size)
{
    __u32 zero = 0;
    struct pp_inj_run *run = bpf_map_lookup_elem(&inject_scratch, &zero);
    if (!run)
        return -1;
    const __u64 my_gen = ++run->gen;
    run->stop = 0;
    run->st = *s;
    run->msg_app_base = s->app_bytes;
    run->off = 0;
    run->req_win0 = 0;
    run->size = size;
    run->shift = 0;
    for (int i = 0; i < PP_INJ_MAX_STEPS; i++) {
        if (run->stop || step(msg, run, my_gen))
            break;
    }
    /* A message that ends on the CR of a head's blank line: the head ends with the next byte
     * (a header line cannot begin with CR), and every header is known, so the head is handled
     * now, its line before that CR; the next message may hold nothing but the LF. */
    struct pp_inj_sock *st = &run->st;
    if (!run->stop && st->mode == M_HDR_START && st->blank_cr && st->method_ok &&
        !(st->flags & F_BAD)) {
        on_head(msg, run, my_gen);
        st->head_reported = 1;
    }
    /* A run preempted meanwhile found its scratch reused: this socket's framing is unknown. */
    if (run->stop || run->gen != my_gen)
        return -1;
    if (run->off < run->size && run->st.mode != M_DEAD) {
        /* More requests in one send than the steps allow: stop following this socket. */
        run->st.mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
    }
    run->st.app_bytes = run->msg_app_base + size;
    run->st.wire_bytes += run->size;
    run->st.last_inserted = run->shift != 0;
    *s = run->st;
    return 0;
}

SEC("sk_msg")
int inject_msg(struct sk_msg_md *msg)
{
    struct bpf_sock *sk = msg->sk;
    if (!sk)
        return SK_PASS;
    struct pp_inj_sock *s = bpf_sk_storage_get(&inject_sk, sk, 0, 0);
    if (!s)
        s = adopt(sk);
    if (!s)
        return SK_PASS;
    __u32 size = msg->size;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp) {
        /* Not a TCP socket (never expected in this sockhash): leave it alone. */
        s->mode = M_DEAD;
        s->app_bytes += size;
        return SK_PASS;
    }
    if (s->mode != M_DEAD && resync(s, tp) != 0) {
        s->mode = M_DEAD;
        inj_count(PP_INJC_FRAMING_LOST);
    }
    if (s->mode != M_DEAD && parse_message(msg, s, size) != 0) {
        s->mode = M_DEAD;
        s->app_bytes += size;
        inj_count(PP_INJC_FRAMING_LOST);
    } else if (s->mode == M_DEAD) {
        s->app_bytes += size;
    }
    if (!s->leave) {
        s->leave = s->mode == M_DEAD ? PP_LEAVE_NOT_HTTP : leave_reason(tp);
        if (s->leave && s->adopted && !s->leave_sent)
            ask_agent_to_remove(s);
    }
    return SK_PASS;
}
