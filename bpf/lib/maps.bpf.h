/* Maps and load-time configuration of the agent's BPF object, each declared once, in one header
 * per probe family:
 *   maps.bpf.h (this one): syscall, process, trace-context and sampling maps, their scratch
 *     buffers and the per-CPU counter function;
 *   tls_maps.bpf.h: the TLS uprobes' maps;
 *   probes/inject/inject_maps.bpf.h: the header injection's maps (sock_ops, sk_msg).
 * Each probe file includes the headers it needs; __weak lets `bpftool gen object` merge the
 * identical definitions of several objects into one map each. */
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

/* Per-CPU adds and deletes of the LRU maps conns and thread_ctx, indexed by enum pp_lru_count. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PP_LRU_COUNT);
    __type(key, __u32);
    __type(value, __u64);
} lru_counts SEC(".maps") __weak;

/* Adds n to entry idx of a per-CPU counter array (key __u32, value __u64): drop_counters,
 * lru_counts, ctx_counters, inject_counters. Per-CPU: no atomics needed. */
static __always_inline void pp_count_n(void *counters, __u32 idx, __u64 n)
{
    __u64 *v = bpf_map_lookup_elem(counters, &idx);
    if (v)
        *v += n;
}

static __always_inline void pp_count(void *counters, __u32 idx)
{
    pp_count_n(counters, idx, 1);
}

static __always_inline void count_drop(__u32 reason)
{
    pp_count(&drop_counters, reason);
}

static __always_inline void count_drop_n(__u32 reason, __u64 n)
{
    pp_count_n(&drop_counters, reason, n);
}

static __always_inline void lru_count(__u32 c)
{
    pp_count(&lru_counts, c);
}

/* Selected processes (tgid -> 1), when pp_cfg.trace_all is 0. Children inherit at fork. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, __u32);
    __type(value, __u8);
} traced_pids SEC(".maps") __weak;

/* The same selection as one bit per tgid, which the hot paths test instead of looking up the
 * hash (an inlined array access, no hash): unselected processes pay almost nothing beyond the
 * tracepoint itself. Slot PP_BITS_TRACED is the selection; slot PP_BITS_TLS the processes with
 * TLS uprobes attached, the only ones whose socket syscalls look at the TLS maps (set by the
 * agent before it attaches them). Memory-mapped by the agent, which sets and clears bits with
 * atomic operations, as the fork and exit programs do here. Covers every pid the kernel can hand
 * out (PP_PID_BITMAP_WORDS, abi.h). traced_pids stays the list userspace
 * reads; both change together (bit after the hash entry on select, before its removal on
 * unselect). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, PP_BITS_SLOTS);
    __type(key, __u32);
    __type(value, struct pp_pid_bitmap);
} pid_bits SEC(".maps") __weak;

/* Word index of tgid, or -1. The mask is forced (clang would otherwise recompute the index from
 * the 64-bit pid_tgid and lose the bound the verifier needs); it changes nothing below 2^22. */
static __always_inline long pp_pid_word(__u32 tgid)
{
    if (tgid >= (PP_PID_BITMAP_WORDS << 6))
        return -1;
    __u64 w = tgid >> 6;
    asm volatile("%[x] &= 0xffff" : [x] "+r"(w));
    return (long)w;
}

static __always_inline int pp_pid_bit(__u32 slot, __u32 tgid)
{
    long w = pp_pid_word(tgid);
    struct pp_pid_bitmap *b = bpf_map_lookup_elem(&pid_bits, &slot);
    if (w < 0 || !b)
        return 0;
    return (b->w[w] >> (tgid & 63)) & 1;
}

static __always_inline void pp_pid_bit_set(__u32 slot, __u32 tgid)
{
    long w = pp_pid_word(tgid);
    struct pp_pid_bitmap *b = bpf_map_lookup_elem(&pid_bits, &slot);
    if (w >= 0 && b)
        __sync_fetch_and_or(&b->w[w], 1ULL << (tgid & 63));
}

static __always_inline void pp_pid_bit_clear(__u32 slot, __u32 tgid)
{
    long w = pp_pid_word(tgid);
    struct pp_pid_bitmap *b = bpf_map_lookup_elem(&pid_bits, &slot);
    if (w >= 0 && b)
        __sync_fetch_and_and(&b->w[w], ~(1ULL << (tgid & 63)));
}

/* Server ports to trace (host order), when pp_cfg.filter_ports is 1. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u16);
    __type(value, __u8);
} server_ports SEC(".maps") __weak;

/* Tracked TCP connections, keyed by (tgid << 32 | fd); struct pp_conn_state in abi.h. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct pp_conn_state);
} conns SEC(".maps") __weak;

/* The conns (and ignored_fds, head_pending) key of a process's file descriptor. */
static __always_inline __u64 conn_map_key(__u32 tgid, __s32 fd)
{
    return ((__u64)tgid << 32) | (__u32)fd;
}

/* fds of traced processes known not to be TCP sockets, so the fd walk runs once per fd; the
 * value says what the fd is (PP_FD_OTHER, PP_FD_UDP: the datagram check of lib/sdk_dgram.bpf.h
 * runs on UDP sockets only). Entries go at close(); LRU bounds what close() never clears (dup2,
 * exec). */
#define PP_FD_OTHER 1
#define PP_FD_UDP   2
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, __u8);
} ignored_fds SEC(".maps") __weak;

/* Traced processes already reported as sending X-Ray daemon datagrams (PP_EV_SDK_DATAGRAM), so
 * each is reported once. Deleted at exec and at exit; a full map only means a process is not
 * reported (it keeps Passport's segments). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, __u8);
} sdk_reported SEC(".maps") __weak;

/* Enter -> exit stash of a data syscall's arguments (task_stash.io). */
struct pp_io_args {
    __u64 buf; /* user buffer, or iovec array, or msghdr */
    __u64 enter_ns;
    __s32 fd;
    __u32 iovcnt;
    __u8 kind;      /* enum pp_io_kind */
    __u8 syscall;   /* enum pp_syscall; the exit program checks it is its own */
    __u8 direction; /* enum pp_direction */
    __u8 active;    /* 1 from entry to exit */
    __u8 _pad[4];
};

enum pp_io_kind {
    PP_IO_BUF = 0,    /* plain (buf, len) */
    PP_IO_IOVEC = 1,  /* (iov, iovcnt) */
    PP_IO_MSGHDR = 2, /* struct user_msghdr */
    PP_IO_NONE = 3,   /* no user buffer (sendfile) */
};

/* accept/connect stash (task_stash.sock): the fd (connect) or nothing (accept) plus the entry
 * time. */
struct pp_sock_args {
    __u64 enter_ns;
    __s32 fd;
    __u8 active; /* PP_SOCK_ACCEPT or PP_SOCK_CONNECT from entry to exit, else 0 */
    __u8 _pad[3];
};

#define PP_SOCK_ACCEPT  1
#define PP_SOCK_CONNECT 2

/* A thread is in at most one syscall, so its stashes live with the thread itself
 * (task-local storage): no hash update and delete per syscall, and nothing is left behind when
 * a thread dies between entry and exit, or its process is unselected meanwhile (the exit
 * programs return before looking at the stash for unselected processes). */
struct pp_task_stash {
    struct pp_io_args io;
    struct pp_sock_args sock;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct pp_task_stash);
} task_stash SEC(".maps") __weak;

/* The current thread's stash, created on first use (NULL only when the kernel is out of
 * memory for it, or the storage is busy on this CPU: counted as args_map_full). */
static __always_inline struct pp_task_stash *task_stash_get(int create)
{
    return bpf_task_storage_get(&task_stash, bpf_get_current_task_btf(), 0,
                                create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

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

/* Stores a thread's trace context: in place when the thread has one, else as a new entry
 * (counted for the LRU accounting). 0 on success. */
static __always_inline long pp_store_thread_ctx(__u64 pid_tgid, const struct pp_trace_ctx *ctx)
{
    struct pp_trace_ctx *cur = bpf_map_lookup_elem(&thread_ctx, &pid_tgid);
    if (cur) {
        __builtin_memcpy(cur, ctx, sizeof(*cur));
        return 0;
    }
    long err = bpf_map_update_elem(&thread_ctx, &pid_tgid, ctx, BPF_NOEXIST);
    if (err == 0)
        lru_count(PP_LRU_CTX_ADDED);
    else if (err == -17 /* EEXIST: added meanwhile */)
        err = bpf_map_update_elem(&thread_ctx, &pid_tgid, ctx, BPF_EXIST);
    return err;
}

/* The last requests each thread read, newest at slot (next - 1) % PP_CTX_HISTORY, each with
 * the response bytes its connection had sent when it was read (tx_mark): while the connection
 * has sent no more, the request is unanswered. When the connection of the thread's current
 * request closes, close_enter gives the thread the newest unanswered one back (an event loop
 * still serving it) instead of leaving it no context. Task storage: freed with the thread. */
#define PP_CTX_HISTORY 16
struct pp_ctx_history {
    struct pp_trace_ctx ctx[PP_CTX_HISTORY];
    __u64 tx_mark[PP_CTX_HISTORY];
    __u32 next;
    __u32 _pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct pp_ctx_history);
} ctx_history SEC(".maps") __weak;

/* Records the context just stored for the current thread, with its connection's sent bytes. */
static __always_inline void pp_ctx_history_push(const struct pp_trace_ctx *ctx, __u64 tx_mark)
{
    struct pp_ctx_history *h = bpf_task_storage_get(&ctx_history, bpf_get_current_task_btf(), 0,
                                                    BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (!h)
        return;
    __u32 slot = h->next % PP_CTX_HISTORY;
    __builtin_memcpy(&h->ctx[slot], ctx, sizeof(*ctx));
    h->tx_mark[slot] = tx_mark;
    h->next++;
}

/* Requests whose context came from their own X-Amzn-Trace-Id with a Parent, by (process, Root,
 * Parent): a request the same process sends with that very Root and Parent forwards the header
 * (a proxy), and the injection program names the proxy's call in it (inject/insert.bpf.h).
 * Written at the request's first read; the oldest are forgotten first. */
struct pp_fwd_key {
    __u32 tgid;
    __u32 trace_epoch;
    __u8 trace_rand[12];
    __u32 _pad;
    __u64 parent_id;
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct pp_fwd_key);
    __type(value, struct pp_trace_ctx);
} forwardable SEC(".maps") __weak;

/* Remembers a server request's context when it came from a header with a Parent. A function of
 * its own: its key would otherwise sit in the frame of the context parser's caller, whose call
 * chain is near the 512-byte stack limit. */
static __noinline __attribute__((unused)) void
pp_remember_forwardable(__u32 tgid, const struct pp_trace_ctx *ctx)
{
    if (!ctx || ctx->source != PP_CTX_XRAY_HEADER || ctx->parent_id == 0)
        return;
    struct pp_fwd_key k = {};
    k.tgid = tgid;
    k.trace_epoch = ctx->trace_epoch;
    __builtin_memcpy(k.trace_rand, ctx->trace_rand, sizeof(k.trace_rand));
    k.parent_id = ctx->parent_id;
    bpf_map_update_elem(&forwardable, &k, ctx, BPF_ANY);
}

/* Connections that traced processes opened as clients (or found mid-life), by their two ends as
 * the client sees them, IPv4-mapped IPv6 addresses as IPv4: a server request whose mirrored
 * tuple is here may be adopted by its caller's trace (same-node stitching), so the gate on
 * unsampled requests leaves it alone. LRU: the oldest connections are forgotten first. */
struct pp_tuple_key {
    struct pp_endpoint caller;
    struct pp_endpoint callee;
};
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct pp_tuple_key);
    __type(value, __u8);
} local_callers SEC(".maps") __weak;
/* Where the gated requests not yet reported on a connection began (conn_map_key ->): written
 * when the first of them is gated, taken by the next request's context (pp_conn_state.gate_span).
 * LRU: a connection that went quiet after gated requests is forgotten first. */
struct pp_gate_span {
    __u64 rx_start; /* ingress offset of the first gated request */
    __u64 tx_start; /* egress offset when it was read */
};
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct pp_gate_span);
} gate_spans SEC(".maps") __weak;

/* Per-CPU room for one such key: the programs that use it are near the stack limit. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_tuple_key);
} tuple_scratch SEC(".maps") __weak;

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it maps. */
static __always_inline void pp_endpoint_plain(struct pp_endpoint *e)
{
    if (e->family != PP_AF_INET6)
        return;
    for (int i = 0; i < 10; i++)
        if (e->addr[i])
            return;
    if (e->addr[10] != 0xff || e->addr[11] != 0xff)
        return;
    e->family = PP_AF_INET;
    for (int i = 0; i < 4; i++)
        e->addr[i] = e->addr[12 + i];
    for (int i = 4; i < 16; i++)
        e->addr[i] = 0;
}

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

static __always_inline void pp_ctx_count(__u32 which)
{
    pp_count(&ctx_counters, which);
}

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

/* Per-process rule masks (key tgid): which sample_rules a process may match (its service name,
 * type and resource ARN against the rules' patterns, decided by userspace). No entry:
 * sample_cfg.default_mask. An entry goes when its process exits (process_exit, and the agent on
 * the exit event) or is unselected: at most 8192 processes have a mask of their own; when full,
 * a new one cannot be written and that process uses default_mask. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, __u32);
} sample_proc_rules SEC(".maps") __weak;

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PP_MAX_SAMPLE_RULES + 1);
    __type(key, __u32);
    __type(value, struct pp_sample_stat);
} sample_stats SEC(".maps") __weak;

/* ---- Scratch buffers (per-CPU, one entry): state kept off the 512-byte stack ---- */

/* Where a request's attributes are in a text buffer. The buffer must be a map value with at
 * least 8 KiB readable from its start (reads are masked with 0x1fff); offsets and lengths are
 * below PP_MAX_CHUNK. */
struct pp_sample_text {
    __u16 host_off;
    __u16 host_len;
    __u16 method_off;
    __u16 method_len;
    __u16 path_off;
    __u16 path_len;
    __u32 now; /* the request's epoch second if the caller knows it (a minted trace id's), else 0 */
};

/* Loop state of the pattern match and the rule walk, in a per-CPU map value rather than on the
 * stack: the verifier then checks each bpf_loop step once instead of following exact values
 * from step to step. */
struct pp_glob_state {
    __u32 plen;
    __u32 toff;
    __u32 tlen;
    __u32 p;
    __u32 t;
    __u32 star; /* pattern index of the last '*', or ~0 */
    __u32 star_t;
    __s32 result; /* 1 match, 0 no match, -1 undecided */
};

struct pp_rule_state {
    struct pp_sample_text a;
    __u32 count;
    __s32 match;    /* rule index, -1 none yet, -2 undecided */
    __u32 mask;     /* rules (bit i: sample_rules[i]) the request's process may match */
    __u32 key;      /* map keys (tgid, rule index), off the stack */
    __u32 now;      /* the request's epoch second */
    __u32 overflow; /* sample_cfg.overflow */
    __u32 rule;     /* outcome: the deciding rule's index, or PP_RULE_NONE */
    __u32 sampled;  /* outcome: enum pp_sampled */
};

struct pp_sample_scratch {
    struct pp_glob_state g;
    struct pp_rule_state w;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_sample_scratch);
} sample_scratch SEC(".maps") __weak;

/* Scan state. It lives in a per-CPU map value, not on the stack: the verifier then sees unknown
 * scalars on every bpf_loop step and checks the step once, instead of following exact values
 * step after step ("sequence of jumps too complex"). */
struct pp_head_scan {
    __u32 len;
    /* request line */
    __u32 line;     /* 0 while in the request line */
    __u32 rl_state; /* 0 method, 1 path, 2 query/rest */
    __u32 method_end;
    __u32 path_start;
    __u32 path_end;
    /* header line */
    __u32 phase;
    __u32 name_pos;
    __u32 cand;
    __u32 hdr;  /* PP_H_* of the value being read, 0 other */
    __u32 seen; /* PP_H_* headers already read (the first of each counts) */
    /* Host value */
    __u32 host_start;
    __u32 host_end; /* one past the last non-space */
    __u32 host_colon;
    __u32 host_colons;
    /* X-Amzn-Trace-Id value */
    __u32 x_len;
    __u32 x_inkey; /* 1 reading a key, 0 reading a value */
    __u32 x_kpos;
    __u32 x_kcand;
    __u32 x_key;
    __u32 x_j;
    __u32 x_bad;   /* the current value is malformed */
    __u32 x_trail; /* blanks after the current value (or inside the current key) */
    __u32 x_seen;  /* keys seen (with a non-empty value) */
    __u32 x_dup;
    __u32 x_root_ok;
    __u32 x_par_ok;
    __u32 x_sampled;
    __u32 x_epoch;
    __u32 x_lo;
    __u64 x_hi;
    __u64 x_par;
    __u64 x_cur; /* Parent digits, or the Sampled decision, of the value being read */
    /* traceparent value */
    __u32 t_j;
    __u32 t_bad;
    __u32 t_trail;
    __u32 t_ver;
    __u32 t_flags;
    __u32 t_epoch;
    __u32 t_lo;
    __u32 pos; /* next byte to look at */
    __u64 t_hi;
    __u64 t_par;
    /* results: 1 valid, 2 present but rejected */
    __u32 xray;
    __u32 tp;
    __u32 want; /* PP_H_* header names looked for (Host only when pp_head_text) */
    __u32 _pad_want;
    /* a head read in several pieces (ctx_parse.bpf.h) */
    __u32 done;        /* the blank line ending the head was seen */
    __u32 base;        /* offset of the current piece in the head */
    __u64 request_pos; /* stream position of the head's first byte */
    __u64 next_pos;    /* stream position the next piece must start at */
    __u64 gen;         /* pp_conn_state.gen of the connection */
    /* the body's framing, for the gate on unsampled requests */
    __u64 cl;        /* Content-Length value */
    __u32 cl_digits; /* its digits so far (0: no Content-Length) */
    __u32 cl_bad;    /* malformed, too long or repeated */
    __u32 cl_trail;  /* blanks after its digits */
    __u32 te;        /* a Transfer-Encoding header is present */
    __u32 head_len;  /* bytes of the head, blank line included (when done) */
    __u32 gated;     /* the request was gated (pp_head_decide) */
    __u32 total;     /* pp_head_piece's `total` for the piece being scanned */
    __u32 by_rule;   /* the kernel's rules decided (pp_head_decide) */
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_head_scan);
} head_scratch SEC(".maps") __weak;

#endif /* PASSPORT_MAPS_BPF_H */
