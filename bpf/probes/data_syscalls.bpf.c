/* Payload of tracked TCP connections: read, write, readv, writev, recvfrom, sendto, recvmsg,
 * sendmsg, sendfile. Arguments are stashed at entry (pointers are not in the exit tracepoint);
 * bytes are copied at exit, when the return value says how many moved.
 * Hooks: syscalls:sys_enter/exit_<call>. Maps: active_io_args, conns, ignored_fds,
 * data_scratch, drop_counters, events (PP_EV_DATA, PP_EV_CONN_OPEN for sockets found mid-life). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "conn.bpf.h"

#define PP_MSG_PEEK 2

/* Force a bound the verifier can see; clang would drop a plain `&` it proves redundant. */
#define PP_BOUND(v, mask) asm volatile("%[x] &= " #mask : [x] "+r"(v))

static __always_inline int io_enter(__s32 fd, __u64 buf, __u32 iovcnt, __u8 kind, __u8 syscall,
                                    __u8 direction)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!is_traced(pid_tgid >> 32))
        return 0;
    if (!conn_lookup_or_discover(pid_tgid, fd))
        return 0;
    struct pp_io_args args = {
        .buf = buf,
        .enter_ns = bpf_ktime_get_ns(),
        .fd = fd,
        .iovcnt = iovcnt,
        .kind = kind,
        .syscall = syscall,
        .direction = direction,
    };
    if (bpf_map_update_elem(&active_io_args, &pid_tgid, &args, BPF_ANY) != 0)
        count_drop(PP_DROP_ARGS_MAP_FULL);
    return 0;
}

/* Copies up to `want` bytes of an iovec array into ev->msg; returns bytes copied. */
static __always_inline __u32 copy_iovec(struct pp_data_scratch *s, __u64 iov_ptr, __u32 iovcnt,
                                        __u32 want)
{
    __u32 off = 0;
    if (iovcnt > PP_MAX_IOV) {
        count_drop(PP_DROP_IOV_LIMIT);
        iovcnt = PP_MAX_IOV;
    }
#pragma unroll
    for (int i = 0; i < PP_MAX_IOV; i++) {
        if (i >= iovcnt || off >= want)
            break;
        struct iovec iov;
        if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iov_ptr + i * sizeof(iov))) != 0) {
            count_drop(PP_DROP_READ_USER);
            break;
        }
        __u64 seg = iov.iov_len;
        if (seg > want - off)
            seg = want - off;
        __u32 o = off;
        __u32 n = seg;
        PP_BOUND(o, 0xfff);
        PP_BOUND(n, 0x1fff);
        if (n && bpf_probe_read_user(&s->ev.msg[o], n, iov.iov_base) != 0) {
            count_drop(PP_DROP_READ_USER);
            break;
        }
        off += seg;
    }
    return off;
}

static __always_inline int io_exit(long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pp_io_args *args = bpf_map_lookup_elem(&active_io_args, &pid_tgid);
    if (!args)
        return 0;
    struct pp_io_args a = *args;
    bpf_map_delete_elem(&active_io_args, &pid_tgid);
    if (ret <= 0)
        return 0;

    __u32 tgid = pid_tgid >> 32;
    __u64 key = conn_map_key(tgid, a.fd);
    struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (!st)
        return 0; /* closed by another thread meanwhile */
    __u64 pos = a.direction == PP_DIR_INGRESS ? __sync_fetch_and_add(&st->rx_pos, ret)
                                              : __sync_fetch_and_add(&st->tx_pos, ret);

    __u32 zero = 0;
    struct pp_data_scratch *s = bpf_map_lookup_elem(&data_scratch, &zero);
    if (!s)
        return 0;
    struct pp_data_event *ev = &s->ev;
    fill_header(&ev->hdr, PP_EV_DATA, pid_tgid, a.enter_ns);
    ev->conn.tgid = tgid;
    ev->conn.fd = a.fd;
    ev->conn.gen = st->gen;
    ev->exit_ns = bpf_ktime_get_ns();
    ev->pos = pos;
    ev->len = ret;
    ev->direction = a.direction;
    ev->syscall = a.syscall;
    ev->role = st->role;
    __builtin_memset(ev->_pad, 0, sizeof(ev->_pad));

    __u32 want = ret > PP_MAX_CHUNK ? PP_MAX_CHUNK : ret;
    if (ret > PP_MAX_CHUNK && a.syscall != PP_SYS_SENDFILE)
        count_drop(PP_DROP_TRUNCATED);
    __u32 captured = 0;
    if (a.kind == PP_IO_BUF) {
        __u32 n = want;
        PP_BOUND(n, 0x1fff);
        if (bpf_probe_read_user(ev->msg, n, (void *)a.buf) == 0)
            captured = want;
        else
            count_drop(PP_DROP_READ_USER);
    } else if (a.kind == PP_IO_IOVEC) {
        captured = copy_iovec(s, a.buf, a.iovcnt, want);
    } else if (a.kind == PP_IO_MSGHDR) {
        struct user_msghdr mh;
        if (bpf_probe_read_user(&mh, sizeof(mh), (void *)a.buf) == 0)
            captured = copy_iovec(s, (__u64)mh.msg_iov, (__u32)mh.msg_iovlen, want);
        else
            count_drop(PP_DROP_READ_USER);
    } /* else: sendfile, no user buffer: a gap of `len` bytes */
    ev->captured = captured;

    __u64 size = __builtin_offsetof(struct pp_data_event, msg) + captured;
    PP_BOUND(size, 0x1fff);
    emit(ev, size);
    return 0;
}

#define BUF_PROBE(call, sysno, dir)                                                       \
    SEC("tracepoint/syscalls/sys_enter_" #call)                                          \
    int call##_enter(struct trace_event_raw_sys_enter *ctx)                               \
    {                                                                                     \
        return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_BUF, sysno, dir);     \
    }                                                                                     \
    SEC("tracepoint/syscalls/sys_exit_" #call)                                           \
    int call##_exit(struct trace_event_raw_sys_exit *ctx) { return io_exit(ctx->ret); }

#define IOV_PROBE(call, sysno, dir)                                                       \
    SEC("tracepoint/syscalls/sys_enter_" #call)                                          \
    int call##_enter(struct trace_event_raw_sys_enter *ctx)                               \
    {                                                                                     \
        return io_enter((__s32)ctx->args[0], ctx->args[1], (__u32)ctx->args[2],           \
                        PP_IO_IOVEC, sysno, dir);                                         \
    }                                                                                     \
    SEC("tracepoint/syscalls/sys_exit_" #call)                                           \
    int call##_exit(struct trace_event_raw_sys_exit *ctx) { return io_exit(ctx->ret); }

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
SEC("tracepoint/syscalls/sys_exit_recvfrom")
int recvfrom_exit(struct trace_event_raw_sys_exit *ctx) { return io_exit(ctx->ret); }

BUF_PROBE(sendto, PP_SYS_SENDTO, PP_DIR_EGRESS)

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int recvmsg_enter(struct trace_event_raw_sys_enter *ctx)
{
    if (ctx->args[2] & PP_MSG_PEEK)
        return 0;
    return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_MSGHDR, PP_SYS_RECVMSG,
                    PP_DIR_INGRESS);
}
SEC("tracepoint/syscalls/sys_exit_recvmsg")
int recvmsg_exit(struct trace_event_raw_sys_exit *ctx) { return io_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sendmsg_enter(struct trace_event_raw_sys_enter *ctx)
{
    return io_enter((__s32)ctx->args[0], ctx->args[1], 0, PP_IO_MSGHDR, PP_SYS_SENDMSG,
                    PP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sendmsg_exit(struct trace_event_raw_sys_exit *ctx) { return io_exit(ctx->ret); }

/* sendfile(out_fd, in_fd, offset, count): out_fd is the socket; nothing to copy. */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sendfile_enter(struct trace_event_raw_sys_enter *ctx)
{
    return io_enter((__s32)ctx->args[0], 0, 0, PP_IO_NONE, PP_SYS_SENDFILE, PP_DIR_EGRESS);
}
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sendfile_exit(struct trace_event_raw_sys_exit *ctx) { return io_exit(ctx->ret); }
