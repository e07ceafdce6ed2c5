/* Connections: resolving an fd to its TCP socket through the current task (CO-RE reads, no
 * kprobes), and the (tgid, fd) -> connection state table. */
#ifndef PASSPORT_CONN_BPF_H
#define PASSPORT_CONN_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "maps.bpf.h"

/* Not in vmlinux.h (macros). */
#define PP_S_IFMT      0170000
#define PP_S_IFSOCK    0140000
#define PP_SOCK_STREAM 1
#define PP_SOCK_DGRAM  2
#define PP_IPPROTO_TCP 6
#define PP_EINPROGRESS 115

/* The TCP socket behind fd in the current process, or NULL (not a socket, not TCP/IP). With
 * `udp` given, *udp says whether fd is an IPv4/IPv6 datagram socket instead. */
static __always_inline struct sock *fd_to_sock_kind(__s32 fd, int *udp)
{
    if (fd < 0)
        return NULL;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    if (!fdt)
        return NULL;
    unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
    if ((unsigned int)fd >= max_fds)
        return NULL;
    struct file **fd_array = BPF_CORE_READ(fdt, fd);
    struct file *file = NULL;
    if (bpf_probe_read_kernel(&file, sizeof(file), &fd_array[fd]) != 0 || !file)
        return NULL;
    umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
    if ((mode & PP_S_IFMT) != PP_S_IFSOCK)
        return NULL;
    struct socket *sock = BPF_CORE_READ(file, private_data);
    if (!sock)
        return NULL;
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (!sk)
        return NULL;
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (family != PP_AF_INET && family != PP_AF_INET6)
        return NULL;
    __u16 type = BPF_CORE_READ(sk, sk_type);
    if (udp)
        *udp = type == PP_SOCK_DGRAM;
    if (type != PP_SOCK_STREAM || BPF_CORE_READ(sk, sk_protocol) != PP_IPPROTO_TCP)
        return NULL;
    return sk;
}

static __always_inline struct sock *fd_to_tcp_sock(__s32 fd)
{
    return fd_to_sock_kind(fd, NULL);
}

static __always_inline void read_endpoints(struct sock *sk, struct pp_endpoint *local,
                                           struct pp_endpoint *remote, __u32 *netns)
{
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    local->family = remote->family = family;
    local->port = BPF_CORE_READ(sk, __sk_common.skc_num);
    remote->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    __builtin_memset(local->addr, 0, sizeof(local->addr));
    __builtin_memset(remote->addr, 0, sizeof(remote->addr));
    /* Explicit sizes: BPF_CORE_READ_INTO would copy sizeof(*addr) == 1 byte of an array. */
    if (family == PP_AF_INET) {
        bpf_core_read(local->addr, 4, &sk->__sk_common.skc_rcv_saddr);
        bpf_core_read(remote->addr, 4, &sk->__sk_common.skc_daddr);
    } else {
        bpf_core_read(local->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
        bpf_core_read(remote->addr, 16, &sk->__sk_common.skc_v6_daddr);
    }
    *netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Remembers a client connection of a traced process by its two ends (map local_callers). A
 * function of its own, called after conn_open: the callers are near the stack limit. */
static __noinline __attribute__((unused)) void pp_note_caller(struct sock *sk)
{
    __u32 zero = 0;
    struct pp_tuple_key *k = bpf_map_lookup_elem(&tuple_scratch, &zero);
    if (!sk || !k)
        return;
    __u32 netns = 0;
    read_endpoints(sk, &k->caller, &k->callee, &netns);
    pp_endpoint_plain(&k->caller);
    pp_endpoint_plain(&k->callee);
    __u8 one = 1;
    bpf_map_update_elem(&local_callers, k, &one, BPF_ANY);
}

/* 1 when the server connection fd of the current process may have been opened by a traced
 * process on this node (its mirrored tuple is in local_callers), or when that cannot be told. */
static __noinline __attribute__((unused)) int pp_local_caller(__s32 fd)
{
    struct sock *sk = fd_to_tcp_sock(fd);
    __u32 zero = 0;
    struct pp_tuple_key *k = bpf_map_lookup_elem(&tuple_scratch, &zero);
    if (!sk || !k)
        return 1;
    __u32 netns = 0;
    read_endpoints(sk, &k->callee, &k->caller, &netns);
    pp_endpoint_plain(&k->caller);
    pp_endpoint_plain(&k->callee);
    return bpf_map_lookup_elem(&local_callers, k) != 0;
}

/* Starts tracking fd as a connection with the given role and reports it. Returns the new
 * state, or NULL when the port filter excludes it or the table refused it. */
static __always_inline struct pp_conn_state *conn_open(__u64 pid_tgid, __s32 fd, struct sock *sk,
                                                       __u8 role, __u64 ts)
{
    __u32 tgid = pid_tgid >> 32;
    struct pp_conn_open_event ev = {};
    read_endpoints(sk, &ev.local, &ev.remote, &ev.netns);
    /* --port selects servers by local port; a socket found mid-life counts as a server when its
     * local port is selected, otherwise it is left alone. Clients are always followed. */
    if (role != PP_ROLE_CLIENT && !server_port_allowed(ev.local.port))
        return NULL;

    __u64 key = conn_map_key(tgid, fd);
    struct pp_conn_state st = {.gen = ts, .role = role};
    /* A new entry is counted (LRU accounting); a stale one for a reused fd is overwritten. */
    if (bpf_map_update_elem(&conns, &key, &st, BPF_NOEXIST) == 0) {
        lru_count(PP_LRU_CONNS_ADDED);
    } else if (bpf_map_update_elem(&conns, &key, &st, BPF_EXIST) != 0) {
        count_drop(PP_DROP_CONN_MAP_FULL);
        return NULL;
    }
    fill_header(&ev.hdr, PP_EV_CONN_OPEN, pid_tgid, ts);
    ev.conn.tgid = tgid;
    ev.conn.fd = fd;
    ev.conn.gen = ts;
    ev.role = role;
    emit(&ev, sizeof(ev));
    return bpf_map_lookup_elem(&conns, &key);
}

/* State of fd if it is (or, found mid-life, becomes) a tracked TCP connection. Otherwise NULL,
 * and *other (when given) is PP_FD_UDP for a UDP socket, PP_FD_OTHER for anything else. */
static __always_inline struct pp_conn_state *conn_lookup_or_discover_kind(__u64 pid_tgid, __s32 fd,
                                                                          __u8 *other)
{
    __u64 key = conn_map_key(pid_tgid >> 32, fd);
    struct pp_conn_state *st = bpf_map_lookup_elem(&conns, &key);
    if (st)
        return st;
    __u8 *known = bpf_map_lookup_elem(&ignored_fds, &key);
    if (known) {
        if (other)
            *other = *known;
        return NULL;
    }
    int udp = 0;
    struct sock *sk = fd_to_sock_kind(fd, &udp);
    if (sk) {
        st = conn_open(pid_tgid, fd, sk, PP_ROLE_UNKNOWN, bpf_ktime_get_ns());
        if (st) {
            pp_note_caller(sk); /* found mid-life: it may be a client */
            return st;
        }
    }
    __u8 kind = udp ? PP_FD_UDP : PP_FD_OTHER;
    if (other)
        *other = kind;
    bpf_map_update_elem(&ignored_fds, &key, &kind, BPF_ANY);
    return NULL;
}

static __always_inline struct pp_conn_state *conn_lookup_or_discover(__u64 pid_tgid, __s32 fd)
{
    return conn_lookup_or_discover_kind(pid_tgid, fd, NULL);
}

#endif /* PASSPORT_CONN_BPF_H */
