/* Plaintext of OpenSSL connections: SSL_read, SSL_write, SSL_read_ex, SSL_write_ex (uprobe at
 * entry, one shared uretprobe at return), SSL_set_fd (entry), and a trigger for libraries loaded
 * late (sys_enter_mmap with PROT_EXEC). The agent attaches the uprobes to every libssl.so.* a
 * selected process maps and to executables that export SSL_write (node): for the process alone
 * while a binary has few selected processes, then once for the binary (pid -1), and the
 * programs filter by process (tls_covered). See agent/tls_tracer.hpp.
 * Records: PP_EV_DATA with source PP_SRC_TLS, on the connection of the underlying TCP socket,
 * positions counted in plaintext bytes per direction (pp_conn_state.tls_rx_pos/tls_tx_pos).
 * How an SSL* finds its socket: lib/tls.bpf.h.
 * An HTTPS server's request (SSL_read plaintext starting with a method, on a connection that is
 * not a client's) gets its trace context here, as a plain request does in the socket probes
 * (ctx_parse.bpf.h): thread_ctx, PP_EV_TRACE_CTX before the data.
 * Maps: tls_calls, tls_fds, tls_last_rx, tls_pending, tls_rescan, conns, data_scratch, events,
 * and for server requests head_scratch, thread_ctx, sample_*, ctx_counters.
 *
 * Per-CPU scratch (data_scratch, head_scratch) is shared with the syscall probes. A uprobe fires
 * only on a user-mode breakpoint and interrupts never run these programs, so on one CPU they
 * can only interleave if a running program is preempted and another task's program reuses the
 * scratch. BPF programs run with migration disabled, not always with preemption disabled: on a
 * fully preemptible kernel (preempt=full/lazy, PREEMPT_RCU) that can happen, and one event or
 * context may then carry the other task's bytes (never memory outside the buffers: every copy
 * is bounded). This kernel runs preempt=none (PREEMPT_DYNAMIC booted "none"), where a BPF
 * program always runs to its end before the CPU switches task. The syscall path shared
 * data_scratch with the TLS uprobes before; the context parse adds head_scratch to that. */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "conn.bpf.h"
#include "tls.bpf.h"

#define PP_PROT_EXEC 4

/* Uprobes attached per binary (pid -1) fire in every process that maps it: only a selected
 * process the agent has covered (pid_bits slot PP_BITS_TLS, set once its socket probes look at
 * the TLS maps) goes further. Unselected processes pay the trap and one bitmap load. */
static __always_inline int tls_covered(__u32 tgid)
{
    return is_traced(tgid) && pp_pid_bit(PP_BITS_TLS, tgid);
}

static __always_inline int tls_enter(struct pt_regs *ctx, __u8 direction, int ex)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!tls_covered(pid_tgid >> 32))
        return 0;
    struct pp_tls_call call = {
        .ssl = PT_REGS_PARM1(ctx),
        .buf = PT_REGS_PARM2(ctx),
        .len_ptr = ex ? PT_REGS_PARM4(ctx) : 0,
        .enter_ns = bpf_ktime_get_ns(),
        .fd = -1,
        .num = (__u32)PT_REGS_PARM3(ctx),
        .direction = direction,
    };
    /* The same call seen twice: a binary's shared uprobe and a process's own one on the same
     * function, while the agent moves a binary from one to the other. The first one counts. */
    struct pp_tls_call *same = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
    if (same && same->ssl == call.ssl && same->buf == call.buf && same->num == call.num &&
        same->direction == direction)
        return 0;
    if (direction == PP_DIR_EGRESS) {
        /* The retry of a failed SSL_write whose bytes were already sent: not again. */
        struct pp_tls_key k = {.ssl = call.ssl, .tgid = pid_tgid >> 32};
        struct pp_tls_fd *b = bpf_map_lookup_elem(&tls_fds, &k);
        if (b && b->retry_num) {
            call.emitted = b->retry_num == call.num;
            b->retry_num = 0;
        }
    }
    /* Overwrites a call this thread never returned from (longjmp); a nested call (an SSL_*
     * implemented through another) is then reported once, by the innermost return. */
    if (bpf_map_update_elem(&tls_calls, &pid_tgid, &call, BPF_ANY) != 0)
        count_drop(PP_DROP_ARGS_MAP_FULL);
    return 0;
}

/* One entry program per OpenSSL function (each is its own uprobe): ssl_write_enter,
 * ssl_read_enter, ssl_write_ex_enter and ssl_read_ex_enter. */
#define PP_TLS_ENTRY(name, dir, ex)                                                                \
    SEC("uprobe")                                                                                  \
    int BPF_KPROBE(name)                                                                           \
    {                                                                                              \
        return tls_enter(ctx, dir, ex);                                                            \
    }
PP_TLS_ENTRY(ssl_write_enter, PP_DIR_EGRESS, 0)
PP_TLS_ENTRY(ssl_read_enter, PP_DIR_INGRESS, 0)
PP_TLS_ENTRY(ssl_write_ex_enter, PP_DIR_EGRESS, 1)
PP_TLS_ENTRY(ssl_read_ex_enter, PP_DIR_INGRESS, 1)

/* SSL_set_fd(ssl, fd): the program names the socket itself. */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_enter)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!tls_covered(pid_tgid >> 32))
        return 0;
    __u64 ssl = PT_REGS_PARM1(ctx);
    __s32 fd = (__s32)PT_REGS_PARM2(ctx);
    struct pp_conn_state *st = conn_lookup_or_discover(pid_tgid, fd);
    if (st)
        tls_bind(pid_tgid >> 32, ssl, fd, st->gen);
    return 0;
}

/* The socket of this call's SSL*: learned during the call, cached, or (memory BIO, reads) the
 * thread's last socket read. Returns its state, or NULL (unknown or untracked). */
static __always_inline struct pp_conn_state *tls_socket(__u64 pid_tgid, const struct pp_tls_call *c,
                                                        __s32 *fd_out)
{
    __u32 tgid = pid_tgid >> 32;
    struct pp_tls_key k = {.ssl = c->ssl, .tgid = tgid};
    __s32 fd = c->fd;
    int learned = fd >= 0;
    if (!learned) {
        struct pp_tls_fd *cached = bpf_map_lookup_elem(&tls_fds, &k);
        if (cached) {
            __u64 key = conn_map_key(tgid, cached->fd);
            struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
            if (st && st->gen == cached->gen) {
                *fd_out = cached->fd;
                return st;
            }
            bpf_map_delete_elem(&tls_fds, &k); /* the socket is gone */
        }
        if (c->direction != PP_DIR_INGRESS)
            return NULL;
        __s32 *last = bpf_map_lookup_elem(&tls_last_rx, &pid_tgid);
        if (!last)
            return NULL;
        fd = *last;
    }
    __u64 key = conn_map_key(tgid, fd);
    struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st)
        return NULL;
    tls_bind(tgid, c->ssl, fd, st->gen);
    *fd_out = fd;
    return st;
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!tls_covered(pid_tgid >> 32))
        return 0;
    struct pp_tls_call *p = bpf_map_lookup_elem(&tls_calls, &pid_tgid);
    if (!p)
        return 0;
    struct pp_tls_call c = *p;
    bpf_map_delete_elem(&tls_calls, &pid_tgid);

    /* SSL_read/SSL_write return int: -1 (want read, error) must not be read as 4294967295. */
    int rc = (int)PT_REGS_RC(ctx);
    __u32 tgid = pid_tgid >> 32;
    int ok = c.len_ptr ? rc == 1 : rc > 0;
    if (c.emitted) {
        /* Sent at the first socket write already. A failed call (non-blocking socket) will be
         * retried with the same arguments: remember not to send the bytes again then. */
        if (!ok) {
            struct pp_tls_key k = {.ssl = c.ssl, .tgid = tgid};
            struct pp_tls_fd *b = bpf_map_lookup_elem(&tls_fds, &k);
            if (b)
                b->retry_num = c.num;
        }
        return 0;
    }
    if (!ok)
        return 0;
    __u64 n = (__u64)rc;
    if (c.len_ptr && bpf_probe_read_user(&n, sizeof(n), (void *)c.len_ptr) != 0) {
        count_drop(PP_DROP_READ_USER);
        return 0;
    }
    if (n == 0 || n > 0x7fffffff)
        return 0;

    __s32 fd = -1;
    struct pp_conn_state *st = tls_socket(pid_tgid, &c, &fd);
    if (st) {
        tls_emit_plaintext(pid_tgid, st, fd, c.direction, c.buf, n, c.enter_ns);
        return 0;
    }
    if (c.direction != PP_DIR_EGRESS)
        return 0;
    /* Memory BIO, socket not known yet: keep the first piece until the thread's next socket
     * write names it (lib/tls.bpf.h). */
    __u32 zero = 0;
    struct pp_data_scratch *s = bpf_map_lookup_elem(&data_scratch, &zero);
    if (!s)
        return 0;
    struct pp_data_event *ev = &s->ev;
    fill_header(&ev->hdr, PP_EV_DATA, pid_tgid, c.enter_ns);
    ev->exit_ns = bpf_ktime_get_ns();
    ev->direction = PP_DIR_EGRESS;
    ev->syscall = PP_SYS_WRITE;
    ev->source = PP_SRC_TLS;
    __builtin_memset(ev->_pad, 0, sizeof(ev->_pad));
    __u32 first = n > PP_MAX_CHUNK ? PP_MAX_CHUNK : (__u32)n;
    __u32 b = first;
    PP_TLS_BOUND(b, 0x1fff);
    ev->captured = bpf_probe_read_user(ev->msg, b, (void *)c.buf) == 0 ? first : 0;
    if (n > first)
        count_drop(PP_DROP_TRUNCATED);
    ev->len = (__u32)n;
    ev->pos = c.ssl;
    ev->conn.tgid = tgid;
    ev->conn.fd = -1;
    ev->conn.gen = 0;
    ev->role = PP_ROLE_UNKNOWN;
    if (bpf_map_update_elem(&tls_pending, &pid_tgid, ev, BPF_ANY) != 0)
        count_drop(PP_DROP_ARGS_MAP_FULL);
    return 0;
}

/* A selected process mapped executable memory (a library being loaded): ask the agent to look
 * at its maps again. Unselected processes pay the is_traced() lookup only. */
SEC("tracepoint/syscalls/sys_enter_mmap")
int tls_mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!(ctx->args[2] & PP_PROT_EXEC) || !is_traced(tgid))
        return 0;
    __u8 one = 1;
    bpf_map_update_elem(&tls_rescan, &tgid, &one, BPF_NOEXIST);
    return 0;
}
