/* sock_ops side of the header injection: marking sockets at connect, joining the sockhash when
 * established, and leaving it from the header-option callback (see probes/inject.bpf.c). */
#ifndef PASSPORT_INJECT_SOCKOPS_BPF_H
#define PASSPORT_INJECT_SOCKOPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "filter.bpf.h"
#include "inject_maps.bpf.h"

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
    if (pp_pid_bit(PP_BITS_NO_INJECT, tgid)) {
        inj_count(PP_INJC_NO_INJECT);
        return;
    }
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

#endif /* PASSPORT_INJECT_SOCKOPS_BPF_H */
