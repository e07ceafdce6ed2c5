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
 * Programs are loaded only when injection is on (the agent turns autoload off otherwise).
 *
 * Files: inject/inject_maps.bpf.h (maps, per-socket state, counters), inject/sockops.bpf.h
 * (the sock_ops callbacks), inject/framing.bpf.h (the HTTP/1 framing state machine),
 * inject/insert.bpf.h (context, header line, insertion, report); here the sk_msg steps over a
 * message and the two programs. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "inject/framing.bpf.h"
#include "inject/insert.bpf.h"
#include "inject/inject_maps.bpf.h"
#include "inject/sockops.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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

/* Follows (and injects into) one message of a TCP socket; a socket whose framing is lost is
 * never parsed again, its bytes only counted. */
static __always_inline void follow_message(struct sk_msg_md *msg, struct pp_inj_sock *s,
                                           struct tcp_sock *tp, __u32 size)
{
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
}

/* Gives the socket its reason to leave the sockhash, once; an adopted socket asks the agent. */
static __always_inline void settle_leave(struct pp_inj_sock *s, struct tcp_sock *tp)
{
    if (s->leave)
        return;
    s->leave = s->mode == M_DEAD ? PP_LEAVE_NOT_HTTP : leave_reason(tp);
    if (s->leave && s->adopted && !s->leave_sent)
        ask_agent_to_remove(s);
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
    follow_message(msg, s, tp, size);
    settle_leave(s, tp);
    return SK_PASS;
}
