/* Payload of tracked TCP connections: read, write, readv, writev, recvfrom, sendto, recvmsg,
 * sendmsg, sendfile. Arguments are stashed at entry (pointers are not in the exit tracepoint);
 * bytes are copied at exit, when the return value says how many moved.
 * Hooks: syscalls:sys_enter/exit_<call>. Maps: task_stash (.io), conns, ignored_fds,
 * data_scratch, drop_counters, events (PP_EV_DATA, PP_EV_CONN_OPEN for sockets found mid-life),
 * and at a server request's first read (ctx_parse.bpf.h): thread_ctx, sample_*, ctx_counters,
 * events (PP_EV_TRACE_CTX), local_callers. A server connection's unsampled requests are gated:
 * their bytes and their responses' are counted, not shipped (pp_conn_state.gate_*, see
 * docs/architecture.md, "Unsampled requests"). Sends on UDP sockets (and sendmmsg) are only checked
 * for X-Ray daemon datagrams (sdk_dgram.bpf.h): sdk_reported, events (PP_EV_SDK_DATAGRAM). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "conn.bpf.h"
#include "ctx_parse.bpf.h"
#include "http.bpf.h"
#include "sdk_dgram.bpf.h"
#include "tls.bpf.h"

#define PP_MSG_PEEK 2

/* Force a bound the verifier can see; clang would drop a plain `&` it proves redundant. */
#define PP_BOUND(v, mask) asm volatile("%[x] &= " #mask : [x] "+r"(v))

static __always_inline int io_enter(__s32 fd, __u64 buf, __u32 iovcnt, __u8 kind, __u8 syscall,
                                    __u8 direction)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    if (!is_traced(tgid))
        return 0;
    __u8 other = 0;
    struct pp_conn_state *st = conn_lookup_or_discover_kind(pid_tgid, fd, &other);
    if (!st) {
        /* Not TCP: a UDP send may be an X-Ray SDK's datagram to its daemon. */
        if (direction == PP_DIR_EGRESS && other == PP_FD_UDP)
            pp_sdk_datagram_check(pid_tgid, buf, kind, syscall);
        return 0;
    }
    /* Only a process with TLS uprobes can have a TLS call in progress or pending (pid_bits slot
     * PP_BITS_TLS, set by the agent before it attaches them): the others skip every TLS map. */
    if (pp_pid_bit(PP_BITS_TLS, tgid) ? tls_on_socket_io(pid_tgid, fd, direction, st)
                                      : st->tls != PP_CONN_PLAIN)
        return 0; /* TLS ciphertext: the plaintext comes from the TLS probes */
    struct pp_task_stash *t = task_stash_get(1);
    if (!t) {
        count_drop(PP_DROP_ARGS_MAP_FULL);
        return 0;
    }
    t->io.buf = buf;
    /* A read's entry time is only when the thread began to wait: every consumer of ingress
     * data uses its exit time (request and response starts alike), so reads take one clock
     * read, at exit, and report it as both. Writes keep both: a response starts at its first
     * write's entry and ends at its last write's exit. */
    t->io.enter_ns = direction == PP_DIR_EGRESS ? bpf_ktime_get_ns() : 0;
    t->io.fd = fd;
    t->io.iovcnt = iovcnt;
    t->io.kind = kind;
    t->io.syscall = syscall;
    t->io.direction = direction;
    t->io.active = 1;
    return 0;
}

/* Walk of an iovec array, one segment per bpf_loop step. */
struct pp_iov_walk {
    struct pp_data_scratch *s;
    __u64 iov_ptr;
    __u32 iovcnt;
    __u32 skip; /* bytes of the array still to pass over before copying */
    __u32 want; /* bytes to copy */
    __u32 off;  /* bytes copied */
};

static long iov_step(__u32 i, void *ctx)
{
    struct pp_iov_walk *w = ctx;
    if (i >= w->iovcnt || w->off >= w->want)
        return 1;
    struct iovec iov;
    if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(w->iov_ptr + i * sizeof(iov))) != 0) {
        count_drop(PP_DROP_READ_USER);
        return 1;
    }
    __u64 base = (__u64)iov.iov_base;
    __u64 seg = iov.iov_len;
    if (w->skip >= seg) {
        w->skip -= seg;
        return 0;
    }
    base += w->skip;
    seg -= w->skip;
    w->skip = 0;
    if (seg > w->want - w->off)
        seg = w->want - w->off;
    __u32 o = w->off;
    __u32 n = seg;
    PP_BOUND(o, 0xfff);
    PP_BOUND(n, 0x1fff);
    if (n && bpf_probe_read_user(&w->s->ev.msg[o], n, (void *)base) != 0) {
        count_drop(PP_DROP_READ_USER);
        return 1;
    }
    w->off += seg;
    return 0;
}

/* Copies `want` bytes, starting `skip` bytes into an iovec array, to s->ev.msg; returns bytes
 * copied. */
static __always_inline __u32 copy_iovec(struct pp_data_scratch *s, __u64 iov_ptr, __u32 iovcnt,
                                        __u32 skip, __u32 want)
{
    if (iovcnt > PP_MAX_IOV)
        iovcnt = PP_MAX_IOV; /* counted once per syscall in io_exit */
    struct pp_iov_walk w = {
        .s = s, .iov_ptr = iov_ptr, .iovcnt = iovcnt, .skip = skip, .want = want};
    bpf_loop(PP_MAX_IOV, iov_step, &w, 0);
    return w.off;
}

/* Copies n (<= PP_MAX_CHUNK) bytes at offset `skip` of the syscall's data into s->ev.msg. */
static __always_inline __u32 copy_chunk(struct pp_data_scratch *s, const struct pp_io_args *a,
                                        __u64 msg_iov, __u32 msg_iovlen, __u32 skip, __u32 n)
{
    if (a->kind == PP_IO_BUF) {
        __u32 b = n;
        PP_BOUND(b, 0x1fff);
        if (bpf_probe_read_user(s->ev.msg, b, (void *)(a->buf + skip)) == 0)
            return n;
        count_drop(PP_DROP_READ_USER);
        return 0;
    }
    if (a->kind == PP_IO_IOVEC)
        return copy_iovec(s, a->buf, a->iovcnt, skip, n);
    if (a->kind == PP_IO_MSGHDR)
        return copy_iovec(s, msg_iov, msg_iovlen, skip, n);
    return 0; /* sendfile: no user buffer, the bytes are a gap of known length */
}

/* State shared by the pieces of one syscall's data (see io_exit). */
struct pp_chunk_loop {
    struct pp_data_scratch *s;
    struct pp_io_args a;
    __u64 msg_iov;
    __u64 pos;
    __u64 ret;
    __u32 msg_iovlen;
    __u32 full;     /* bytes to copy in total */
    __u32 off;      /* bytes emitted so far */
    __u32 scan;     /* 1 while a server request head is being scanned (ctx_parse.bpf.h) */
    __u32 head_end; /* 1 when the head budget ends with this call's last piece */
    __u32 skip;     /* bytes at the start of the call's data not shipped (a gated request's) */
};

/* Emits the piece at c->off whose bytes (captured of them) are already in c->s->ev.msg. */
static __always_inline void emit_piece(struct pp_chunk_loop *c, __u32 captured)
{
    struct pp_data_event *ev = &c->s->ev;
    __u32 piece = c->full - c->off > PP_MAX_CHUNK ? PP_MAX_CHUNK : c->full - c->off;
    int last = c->off + piece >= c->full;
    ev->pos = c->pos + c->off;
    ev->len = last ? (__u32)(c->ret - c->off) : piece;
    ev->captured = captured > piece ? piece : captured;
    __u64 size = __builtin_offsetof(struct pp_data_event, msg) + ev->captured;
    PP_BOUND(size, 0x1fff);
    emit(ev, size);
    c->off += piece;
}

static long next_piece(__u32 index, void *ctx)
{
    struct pp_chunk_loop *c = ctx;
    if (c->off >= c->full)
        return 1;
    __u32 n = c->full - c->off > PP_MAX_CHUNK ? PP_MAX_CHUNK : c->full - c->off;
    __u32 captured = copy_chunk(c->s, &c->a, c->msg_iov, c->msg_iovlen, c->skip + c->off, n);
    if (c->scan)
        c->scan = pp_head_piece(captured, n, c->head_end && c->off + n >= c->full, (__u32)c->ret);
    emit_piece(c, captured);
    return 0;
}

/* The stash of this very syscall, when the thread is traced and one is active: one left active
 * by an exit that returned early (the process was unselected meanwhile) belongs to another
 * call. */
static __always_inline struct pp_task_stash *io_exit_stash(__u64 pid_tgid, __u8 syscall)
{
    if (!is_traced(pid_tgid >> 32)) /* before the stash: unselected processes stop here */
        return 0;
    struct pp_task_stash *t = task_stash_get(0);
    if (!t || !t->io.active || t->io.syscall != syscall)
        return 0;
    return t;
}

/* Gate on unsampled requests, ingress: a read that ends before the gated request's body does is
 * not shipped (returns 1). Otherwise the gate opens and *skip is how many of its bytes still
 * belonged to that request. */
static __always_inline int gate_ingress(struct pp_conn_state *st, __u64 pos, __u64 n, __u32 *skip)
{
    __u64 end = st->gate_body_end;
    if (pos + n <= end) {
        pp_count_n(&ctx_counters, PP_CTXC_GATED_RX_BYTES, n);
        return 1;
    }
    *skip = pos < end ? (__u32)(end - pos) : 0;
    pp_count_n(&ctx_counters, PP_CTXC_GATED_RX_BYTES, *skip);
    st->gate_rx = 0;
    return 0;
}

/* Gate on unsampled requests, egress: 1 when this write belongs to a gated request's response:
 * while its request is gated, and after that until a write that starts the next response. */
static __always_inline int gate_egress(struct pp_conn_state *st, struct pp_data_scratch *s,
                                       const struct pp_io_args *a, __u64 msg_iov, __u32 msg_iovlen,
                                       __u64 n)
{
    if (!st->gate_rx) {
        __u32 got = copy_chunk(s, a, msg_iov, msg_iovlen, 0, 8);
        if (got >= 5 && pp_first_word(s->ev.msg) == 0x50545448 /* HTTP */ && s->ev.msg[4] == '/') {
            st->gate_tx = 0;
            return 0;
        }
    }
    pp_count_n(&ctx_counters, PP_CTXC_GATED_TX_BYTES, n);
    return 1;
}

static __always_inline int io_exit(long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pp_task_stash *t = task_stash_get(0);
    if (!t || !t->io.active)
        return 0;
    t->io.active = 0;
    if (ret <= 0)
        return 0;
    struct pp_io_args a = t->io;

    __u32 tgid = pid_tgid >> 32;
    __u64 key = conn_map_key(tgid, a.fd);
    struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st)
        return 0; /* closed by another thread meanwhile */
    int ingress = a.direction == PP_DIR_INGRESS;
    __u64 pos =
        ingress ? __sync_fetch_and_add(&st->rx_pos, ret) : __sync_fetch_and_add(&st->tx_pos, ret);
    __u32 skip = 0;
    int resumed = ingress && st->gate_rx;
    if (resumed && gate_ingress(st, pos, (__u64)ret, &skip))
        return 0;

    __u32 zero = 0;
    struct pp_data_scratch *s = bpf_map_lookup_elem(&data_scratch, &zero);
    if (!s)
        return 0;
    struct pp_data_event *ev = &s->ev;
    __u64 now = bpf_ktime_get_ns();
    fill_header(&ev->hdr, PP_EV_DATA, pid_tgid, a.enter_ns ? a.enter_ns : now);
    ev->conn.tgid = tgid;
    ev->conn.fd = a.fd;
    ev->conn.gen = st->gen;
    ev->exit_ns = now;
    ev->direction = a.direction;
    ev->syscall = a.syscall;
    ev->role = st->role;
    ev->source = PP_SRC_SOCKET;
    __builtin_memset(ev->_pad, 0, sizeof(ev->_pad));

    __u64 msg_iov = 0;
    __u32 msg_iovlen = 0;
    if (a.kind == PP_IO_MSGHDR) {
        struct user_msghdr mh;
        if (bpf_probe_read_user(&mh, sizeof(mh), (void *)a.buf) != 0) {
            count_drop(PP_DROP_READ_USER);
            a.kind = PP_IO_NONE;
        } else {
            msg_iov = (__u64)mh.msg_iov;
            msg_iovlen = (__u32)mh.msg_iovlen;
        }
    }

    if (!ingress && st->gate_tx && gate_egress(st, s, &a, msg_iov, msg_iovlen, (__u64)ret))
        return 0;
    __u32 iovcnt = a.kind == PP_IO_IOVEC ? a.iovcnt : a.kind == PP_IO_MSGHDR ? msg_iovlen : 0;
    if (iovcnt > PP_MAX_IOV)
        count_drop(PP_DROP_IOV_LIMIT);
    /* Bytes of a gated request at the start of this read: the rest is shipped from its own
     * position, as if a read of its own had brought it. */
    pos += skip;
    ret -= skip;

    /* First piece: always up to PP_MAX_CHUNK. */
    __u32 first = ret > PP_MAX_CHUNK ? PP_MAX_CHUNK : ret;
    __u32 captured = copy_chunk(s, &a, msg_iov, msg_iovlen, skip, first);
    if (pos == 0 && tls_record_start(ev->msg, captured)) {
        st->tls = PP_CONN_TLS_RECORDS; /* a TLS handshake: ciphertext from here on */
        return 0;
    }

    /* A request starting here opens a head budget for this direction. */
    int request = captured >= 4 && pp_starts_with_method(pp_first_word(ev->msg));
    if (resumed && !request) {
        /* No request's context will report the gated ones before these bytes now. */
        pp_ctx_count(PP_CTXC_GATE_RESUMED_OTHER);
        if (st->gate_span) {
            st->gate_span = 0;
            bpf_map_delete_elem(&gate_spans, &key);
        }
    }
    __u32 full = pp_head_budget_take(st, ingress, request, (__u64)ret, first);
    if ((__u64)ret > full && a.syscall != PP_SYS_SENDFILE)
        count_drop(PP_DROP_TRUNCATED);
    /* A request read on a server connection: its head is scanned piece by piece for its trace
     * context, which comes before the data event that completes the head. */
    __u32 scan = 0;
    if (ingress && st->role != PP_ROLE_CLIENT) {
        if (request)
            scan = pp_head_open(pos, st->gen);
        else if (st->head_pending)
            scan = pp_head_resume(key, pos, st->gen);
        st->head_pending = 0;
    }

    /* The first piece, then (head budget only) the next ones through bpf_loop, which the
     * verifier checks once instead of once per unrolled iteration. The last piece's len runs to
     * the end of the syscall's data, so whatever was not copied is a gap of known size. */
    struct pp_chunk_loop c = {.s = s,
                              .a = a,
                              .msg_iov = msg_iov,
                              .msg_iovlen = msg_iovlen,
                              .pos = pos,
                              .ret = (__u64)ret,
                              .full = full,
                              .head_end = st->rx_head_budget == 0,
                              .skip = skip};
    if (scan)
        c.scan = pp_head_piece(captured, first, c.head_end && first >= full, (__u32)ret);
    if (c.scan == 2) { /* gated: nothing of this read is shipped */
        pp_count_n(&ctx_counters, PP_CTXC_GATED_RX_BYTES, (__u64)ret);
        return 0;
    }
    emit_piece(&c, captured);
    if (c.off < full)
        bpf_loop(PP_HEAD_BUDGET / PP_MAX_CHUNK - 1, next_piece, &c, 0);
    if (c.scan && !pp_head_suspend(key, st))
        pp_head_piece(0, 0, 1, (__u32)ret); /* not kept: decided from what was read */
    return 0;
}

/* The exit half is the same for every data syscall, so it is one program, io_exit_shared, that
 * each syscall's exit reaches by a tail call once its stash is found: the verifier checks its
 * head parse and piece loop once, not once per syscall (nine copies made most of the agent's
 * start-up time). Not attached itself: the agent puts it in io_exit_jump right after loading
 * (sizes rather than BTF types: kernels refuse BTF on a program array). */
SEC("tracepoint")
int io_exit_shared(struct trace_event_raw_sys_exit *ctx)
{
    return io_exit(ctx->ret);
}

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 1);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} io_exit_jump SEC(".maps");

static __always_inline int io_exit_jump_to_shared(struct trace_event_raw_sys_exit *ctx,
                                                  __u8 syscall)
{
    struct pp_task_stash *t = io_exit_stash(bpf_get_current_pid_tgid(), syscall);
    if (!t)
        return 0;
    bpf_tail_call(ctx, &io_exit_jump, 0);
    /* Only reached when the jump table is empty: the bytes of this call are lost, counted. */
    t->io.active = 0;
    count_drop(PP_DROP_TAIL_CALL);
    return 0;
}

#define IO_EXIT(call, sysno)                                                                       \
    SEC("tracepoint/syscalls/sys_exit_" #call)                                                     \
    int call##_exit(struct trace_event_raw_sys_exit *ctx)                                          \
    {                                                                                              \
        return io_exit_jump_to_shared(ctx, sysno);                                                 \
    }

#define BUF_PROBE(call, sysno, dir)                                                                \
    SEC("tracepoint/syscalls/sys_enter_" #call)                                                    \
    int call##_enter(struct trace_event_raw_sys_enter *ctx)                                        \
    {                                                                                              \
        return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_BUF, sysno, dir);              \
    }                                                                                              \
    IO_EXIT(call, sysno)

#define IOV_PROBE(call, sysno, dir)                                                                \
    SEC("tracepoint/syscalls/sys_enter_" #call)                                                    \
    int call##_enter(struct trace_event_raw_sys_enter *ctx)                                        \
    {                                                                                              \
        return io_enter((__s32)ctx->args[0], ctx->args[1], (__u32)ctx->args[2], PP_IO_IOVEC,       \
                        sysno, dir);                                                               \
    }                                                                                              \
    IO_EXIT(call, sysno)

BUF_PROBE(read, PP_SYS_READ, PP_DIR_INGRESS)
BUF_PROBE(write, PP_SYS_WRITE, PP_DIR_EGRESS)
IOV_PROBE(readv, PP_SYS_READV, PP_DIR_INGRESS)
IOV_PROBE(writev, PP_SYS_WRITEV, PP_DIR_EGRESS)

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int recvfrom_enter(struct trace_event_raw_sys_enter *ctx)
{
    if (ctx->args[3] & PP_MSG_PEEK) /* peeked bytes are read again later */
        return 0;
    return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_BUF, PP_SYS_RECVFROM,
                    PP_DIR_INGRESS);
}
IO_EXIT(recvfrom, PP_SYS_RECVFROM)

BUF_PROBE(sendto, PP_SYS_SENDTO, PP_DIR_EGRESS)

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int recvmsg_enter(struct trace_event_raw_sys_enter *ctx)
{
    if (ctx->args[2] & PP_MSG_PEEK)
        return 0;
    return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_MSGHDR, PP_SYS_RECVMSG,
                    PP_DIR_INGRESS);
}
IO_EXIT(recvmsg, PP_SYS_RECVMSG)

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sendmsg_enter(struct trace_event_raw_sys_enter *ctx)
{
    return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_MSGHDR, PP_SYS_SENDMSG,
                    PP_DIR_EGRESS);
}
IO_EXIT(sendmsg, PP_SYS_SENDMSG)

/* sendmmsg(fd, msgvec, vlen, flags): only UDP sockets, only the first message's first bytes, only
 * to find X-Ray daemon datagrams (no data events). */
SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int sendmmsg_enter(struct trace_event_raw_sys_enter *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!is_traced(pid_tgid >> 32))
        return 0;
    __u8 other = 0;
    if (conn_lookup_or_discover_kind(pid_tgid, (__s32)ctx->args[0], &other) || other != PP_FD_UDP)
        return 0;
    /* struct mmsghdr begins with its struct user_msghdr. */
    pp_sdk_datagram_check(pid_tgid, ctx->args[1], PP_IO_MSGHDR, PP_SYS_SENDMMSG);
    return 0;
}

/* sendfile(out_fd, in_fd, offset, count): out_fd is the socket; nothing to copy. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sendfile_enter(struct trace_event_raw_sys_enter *ctx)
{
    return io_enter((__s32)ctx->args[0], 0, 0, PP_IO_NONE, PP_SYS_SENDFILE, PP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sendfile_exit(struct trace_event_raw_sys_exit *ctx)
{
    return io_exit_jump_to_shared(ctx, PP_SYS_SENDFILE);
}
