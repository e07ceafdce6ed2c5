/* TLS: the state shared by the OpenSSL uprobes (probes/tls.bpf.c) and the socket syscall probes
 * (probes/data_syscalls.bpf.c).
 *
 * An SSL* is tied to its TCP socket by what the same thread does with sockets:
 *   - a socket read/write made during an SSL_read/SSL_write call (OpenSSL's socket BIO:
 *     curl, python, openssl): the fd of that syscall;
 *   - SSL_set_fd(ssl, fd) when the program calls it (python);
 *   - memory-BIO runtimes (node): the last socket read on the thread before SSL_read, and the
 *     next socket write on the thread after SSL_write (the ciphertext of what was just written).
 * The binding is cached per (tgid, SSL*) with the connection's generation, so a closed and
 * reused fd number is not mistaken for the old connection.
 *
 * A connection is marked TLS (pp_conn_state.tls) when a TLS call produced plaintext on it, or
 * when its first bytes in either direction are a TLS record header: from then on the syscall
 * probes emit no payload for it (ciphertext is not traffic), and the plaintext carries its own
 * stream positions. */
#ifndef PASSPORT_TLS_BPF_H
#define PASSPORT_TLS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "conn.bpf.h"
#include "ctx_parse.bpf.h"
#include "emit.bpf.h"
#include "http.bpf.h"
#include "maps.bpf.h"

#include "tls_maps.bpf.h"

static __always_inline void tls_bind(__u32 tgid, __u64 ssl, __s32 fd, __u64 gen)
{
    struct pp_tls_key k = {.ssl = ssl, .tgid = tgid};
    struct pp_tls_fd *old = bpf_map_lookup_elem(&tls_fds, &k);
    if (old && old->fd == fd && old->gen == gen)
        return;
    struct pp_tls_fd v = {.gen = gen, .fd = fd};
    bpf_map_update_elem(&tls_fds, &k, &v, BPF_ANY);
}

/* Force a bound the verifier can see; clang would drop a plain `&` it proves redundant. */
#define PP_TLS_BOUND(v, mask) asm volatile("%[x] &= " #mask : [x] "+r"(v))

/* One call's plaintext, cut in PP_MAX_CHUNK pieces like the syscall path. */
struct pp_tls_emit {
    struct pp_data_scratch *s;
    __u64 buf;
    __u64 pos;
    __u32 total; /* bytes the call moved */
    __u32 full;  /* bytes to copy (head budget), >= the first piece */
    __u32 off;
    __u32 scan;     /* 1 while a server request head is being scanned (ctx_parse.bpf.h) */
    __u32 head_end; /* 1 when the head budget ends with this call's last piece */
    __u32 _pad;
};

static long tls_piece(__u32 index, void *ctx)
{
    struct pp_tls_emit *c = ctx;
    if (c->off >= c->full)
        return 1;
    struct pp_data_event *ev = &c->s->ev;
    __u32 n = c->full - c->off > PP_MAX_CHUNK ? PP_MAX_CHUNK : c->full - c->off;
    __u32 b = n;
    PP_TLS_BOUND(b, 0x1fff);
    __u32 captured = n;
    if (bpf_probe_read_user(ev->msg, b, (void *)(c->buf + c->off)) != 0) {
        count_drop(PP_DROP_READ_USER);
        captured = 0;
    }
    int last = c->off + n >= c->full;
    if (c->scan)
        c->scan = pp_head_piece(captured, n, c->head_end && last, 0);
    ev->pos = c->pos + c->off;
    ev->len = last ? c->total - c->off : n;
    ev->captured = captured;
    __u64 size = __builtin_offsetof(struct pp_data_event, msg) + captured;
    PP_TLS_BOUND(size, 0x1fff);
    emit(ev, size);
    c->off += n;
    return 0;
}

/* Sends n plaintext bytes at user address buf, moved by a TLS call on connection (fd, st). */
static __always_inline void tls_emit_plaintext(__u64 pid_tgid, struct pp_conn_state *st, __s32 fd,
                                               __u8 direction, __u64 buf, __u64 n, __u64 enter_ns)
{
    __u32 zero = 0;
    struct pp_data_scratch *s = bpf_map_lookup_elem(&data_scratch, &zero);
    if (!s)
        return;
    struct pp_data_event *ev = &s->ev;
    fill_header(&ev->hdr, PP_EV_DATA, pid_tgid, enter_ns);
    ev->exit_ns = bpf_ktime_get_ns();
    ev->direction = direction;
    ev->syscall = direction == PP_DIR_INGRESS ? PP_SYS_READ : PP_SYS_WRITE;
    ev->source = PP_SRC_TLS;
    __builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
    ev->conn.tgid = pid_tgid >> 32;
    ev->conn.fd = fd;
    ev->conn.gen = st->gen;
    ev->role = st->role;

    st->tls = PP_CONN_TLS_PLAINTEXT;
    int ingress = direction == PP_DIR_INGRESS;
    __u64 pos = ingress ? __sync_fetch_and_add(&st->tls_rx_pos, n)
                        : __sync_fetch_and_add(&st->tls_tx_pos, n);

    /* Head budget, as for sockets: a call starting with an HTTP method may be copied up to
     * PP_HEAD_BUDGET bytes, over this call and the next ones in the same direction. */
    __u32 word = 0;
    if (n >= 4)
        bpf_probe_read_user(&word, sizeof(word), (void *)buf);
    __u32 first = n > PP_MAX_CHUNK ? PP_MAX_CHUNK : (__u32)n;
    int request = pp_starts_with_method(word);
    __u32 full = pp_head_budget_take(st, ingress, request, n, first);
    if (n > full)
        count_drop(PP_DROP_TRUNCATED);
    /* A request read on a server connection (HTTPS server): its head is scanned from the
     * plaintext, piece by piece, as the socket path scans a plain request, its trace context
     * before the data event that completes the head. request_pos is the plaintext position, the
     * one the request's data carries. */
    __u32 scan = 0;
    __u64 key = conn_map_key(pid_tgid >> 32, fd);
    if (ingress && st->role != PP_ROLE_CLIENT) {
        if (request)
            scan = pp_head_open(pos, st->gen);
        else if (st->head_pending)
            scan = pp_head_resume(key, pos, st->gen);
        st->head_pending = 0;
    }

    struct pp_tls_emit e = {.s = s,
                            .buf = buf,
                            .pos = pos,
                            .total = (__u32)n,
                            .full = full,
                            .scan = scan,
                            .head_end = st->rx_head_budget == 0};
    bpf_loop(PP_HEAD_BUDGET / PP_MAX_CHUNK, tls_piece, &e, 0);
    if (e.scan && !pp_head_suspend(key, st))
        pp_head_piece(0, 0, 1, 0); /* not kept: decided from what was read */
}

/* Sends a pending SSL_write plaintext now that the thread writes to socket fd. */
static __always_inline void tls_flush_pending(__u64 pid_tgid, __s32 fd, struct pp_conn_state *st)
{
    struct pp_data_event *ev = bpf_map_lookup_elem(&tls_pending, &pid_tgid);
    if (!ev)
        return;
    if (bpf_ktime_get_ns() - ev->exit_ns > PP_TLS_PENDING_MAX_NS) {
        /* Not followed by its ciphertext write (e.g. TLS over a socket that is not TCP, which
         * is never tracked): never pin it on an unrelated connection. */
        bpf_map_delete_elem(&tls_pending, &pid_tgid);
        return;
    }
    __u32 tgid = pid_tgid >> 32;
    tls_bind(tgid, ev->pos, fd, st->gen);
    st->tls = PP_CONN_TLS_PLAINTEXT;
    ev->conn.tgid = tgid;
    ev->conn.fd = fd;
    ev->conn.gen = st->gen;
    ev->role = st->role;
    ev->pos = __sync_fetch_and_add(&st->tls_tx_pos, ev->len);
    __u64 size = __builtin_offsetof(struct pp_data_event, msg) + ev->captured;
    if (size > sizeof(*ev))
        size = sizeof(*ev);
    emit(ev, size);
    bpf_map_delete_elem(&tls_pending, &pid_tgid);
}

/* Called by the socket syscall probes at entry, for a tracked TCP connection of a selected
 * process with TLS uprobes (pid_bits slot PP_BITS_TLS, set by the agent before it attaches
 * them: for other processes no TLS call can be in progress or pending, so none of the maps below
 * holds anything for them, and the probes only check the record-header mark), before anything is
 * stashed. Learns SSL* -> fd from what the thread does; returns 1
 * when the connection carries TLS ciphertext (no payload to capture). */
static __always_inline int tls_on_socket_io(__u64 pid_tgid, __s32 fd, __u8 direction,
                                            struct pp_conn_state *st)
{
    struct pp_tls_call *call = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
    if (call) {
        call->fd = fd; /* inside SSL_read/SSL_write: this is the SSL's socket */
        /* SSL_write's plaintext goes out now, before its ciphertext reaches the peer, as a
         * plaintext write would: a traced peer on this node must not see the request before
         * the caller's call exists (same-node stitching relies on that order). */
        if (call->direction == PP_DIR_EGRESS && direction == PP_DIR_EGRESS && !call->emitted &&
            call->num > 0) {
            call->emitted = 1;
            tls_bind(pid_tgid >> 32, call->ssl, fd, st->gen);
            tls_emit_plaintext(pid_tgid, st, fd, PP_DIR_EGRESS, call->buf, call->num,
                               call->enter_ns);
        }
    } else if (direction == PP_DIR_EGRESS) {
        tls_flush_pending(pid_tgid, fd, st);
    } else {
        bpf_map_update_elem(&tls_last_rx, &pid_tgid, &fd, BPF_ANY);
    }
    return st->tls != PP_CONN_PLAIN;
}

/* A TLS record header (handshake, alert, change-cipher-spec or application data, version 3.x)
 * at the very start of a stream: no HTTP message can begin with these bytes. */
static __always_inline int tls_record_start(const __u8 *m, __u32 captured)
{
    return captured >= 5 && m[0] >= 0x14 && m[0] <= 0x17 && m[1] == 0x03 && m[2] <= 0x04;
}

#endif /* PASSPORT_TLS_BPF_H */
