/* Every map and the load-time configuration, declared once. Each probe file includes this header;
 * __weak lets `bpftool gen object` merge the identical definitions into one map each. */
#ifndef PASSPORT_MAPS_BPF_H
#define PASSPORT_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "passport/abi.h"

/* Written by the agent before load (skeleton rodata). */
const volatile struct pp_config pp_cfg __weak = {};
/* The ABI this object was compiled against; the loader refuses an object built from another. */
const volatile __u32 pp_bpf_abi_version __weak = PP_ABI_VERSION;

/* All records to userspace. Size is set by the agent before load. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps") __weak;

/* Per-CPU loss counters, indexed by enum pp_drop_reason. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PP_DROP_REASON_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} drop_counters SEC(".maps") __weak;

/* Selected processes (tgid -> 1), when pp_cfg.trace_all is 0. Children inherit at fork. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, __u8);
} traced_pids SEC(".maps") __weak;

/* Server ports to trace (host order), when pp_cfg.filter_ports is 1. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u16);
    __type(value, __u8);
} server_ports SEC(".maps") __weak;

/* Tracked TCP connections, keyed by (tgid << 32 | fd). */
struct pp_conn_state {
    __u64 gen;
    __u64 rx_pos;
    __u64 tx_pos;
    /* Bytes still to copy in full, per direction, after a syscall whose data began with an
     * HTTP method: a request head larger than PP_MAX_CHUNK (big cookies) is then captured whole
     * even when it arrives through several large reads. */
    __u32 rx_head_budget;
    __u32 tx_head_budget;
    __u8 role;
    /* enum pp_conn_tls (lib/tls.bpf.h): once set, the socket syscalls carry ciphertext and
     * emit no payload; TLS plaintext uses the tls_* positions and the head budgets above. */
    __u8 tls;
    __u8 _pad[6];
    __u64 tls_rx_pos; /* plaintext positions from SSL_read / SSL_write, per direction */
    __u64 tls_tx_pos;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct pp_conn_state);
} conns SEC(".maps") __weak;

/* fds of traced processes known not to be TCP sockets, so the fd walk runs once per fd.
 * Entries go at close(); LRU bounds what close() never clears (dup2, exec). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u8);
} ignored_fds SEC(".maps") __weak;

/* Enter -> exit stash of a data syscall's arguments, keyed by pid_tgid. */
struct pp_io_args {
    __u64 buf;      /* user buffer, or iovec array, or msghdr */
    __u64 enter_ns;
    __s32 fd;
    __u32 iovcnt;
    __u8 kind;      /* enum pp_io_kind */
    __u8 syscall;   /* enum pp_syscall */
    __u8 direction; /* enum pp_direction */
    __u8 _pad[5];
};

enum pp_io_kind {
    PP_IO_BUF = 0,    /* plain (buf, len) */
    PP_IO_IOVEC = 1,  /* (iov, iovcnt) */
    PP_IO_MSGHDR = 2, /* struct user_msghdr */
    PP_IO_NONE = 3,   /* no user buffer (sendfile) */
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct pp_io_args);
} active_io_args SEC(".maps") __weak;

/* accept/connect stash: the fd (connect) or nothing (accept) plus the entry time. */
struct pp_sock_args {
    __u64 enter_ns;
    __s32 fd;
    __u32 _pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct pp_sock_args);
} active_sock_args SEC(".maps") __weak;

/* Scratch for one data event plus 2 * PP_MAX_CHUNK spare bytes: copies are bounded with masks
 * (offset <= PP_MAX_CHUNK - 1, size <= 2 * PP_MAX_CHUNK - 1) that the verifier can follow, and
 * the spare keeps every such copy inside the buffer. Only `captured` bytes are ever sent. */
struct pp_data_scratch {
    struct pp_data_event ev;
    __u8 spare[2 * PP_MAX_CHUNK];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_data_scratch);
} data_scratch SEC(".maps") __weak;

/* Trace context of each thread serving a request (key pid_tgid). Set at a server request's
 * first read, inherited by threads created while it is set, read by the injection program. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct pp_trace_ctx);
} thread_ctx SEC(".maps") __weak;

/* Monotonic -> epoch offset, written by userspace (one entry, key 0). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_clock);
} clock_sync SEC(".maps") __weak;

/* Trace-context counters, indexed by enum pp_ctx_counter. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PP_CTXC_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} ctx_counters SEC(".maps") __weak;

/* Local sampling rules (written by userspace before attach); index PP_MAX_SAMPLE_RULES is the
 * default rule. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, PP_MAX_SAMPLE_RULES + 1);
    __type(key, __u32);
    __type(value, struct pp_sample_rule);
} sample_rules SEC(".maps") __weak;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_sample_cfg);
} sample_cfg SEC(".maps") __weak;

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, PP_MAX_SAMPLE_RULES + 1);
    __type(key, __u32);
    __type(value, struct pp_reservoir);
} sample_reservoirs SEC(".maps") __weak;

#endif /* PASSPORT_MAPS_BPF_H */
