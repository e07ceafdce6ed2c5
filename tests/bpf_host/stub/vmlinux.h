/* Userspace stand-in for the generated vmlinux.h: the UAPI headers give the BPF enums and flags
 * (map types, BPF_ANY, BPF_RB_*, BPF_F_*) and the __u8..__u64 types the kernel-side headers use.
 * Kernel structs they only name are declared here; add one when a header needs it. */
#ifndef PASSPORT_STUB_VMLINUX_H
#define PASSPORT_STUB_VMLINUX_H

#include <linux/bpf.h>
#include <linux/types.h>

/* Only the fields the kernel-side sources read (BPF_CORE_READ or plain loads). */
struct ns_common {
    unsigned int inum;
};
struct net {
    struct ns_common ns;
};
struct nsproxy {
    struct net *net_ns;
};
struct task_struct {
    unsigned int flags;
    struct nsproxy *nsproxy;
};
/* The user registers a Go goroutine's syscall left (bpf/lib/go_ctx.bpf.h reads r14). */
struct pt_regs {
    unsigned long r14;
};
struct file {
    unsigned int f_flags;
};
enum socket_flags { SOCKWQ_ASYNC_NOSPACE, SOCKWQ_ASYNC_WAITDATA, SOCK_NOSPACE };
struct socket {
    unsigned long flags;
    struct file *file;
};
typedef struct {
    __s64 counter;
} atomic64_t;
struct sock_common {
    atomic64_t skc_cookie;
};
struct sock {
    struct sock_common __sk_common;
    struct socket *sk_socket;
};
struct inet_sock {
    struct sock sk;
};
struct inet_connection_sock {
    struct inet_sock icsk_inet;
};
struct tcp_sock {
    struct inet_connection_sock inet_conn;
    __u32 write_seq;
};

#endif /* PASSPORT_STUB_VMLINUX_H */
