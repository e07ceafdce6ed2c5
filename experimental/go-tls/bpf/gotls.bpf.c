/* PROTOTYPE, NOT WIRED INTO THE AGENT (not built by CMake, no loader in the agent, no
 * userspace decoder). Plaintext of Go's crypto/tls, as measured in docs/go.md: uprobes on
 * `crypto/tls.(*Conn).Write` (entry) and `crypto/tls.(*Conn).Read` (entry, and one uprobe on
 * every RET instruction of Read, because uretprobes crash Go programs).
 *
 * Go register ABI (ABIInternal, amd64, Go >= 1.17), for func (c *Conn) Read/Write(b []byte):
 *   entry:  RAX = c, RBX = b.ptr, RCX = b.len, RDI = b.cap; R14 = the running goroutine (g).
 *   at RET: RAX = n, RBX/RCX = err; SP is back at the entry value (return address at SP+0), and
 *           the register arguments' spill slots follow it: c at SP+8, b.ptr at SP+16.
 * Why the RET probe re-reads b.ptr from its spill slot instead of using the value saved at entry:
 * a goroutine parked inside Read can have its stack moved (GC shrinks stacks), and a buffer on
 * that stack moves with it; the runtime fixes up the spilled pointer, not our saved copy
 * (measured: 389 of 500 stack-buffer reads moved; entry pointer gave 111/500 right, spill slot
 * 500/500). Verified on go1.19.8 only; the spill layout follows from the ABI, the fact that Read
 * spills b must be checked per Go version.
 * Per-call state is keyed by (tgid, g), never by thread: goroutines migrate between threads.
 *
 * The fd: tls.Conn.conn is a net.Conn interface at offset 0 (itab, data); when data is a
 * *net.TCPConn: -> *netFD (offset 0) -> poll.FD.Sysfd (offset 16). These offsets are go1.19's
 * and the interface is not type-checked here (a tls.Conn over another net.Conn type yields a
 * wrong fd): a real implementation must compare the itab with *net.TCPConn's, per binary.
 *
 * Attach (offsets are FILE offsets inside the Go binary, found from .gopclntab, which stripped
 * binaries keep; RET offsets need an x86 decoder): write_entry at Write, read_entry at Read,
 * read_ret at every RET of Read. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define GOTLS_MAX_DATA 4096

enum gotls_kind {
    GOTLS_WRITE = 1, /* bytes handed to Conn.Write (captured at entry) */
    GOTLS_READ = 2,  /* bytes returned by Conn.Read (captured at its RET) */
};

struct gotls_event {
    __u32 tgid;
    __u32 tid;
    __u64 goroutine; /* g pointer (R14) */
    __u64 ts_ns;
    __s64 fd;       /* -1 when the tls.Conn -> netFD walk failed */
    __s64 len;      /* Write: len(b); Read: n */
    __u32 kind;     /* enum gotls_kind */
    __u32 captured; /* bytes in data */
    __u8 data[GOTLS_MAX_DATA];
};

struct gotls_read_args {
    __u64 conn; /* *tls.Conn: heap, stable across the call */
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 22);
} gotls_events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64); /* tgid << 48 ^ g */
    __type(value, struct gotls_read_args);
} gotls_reads SEC(".maps");

/* Only these processes are probed (userspace fills it, like the agent's selection). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u8);
} gotls_pids SEC(".maps");

static __always_inline __s64 gotls_conn_fd(__u64 tls_conn)
{
    __u64 data = 0, netfd = 0;
    __s64 fd = -1;
    if (bpf_probe_read_user(&data, sizeof(data), (void *)(tls_conn + 8)) || !data)
        return -1;
    if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
        return -1;
    if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + 16)))
        return -1;
    return fd;
}

static __always_inline __u64 gotls_key(__u32 tgid, struct pt_regs *ctx)
{
    return ((__u64)tgid << 48) ^ ctx->r14;
}

static __always_inline void gotls_emit(struct pt_regs *ctx, __u32 kind, __u64 conn, __u64 buf,
                                       __s64 len)
{
    struct gotls_event *e = bpf_ringbuf_reserve(&gotls_events, sizeof(*e), 0);
    if (!e)
        return;
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    e->tgid = pid_tgid >> 32;
    e->tid = (__u32)pid_tgid;
    e->goroutine = ctx->r14;
    e->ts_ns = bpf_ktime_get_ns();
    e->fd = gotls_conn_fd(conn);
    e->len = len;
    e->kind = kind;
    __u64 n = len > 0 ? (__u64)len : 0;
    if (n > GOTLS_MAX_DATA - 1)
        n = GOTLS_MAX_DATA - 1;
    n &= GOTLS_MAX_DATA - 1;
    e->captured = n;
    if (bpf_probe_read_user(e->data, n, (void *)buf))
        e->captured = 0;
    bpf_ringbuf_submit(e, 0);
}

SEC("uprobe")
int gotls_write_entry(struct pt_regs *ctx)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!bpf_map_lookup_elem(&gotls_pids, &tgid))
        return 0;
    gotls_emit(ctx, GOTLS_WRITE, ctx->ax, ctx->bx, (__s64)ctx->cx);
    return 0;
}

SEC("uprobe")
int gotls_read_entry(struct pt_regs *ctx)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!bpf_map_lookup_elem(&gotls_pids, &tgid))
        return 0;
    /* A morestack restart re-enters Read on the same g: the second entry overwrites the first. */
    __u64 key = gotls_key(tgid, ctx);
    struct gotls_read_args args = {.conn = ctx->ax};
    bpf_map_update_elem(&gotls_reads, &key, &args, BPF_ANY);
    return 0;
}

SEC("uprobe")
int gotls_read_ret(struct pt_regs *ctx)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __u64 key = gotls_key(tgid, ctx);
    struct gotls_read_args *args = bpf_map_lookup_elem(&gotls_reads, &key);
    if (!args)
        return 0;
    __s64 n = (__s64)ctx->ax;
    __u64 buf = 0;
    if (n > 0 && !bpf_probe_read_user(&buf, sizeof(buf), (void *)(ctx->sp + 16)))
        gotls_emit(ctx, GOTLS_READ, args->conn, buf, n);
    bpf_map_delete_elem(&gotls_reads, &key);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
