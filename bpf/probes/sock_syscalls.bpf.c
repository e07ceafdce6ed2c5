/* Connection lifecycle: accept/accept4 (server side) and connect (client side).
 * Hooks: syscalls:sys_enter/exit_{accept,accept4,connect}.
 * Maps: task_stash (.sock, the entry -> exit stash), conns (new entries), events (PP_EV_CONN_OPEN).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "conn.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int sock_enter(__s32 fd, __u8 call)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if (!is_traced(pid_tgid >> 32))
        return 0;
    struct pp_task_stash *t = task_stash_get(1);
    if (!t) {
        count_drop(PP_DROP_ARGS_MAP_FULL);
        return 0;
    }
    t->sock.enter_ns = bpf_ktime_get_ns();
    t->sock.fd = fd;
    t->sock.active = call;
    return 0;
}

/* The stash of the accept/connect (`call`) now returning, or NULL; consumed. */
static __always_inline struct pp_sock_args *sock_stash(__u64 pid_tgid, __u8 call)
{
    if (!is_traced(pid_tgid >> 32)) /* before the stash: unselected processes skip it */
        return NULL;
    struct pp_task_stash *t = task_stash_get(0);
    if (!t || t->sock.active != call)
        return NULL;
    t->sock.active = 0;
    return &t->sock;
}

static __always_inline int accept_done(long ret)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pp_sock_args *args = sock_stash(pid_tgid, PP_SOCK_ACCEPT);
    if (!args)
        return 0;
    __u64 enter_ns = args->enter_ns;
    if (ret < 0)
        return 0;
    struct sock *sk = fd_to_tcp_sock((__s32)ret);
    if (sk)
        conn_open(pid_tgid, (__s32)ret, sk, PP_ROLE_SERVER, enter_ns);
    return 0;
}

/* accept and accept4: the same stash at enter, the same server connection at exit. */
#define ACCEPT_PROBE(call)                                                                         \
    SEC("tracepoint/syscalls/sys_enter_" #call)                                                    \
    int call##_enter(struct trace_event_raw_sys_enter *ctx)                                        \
    {                                                                                              \
        return sock_enter(-1, PP_SOCK_ACCEPT);                                                     \
    }                                                                                              \
    SEC("tracepoint/syscalls/sys_exit_" #call)                                                     \
    int call##_exit(struct trace_event_raw_sys_exit *ctx)                                          \
    {                                                                                              \
        return accept_done(ctx->ret);                                                              \
    }
ACCEPT_PROBE(accept)
ACCEPT_PROBE(accept4)

SEC("tracepoint/syscalls/sys_enter_connect")
int connect_enter(struct trace_event_raw_sys_enter *ctx)
{
    return sock_enter((__s32)ctx->args[0], PP_SOCK_CONNECT);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connect_exit(struct trace_event_raw_sys_exit *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pp_sock_args *args = sock_stash(pid_tgid, PP_SOCK_CONNECT);
    if (!args)
        return 0;
    __s32 fd = args->fd;
    __u64 enter_ns = args->enter_ns;
    /* Non-blocking connects return -EINPROGRESS with the addresses already set. */
    if (ctx->ret != 0 && ctx->ret != -PP_EINPROGRESS)
        return 0;
    struct sock *sk = fd_to_tcp_sock(fd);
    if (sk && conn_open(pid_tgid, fd, sk, PP_ROLE_CLIENT, enter_ns))
        pp_note_caller(sk);
    return 0;
}
