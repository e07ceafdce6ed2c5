/* Passport's kernel/userspace ABI: the only header shared by the BPF programs and the C++ side.
 *
 * Every record in the events ring buffer starts with struct pp_event_header; its first byte is
 * the record kind, so the decoder can dispatch before it trusts anything else. Records carrying
 * payload (pp_data_event) are sent as "fixed part + captured bytes", never the full array.
 *
 * Rules: fixed-width integers only, explicit padding (BPF is built with -Wpadded -Werror), no
 * pointers, no bool, no bitfields. Enums name values; fields that hold them are __u8/__u32.
 * Layout is pinned by the static asserts at the bottom and by userspace/events/abi_layout.cpp.
 */
#ifndef PASSPORT_ABI_H
#define PASSPORT_ABI_H

#if defined(__BPF__) || defined(__bpf__)
/* BPF side: vmlinux.h already defines __u8 … __u64. */
#else
/* Userspace: the kernel's own fixed-width types, so libbpf headers and this one agree. */
#include <linux/types.h>
#endif

/* Bumped on any change to a struct below; the loader refuses a BPF object with another value. */
#define PP_ABI_VERSION 5

/* Bytes of payload copied per syscall. A power of two: the BPF side masks lengths with it. */
#define PP_MAX_CHUNK 4096
/* Bytes copied in full from the start of a request (the head plus what follows it), over as
 * many syscalls as it takes, in PP_MAX_CHUNK pieces: request heads up to this size are seen
 * whole. Other syscalls are copied up to PP_MAX_CHUNK. */
#define PP_HEAD_BUDGET (8 * PP_MAX_CHUNK)
/* iovec segments looked at for readv/writev/sendmsg/recvmsg. */
#define PP_MAX_IOV  8
#define PP_COMM_LEN 16
#define PP_PATH_LEN 256

enum pp_event_kind {
    PP_EV_CONN_OPEN = 1,  /* a TCP connection of a traced process became known */
    PP_EV_DATA = 2,       /* bytes read or written on a tracked connection */
    PP_EV_CONN_CLOSE = 3, /* the process closed the fd of a tracked connection */
    PP_EV_PROC_EXEC = 4,  /* any process exec'd (userspace applies --exe selectors) */
    PP_EV_PROC_EXIT = 5,  /* a traced process exited (its pending requests end here) */
    PP_EV_TRACE_CTX = 6,  /* the kernel gave a server request its trace context */
    PP_EV_INJECT = 7, /* the kernel injected (or found) X-Amzn-Trace-Id in an outgoing request */
    PP_EV_SDK_DATAGRAM = 8, /* a traced process sent an X-Ray daemon datagram (once per process) */
    PP_EV_GO_HANDOFF = 9,   /* a Go process's thread got the context of the request it writes */
};

/* Where a data event's bytes come from. */
enum pp_data_source {
    PP_SRC_SOCKET = 0, /* read/write syscalls on the socket (plaintext or ciphertext) */
    PP_SRC_TLS = 1,    /* plaintext from a TLS library call (SSL_read/SSL_write...) */
};

/* A sampling decision as carried in trace headers. */
enum pp_sampled {
    PP_SAMPLED_NO = 0,
    PP_SAMPLED_YES = 1,
    PP_SAMPLED_UNKNOWN = 2, /* "Sampled=?" or absent: the receiver decides */
};

/* Where a kernel trace context came from. */
enum pp_ctx_source {
    PP_CTX_NONE = 0,
    PP_CTX_XRAY_HEADER = 1, /* the request's X-Amzn-Trace-Id */
    PP_CTX_TRACEPARENT = 2, /* the request's W3C traceparent, converted */
    PP_CTX_MINTED = 3,      /* no usable header: new trace id, kernel sampling decision */
};

enum pp_role {
    PP_ROLE_UNKNOWN = 0, /* socket found mid-life (opened before the agent started) */
    PP_ROLE_SERVER = 1,  /* returned by accept/accept4 */
    PP_ROLE_CLIENT = 2,  /* connected by connect */
};

enum pp_direction {
    PP_DIR_INGRESS = 0, /* read by the process */
    PP_DIR_EGRESS = 1,  /* written by the process */
};

enum pp_syscall {
    PP_SYS_READ = 0,
    PP_SYS_WRITE = 1,
    PP_SYS_READV = 2,
    PP_SYS_WRITEV = 3,
    PP_SYS_RECVFROM = 4,
    PP_SYS_SENDTO = 5,
    PP_SYS_RECVMSG = 6,
    PP_SYS_SENDMSG = 7,
    PP_SYS_SENDFILE = 8, /* payload never copied (no user buffer): len only, as a gap */
    PP_SYS_SENDMMSG = 9, /* datagrams only (PP_EV_SDK_DATAGRAM): no data events */
};

/* Why the kernel side lost something. Indexes the per-CPU drop_counters array. */
enum pp_drop_reason {
    PP_DROP_RINGBUF_FULL = 0,  /* bpf_ringbuf_output failed: userspace too slow or ring too small */
    PP_DROP_ARGS_MAP_FULL = 1, /* enter->exit stash could not be stored */
    PP_DROP_CONN_MAP_FULL = 2, /* connection table full (LRU evicted or update failed) */
    PP_DROP_READ_USER = 3,     /* bpf_probe_read_user of the payload failed (page not present) */
    PP_DROP_TRUNCATED = 4,     /* syscalls whose payload exceeded PP_MAX_CHUNK (bytes not copied) */
    PP_DROP_IOV_LIMIT = 5,     /* iovec segments beyond PP_MAX_IOV not copied */
    PP_DROP_TAIL_CALL = 6,     /* a data syscall's exit could not reach the shared exit program */
    PP_DROP_REASON_COUNT = 7,
};

/* Entries added to and deleted from the LRU maps conns and thread_ctx (per-CPU map lru_counts).
 * An LRU map also loses entries the kernel evicts to make room; the agent reads how many by
 * comparing these counts with the entries present (evicted = added - deleted - present). */
enum pp_lru_count {
    PP_LRU_CONNS_ADDED = 0,
    PP_LRU_CONNS_DELETED = 1,
    PP_LRU_CTX_ADDED = 2,
    PP_LRU_CTX_DELETED = 3,
    PP_LRU_COUNT = 4,
};

/* Common prefix of every record. */
struct pp_event_header {
    __u8 kind; /* enum pp_event_kind */
    __u8 _pad[3];
    __u32 tgid; /* process id (host pid namespace) */
    __u32 tid;  /* thread id (host pid namespace) */
    __u32 _pad2;
    __u64 ts_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) when the event happened / syscall entered */
};

/* Identity of a connection: the fd plus a generation, so a reused fd is a new connection. */
struct pp_conn_id {
    __u32 tgid;
    __s32 fd;
    __u64 gen; /* monotonic ns when the kernel side first saw this socket: unique per (tgid, fd) */
};

/* An IPv4 or IPv6 endpoint. IPv4 addresses use addr[0..3]. */
struct pp_endpoint {
    __u16 family; /* AF_INET (2) or AF_INET6 (10) */
    __u16 port;   /* host byte order */
    __u8 addr[16];
};

struct pp_conn_open_event {
    struct pp_event_header hdr;
    struct pp_conn_id conn;
    struct pp_endpoint local;
    struct pp_endpoint remote;
    __u32 netns; /* network namespace inode: tuples repeat across namespaces */
    __u8 role;   /* enum pp_role */
    __u8 _pad[3];
};

/* Bytes of one syscall. Sent as offsetof(struct pp_data_event, msg) + captured bytes. */
struct pp_data_event {
    struct pp_event_header hdr; /* ts_ns = syscall entry */
    struct pp_conn_id conn;
    __u64 exit_ns;  /* syscall exit (CLOCK_MONOTONIC) */
    __u64 pos;      /* stream offset of the first byte, per direction, since the socket was seen */
    __u32 len;      /* bytes the syscall moved (its return value) */
    __u32 captured; /* bytes present in msg: min(len, PP_MAX_CHUNK), 0 if the copy failed */
    __u8 direction; /* enum pp_direction */
    __u8 syscall;   /* enum pp_syscall */
    __u8 role;      /* enum pp_role, as known to the kernel side */
    __u8 source;    /* enum pp_data_source */
    __u8 _pad[4];
    __u8 msg[PP_MAX_CHUNK];
};

struct pp_conn_close_event {
    struct pp_event_header hdr;
    struct pp_conn_id conn;
    __u64 rx_bytes; /* totals over the connection's tracked life */
    __u64 tx_bytes;
};

/* Exec of any process, and exit of a traced one. */
struct pp_proc_event {
    struct pp_event_header hdr;
    __u32 ppid;
    __s32 exit_code; /* PROC_EXIT only */
    char comm[PP_COMM_LEN];
    char filename[PP_PATH_LEN]; /* PROC_EXEC only: path as passed to execve */
};

/* A trace context as the kernel keeps it, ids in binary. The X-Ray trace id
 * "1-<8 hex>-<24 hex>" is trace_epoch (big-endian digits of the 8) and trace_rand (the 24);
 * 64-bit ids print as 16 lowercase hex digits. Kept per thread (map thread_ctx, key pid_tgid)
 * from a server request's first read until the thread starts another request; threads started
 * meanwhile inherit it. */
struct pp_trace_ctx {
    __u32 trace_epoch;   /* epoch seconds part of the trace id */
    __u8 trace_rand[12]; /* 96 random bits of the trace id, in printing order */
    __u64 segment_id;    /* the server request's segment id; never 0 */
    __u64 parent_id;     /* the caller's id from the incoming header; 0: none */
    __u8 sampled;        /* enum pp_sampled */
    __u8 source;         /* enum pp_ctx_source */
    __u8 _pad[6];
    struct pp_conn_id conn; /* the server connection the request arrived on */
    __u64 request_pos;      /* ingress stream offset of the request's first byte on conn */
};

/* Kept by userspace in map clock_sync (one entry): CLOCK_REALTIME - CLOCK_MONOTONIC, so the
 * kernel can print epoch seconds (bpf_ktime_get_ns() + mono_to_epoch_ns) in new trace ids. */
struct pp_clock {
    __s64 mono_to_epoch_ns;
    __u64 updated_mono_ns; /* when userspace last wrote it */
};

/* PP_EV_TRACE_CTX: the context the kernel gave a server request at its first read (also stored
 * in thread_ctx for the reading thread). Emitted just before that read's data events. */
struct pp_trace_ctx_event {
    struct pp_event_header hdr; /* ts_ns = exit of the read that returned the request's start */
    struct pp_trace_ctx ctx;
    __u16 rule;    /* sampling rule that decided (index into sample_rules), or PP_RULE_NONE */
    __u8 rejected; /* PP_REJECT_* bits: headers present but unusable (then not the source) */
    __u8 _pad[5];
    /* unsampled = 1: requests before this one on conn were gated (not sampled; the kernel
     * shipped none of their bytes, nor their responses', and no record of their own;
     * docs/architecture.md, "Unsampled requests"): ingress positions from unsampled_rx_pos and
     * egress positions from unsampled_tx_pos, each up to the next position of that direction
     * that reaches userspace, belong to them. */
    __u64 unsampled_rx_pos;
    __u64 unsampled_tx_pos;
    __u8 unsampled;
    __u8 _pad2[7];
};

/* pp_trace_ctx_event.rule when no kernel rule decided (header decision, or left to userspace).
 * Index PP_MAX_SAMPLE_RULES is the default rule. */
#define PP_RULE_NONE          0xffff
#define PP_REJECT_XRAY        1 /* X-Amzn-Trace-Id present but malformed/hostile */
#define PP_REJECT_TRACEPARENT 2 /* traceparent present but malformed */

/* Kernel trace-context counters (per-CPU array ctx_counters), kept apart from drop_counters. */
enum pp_ctx_counter {
    PP_CTXC_XRAY = 0,          /* contexts taken from X-Amzn-Trace-Id */
    PP_CTXC_TRACEPARENT = 1,   /* contexts converted from traceparent */
    PP_CTXC_MINTED = 2,        /* new traces */
    PP_CTXC_XRAY_REJECTED = 3, /* X-Amzn-Trace-Id malformed/hostile: treated as absent */
    PP_CTXC_TP_REJECTED = 4,   /* traceparent malformed: treated as absent */
    PP_CTXC_SAMPLE_KERNEL = 5, /* sampling decided by the kernel rules */
    PP_CTXC_SAMPLE_DEFERRED =
        6, /* rules not decidable in the kernel: Sampled unknown, userspace decides */
    PP_CTXC_NO_CLOCK = 7,      /* clock_sync not written yet: minted epoch 0, sampling deferred */
    PP_CTXC_INHERITED = 8,     /* contexts copied to a new thread or child process */
    PP_CTXC_STORE_FAILED = 9,  /* thread_ctx update failed */
    PP_CTXC_HEAD_UNENDED = 10, /* request heads whose end was not seen within PP_HEAD_BUDGET:
                                  decided from the part read */
    PP_CTXC_RESTORED = 11,     /* a closing connection's request gave its thread's context back
                                  to an earlier request still unanswered there (event loops) */
    /* The gate on unsampled requests (docs/architecture.md, "Unsampled requests"). */
    PP_CTXC_GATED = 12,          /* unsampled requests whose bytes were not shipped */
    PP_CTXC_GATED_RX_BYTES = 13, /* request bytes not shipped (gated requests) */
    PP_CTXC_GATED_TX_BYTES = 14, /* response bytes not shipped (gated requests) */
    /* Requests captured in full although the gate was on, by reason: */
    PP_CTXC_GATE_FB_DEFERRED = 15,     /* decision left to userspace (Sampled unknown) */
    PP_CTXC_GATE_FB_PIPELINED = 16,    /* unsampled, bytes beyond the request in the same read */
    PP_CTXC_GATE_FB_FRAMING = 17,      /* unsampled, body framing not followed (Transfer-Encoding,
                                          bad or repeated Content-Length) */
    PP_CTXC_GATE_FB_LOCAL_CALLER = 18, /* unsampled by a rule, but a traced process on this node
                                          has a connection to this one (stitching may adopt it) */
    PP_CTXC_GATE_FB_TLS = 19,          /* unsampled, plaintext from the TLS uprobes */
    PP_CTXC_GATE_FB_HEAD_SPLIT = 20,   /* unsampled, head not whole in the read's first piece */
    PP_CTXC_GATE_FB_OFF = 21,          /* unsampled, gate turned off (--no-sample-gate) */
    PP_CTXC_GATE_RESUMED_OTHER = 22,   /* after a gated request's body, bytes that did not start a
                                          request: shipped from there on */
    PP_CTXC_COUNT = 23,
};

/* Local sampling rules compiled for the kernel (userspace/sample/kernel_rules.*). Patterns are
 * matched case-insensitively with '*' and '?'; a rule whose pattern is longer than PP_GLOB_MAX,
 * or beyond PP_MAX_SAMPLE_RULES, is "deferred": a request that reaches it in rule order gets
 * PP_SAMPLED_UNKNOWN and userspace decides. sample_rules[PP_MAX_SAMPLE_RULES] is the default. */
#define PP_MAX_SAMPLE_RULES 16
#define PP_GLOB_MAX         64
struct pp_sample_rule {
    __u32 fixed_target; /* reservoir: requests per wall-clock second */
    __u32 rate_u32;     /* sampled when bpf_get_prandom_u32() < rate_u32 (unless rate_all) */
    __u8 rate_all;      /* rate >= 1 */
    __u8 deferred;      /* could not be compiled: defer to userspace */
    __u8 host_len;
    __u8 method_len;
    __u8 path_len;
    __u8 _pad[3];
    char host[PP_GLOB_MAX];
    char method[PP_GLOB_MAX];
    char path[PP_GLOB_MAX];
    /* Centralized rules (X-Ray GetSamplingTargets): fixed_target is the reservoir quota, valid
     * until `expires` (epoch seconds; 0: no end, as for local rules). Without a valid quota
     * (`borrow` set, or past `expires`), the rule borrows at most one request a second, counted
     * as borrowed (https://docs.aws.amazon.com/xray/latest/devguide/xray-console-sampling.html). */
    __u32 expires;
    __u8 borrow;
    __u8 _pad2[3];
};

struct pp_sample_cfg {
    __u32 rule_count; /* rules in sample_rules[0..rule_count) */
    __u8 enabled;     /* 0: the kernel never decides (every minted trace is left to userspace) */
    __u8 overflow;    /* more rules than PP_MAX_SAMPLE_RULES: no match among them defers */
    __u8 _pad[2];
    /* Rules (bit i: sample_rules[i]) a process may match when sample_proc_rules has no entry
     * for it; an entry there replaces this mask. Rules with a ServiceName/ServiceType/ResourceARN
     * pattern are matched per process by userspace, which knows the process's identity. */
    __u32 default_mask;
};

/* Per-rule sampling statistics (per-CPU array sample_stats, index as sample_rules), summed and
 * reported to X-Ray GetSamplingTargets by userspace. */
struct pp_sample_stat {
    __u64 requests; /* requests that matched the rule (kernel decisions only) */
    __u64 sampled;  /* of those, sampled from the quota or the fixed rate */
    __u64 borrowed; /* of those, sampled by borrowing (not counted in `sampled`) */
};

/* Per-rule reservoir (shared by all CPUs, updated with atomics). */
struct pp_reservoir {
    __u64 second; /* epoch second the count belongs to */
    __u64 used;
};

/* Configuration written by userspace into .rodata before load. */
struct pp_config {
    __u32 self_tgid;   /* the agent itself: never traced */
    __u8 trace_all;    /* 1: every process but self; 0: only tgids in traced_pids */
    __u8 filter_ports; /* 1: server connections only on ports in server_ports */
    __u8 _pad[2];      /* explicit padding to 8 bytes */
};

/* Address family numbers as the kernel passes them (include/linux/socket.h). */
#define PP_AF_INET  2
#define PP_AF_INET6 10

/* ---- Process selection (map pid_bits), written by the agent through a memory mapping ---- */

/* One bit per tgid covering every pid the kernel can hand out (PID_MAX_LIMIT, 2^22 on 64-bit):
 * 2^16 words of 64 bits, 512 KiB per slot. */
#define PP_PID_BITMAP_WORDS (1u << 16)
/* Slots of pid_bits (array index): the selection, the processes with TLS uprobes, and the selected
 * processes whose outgoing requests are never injected (--k8s-no-inject-namespace). */
#define PP_BITS_TRACED    0
#define PP_BITS_TLS       1
#define PP_BITS_NO_INJECT 2
#define PP_BITS_SLOTS     3

struct pp_pid_bitmap {
    __u64 w[PP_PID_BITMAP_WORDS]; /* bit (tgid & 63) of word (tgid >> 6) */
};

/* ---- Tracked connections (map conns, key tgid << 32 | fd) ---- */

/* The syscall probes' state of one TCP connection. The agent reads tx_pos to number an adopted
 * socket's bytes as the probes do. */
struct pp_conn_state {
    __u64 gen;    /* pp_conn_id.gen of the connection */
    __u64 rx_pos; /* ingress stream offset: bytes read so far (socket syscalls) */
    __u64 tx_pos; /* egress stream offset: bytes written so far (socket syscalls) */
    /* Bytes still to copy in full, per direction, after a syscall whose data began with an
     * HTTP method: a request head larger than PP_MAX_CHUNK (big cookies) is then captured whole
     * even when it arrives through several large reads. */
    __u32 rx_head_budget;
    __u32 tx_head_budget;
    __u8 role; /* enum pp_role */
    /* enum pp_conn_tls (lib/tls.bpf.h): once set, the socket syscalls carry ciphertext and
     * emit no payload; TLS plaintext uses the tls_* positions and the head budgets above. */
    __u8 tls;
    __u8 _pad[6];     /* explicit padding to the next u64 */
    __u64 tls_rx_pos; /* plaintext positions from SSL_read / SSL_write, per direction */
    __u64 tls_tx_pos;
    /* 1 while a server request head read in part waits for its next bytes (its scan state is
     * in head_pending, bpf/lib/ctx_parse.bpf.h): only then does a read look it up. */
    __u8 head_pending;
    /* The gate on unsampled requests (server connections, socket syscalls): gate_rx is 1 while
     * ingress bytes before gate_body_end (the end of the last gated request's body) are not
     * shipped; gate_tx is 1 while egress bytes are not shipped, until an egress syscall that
     * starts a response ("HTTP/") after gate_rx went back to 0. */
    __u8 gate_rx;
    __u8 gate_tx;
    /* 1 while gated requests not yet reported to userspace precede (their stream positions are
     * in the BPF map gate_spans): the next request's PP_EV_TRACE_CTX says so. */
    __u8 gate_span;
    __u8 _pad2[4];
    __u64 gate_body_end;
};

/* ---- Header injection (sock_ops + sk_msg, bpf/probes/inject.bpf.c) ---- */

/* The injected line: "X-Amzn-Trace-Id: Root=1-<8>-<24>;Parent=<16>;Sampled=<1|0|?>\r\n". */
#define PP_INJECT_LINE_LEN 93

/* What happened to one outgoing request. */
enum pp_inject_outcome {
    PP_INJ_INJECTED = 1,    /* the header line was inserted (after the request line, or before
                               the blank line of a head written over several sends) */
    PP_INJ_APP_HEADER = 2,  /* the request already had X-Amzn-Trace-Id: bytes left identical */
    PP_INJ_SKIP_SPLIT = 3,  /* the head's end was split inside its blank line: not injected */
    PP_INJ_SKIP_FAILED = 4, /* a helper failed: the request went out unmodified */
    PP_INJ_LEAVE = 5,       /* no request: an adopted socket must leave the sockhash (agent removes
                               it); `rule` holds the enum pp_inject_leave reason */
    PP_INJ_REWRITTEN = 6,   /* the request carried, byte for byte, the Root and Parent of a request
                               its process received (a proxy forwarding it): Parent's 16 digits
                               were replaced in place by subsegment_id; ctx is that request's */
};

/* Why a socket leaves the sockhash (a socket in a sockhash gets the kernel's tcp_bpf receive
 * path, whose blocking recv() can return EAGAIN after a wake-up without data). */
enum pp_inject_leave {
    PP_LEAVE_NOT_HTTP = 1, /* not HTTP/1, or its framing could not be followed */
    PP_LEAVE_BLOCKING = 2, /* the socket's file is blocking (no O_NONBLOCK) */
    PP_LEAVE_SNDBUF = 3,   /* the send buffer filled (SOCK_NOSPACE): write-space wake-ups follow */
};

/* Per-CPU counters of the injection programs (map inject_counters), summed by the agent. */
enum pp_inject_counter {
    PP_INJC_MARKED = 0,        /* connects of selected processes marked for injection */
    PP_INJC_DENIED = 1,        /* connects to a denied port or CIDR */
    PP_INJC_ADDED = 2,         /* sockets added to the sockhash */
    PP_INJC_EBUSY = 3,         /* socket already owned by another sk_msg user (not touched) */
    PP_INJC_ADD_FAILED = 4,    /* other sockhash failures */
    PP_INJC_INJECTED = 5,      /* requests that got the header */
    PP_INJC_APP_HEADER = 6,    /* requests that already had one */
    PP_INJC_SKIP_SPLIT = 7,    /* requests whose head began in an earlier send */
    PP_INJC_SKIP_FAILED = 8,   /* helper failures (message left unmodified) */
    PP_INJC_NOT_HTTP = 9,      /* sockets whose first bytes were not HTTP/1: left alone */
    PP_INJC_FRAMING_LOST = 10, /* sockets where framing could not be followed: injection stopped */
    PP_INJC_NO_STORAGE = 11,   /* socket storage unavailable */
    PP_INJC_RESYNCED = 12,     /* body bytes the kernel sent without running sk_msg, skipped */
    PP_INJC_SPLIT_INJECTED =
        13, /* heads written over several sends, injected before the blank line */
    PP_INJC_LEFT_NOT_HTTP = 14, /* sockets removed from the sockhash: not HTTP/1 or framing lost */
    PP_INJC_LEFT_BLOCKING = 15, /* sockets removed from the sockhash: blocking file */
    PP_INJC_LEFT_SNDBUF = 16,   /* sockets removed from the sockhash: send buffer filled */
    PP_INJC_KTHREAD = 17,       /* connects by kernel threads (never marked) */
    PP_INJC_NO_INJECT = 18,     /* connects of selected processes marked never to inject */
    PP_INJC_REWRITTEN = 19,     /* forwarded headers whose Parent was replaced in place */
    PP_INJC_COUNT = 20,
};

/* PP_EV_INJECT: one outgoing request seen by the injection program (hdr: the writing thread).
 * Matches the client request of the syscall probes by (tgid, local, remote, netns) and
 * app_pos == the egress stream offset of the request's first byte. */
struct pp_inject_event {
    struct pp_event_header hdr;
    struct pp_endpoint local;
    struct pp_endpoint remote;
    __u32 netns;
    __u8 outcome;         /* enum pp_inject_outcome */
    __u8 ctx_from_thread; /* 1: ctx is the writing thread's server request; 0: minted for this call
                           */
    __u16 rule;           /* minted: the kernel sampling rule that decided, or PP_RULE_NONE */
    __u64 app_pos; /* bytes the app wrote on this socket before the request (injected excluded) */
    __u64 subsegment_id; /* the Parent written into the header (0 when nothing was injected) */
    __u64 socket_cookie;
    struct pp_trace_ctx ctx;
};

/* Key of map inject_deny_cidrs (LPM trie): a destination the injection never touches. */
struct pp_deny_key {
    __u32 prefixlen; /* bits of addr that count; IPv4 as ::ffff:a.b.c.d (its prefix + 96) */
    __u8 addr[16];   /* network byte order */
};

/* A socket the agent adopted (a TCP connection a selected process opened before the agent
 * started, or before the process was selected): map inject_adopt, socket cookie -> this. The
 * sk_msg program creates the socket's injection state from it on the socket's first message
 * after adoption, at a request boundary (docs/injection.md, "Connections opened earlier"). */
struct pp_inject_adopt {
    struct pp_endpoint local;
    struct pp_endpoint remote;
    __u64 app_pos; /* bytes the syscall probes counted on this connection so far (egress) */
    __u32 netns;
    __u32 _pad;
};

/* ---- Processes that report to X-Ray themselves (an X-Ray SDK in the process) ---- */

/* The header line that starts every datagram sent to the X-Ray daemon, as the SDKs write it:
 * without spaces (Node, Python) or with them (Go, Java). The probes compare the first bytes of a
 * traced process's datagrams with these. */
#define PP_XRAY_DGRAM_HDR        "{\"format\":\"json\",\"version\":1}"
#define PP_XRAY_DGRAM_HDR_LEN    29
#define PP_XRAY_DGRAM_HDR_SP     "{\"format\": \"json\", \"version\": 1}"
#define PP_XRAY_DGRAM_HDR_SP_LEN 32

/* PP_EV_SDK_DATAGRAM: a traced process sent, on a UDP socket, a datagram that starts with the
 * daemon header. Reported once per process (map sdk_reported, cleared at exec and exit). */
struct pp_sdk_event {
    struct pp_event_header hdr; /* ts_ns = the send syscall's entry */
    __u8 syscall;               /* enum pp_syscall that sent it */
    __u8 spaced;                /* 1: the header with spaces (PP_XRAY_DGRAM_HDR_SP) */
    __u8 _pad[6];
};

/* PP_EV_GO_HANDOFF (bpf/probes/go_http.bpf.c): the thread in hdr is about to write an outgoing
 * net/http request made for the server request (ctx_conn, request_pos); its thread context is
 * that request's now, handed over by the Go transport's own call, not inferred. */
struct pp_go_handoff_event {
    struct pp_event_header hdr; /* ts_ns = entry of net/http.(*Request).write */
    struct pp_conn_id ctx_conn; /* the server connection the request arrived on; all zero: the
                                   call's request is unknown (nothing was handed over) */
    __u64 request_pos;          /* ingress offset of the request's first byte on ctx_conn */
};
#define PP_OFFSETOF(t, f) __builtin_offsetof(t, f)
#if defined(__cplusplus)
#define PP_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define PP_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

PP_STATIC_ASSERT(sizeof(struct pp_event_header) == 24, "pp_event_header layout");
PP_STATIC_ASSERT(sizeof(struct pp_conn_id) == 16, "pp_conn_id layout");
PP_STATIC_ASSERT(sizeof(struct pp_endpoint) == 20, "pp_endpoint layout");
PP_STATIC_ASSERT(sizeof(struct pp_conn_open_event) == 88, "pp_conn_open_event layout");
PP_STATIC_ASSERT(PP_OFFSETOF(struct pp_data_event, msg) == 72, "pp_data_event layout");
PP_STATIC_ASSERT(sizeof(struct pp_conn_close_event) == 56, "pp_conn_close_event layout");
PP_STATIC_ASSERT(sizeof(struct pp_proc_event) == 304, "pp_proc_event layout");
PP_STATIC_ASSERT(sizeof(struct pp_trace_ctx) == 64, "pp_trace_ctx layout");
PP_STATIC_ASSERT(sizeof(struct pp_clock) == 16, "pp_clock layout");
PP_STATIC_ASSERT(sizeof(struct pp_trace_ctx_event) == 120, "pp_trace_ctx_event layout");
PP_STATIC_ASSERT(sizeof(struct pp_sample_rule) == 24 + 3 * PP_GLOB_MAX, "pp_sample_rule layout");
PP_STATIC_ASSERT(sizeof(struct pp_sample_cfg) == 12, "pp_sample_cfg layout");
PP_STATIC_ASSERT(sizeof(struct pp_sample_stat) == 24, "pp_sample_stat layout");
PP_STATIC_ASSERT(sizeof(struct pp_reservoir) == 16, "pp_reservoir layout");
PP_STATIC_ASSERT(sizeof(struct pp_inject_event) == 160, "pp_inject_event layout");
PP_STATIC_ASSERT(PP_OFFSETOF(struct pp_inject_event, ctx) == 96, "pp_inject_event layout");
PP_STATIC_ASSERT(sizeof(struct pp_inject_adopt) == 56, "pp_inject_adopt layout");
PP_STATIC_ASSERT(sizeof(struct pp_config) == 8, "pp_config layout");
PP_STATIC_ASSERT(sizeof(struct pp_conn_state) == 72, "pp_conn_state layout");
PP_STATIC_ASSERT(sizeof(struct pp_deny_key) == 20, "pp_deny_key layout");
PP_STATIC_ASSERT(sizeof(struct pp_sdk_event) == 32, "pp_sdk_event layout");
PP_STATIC_ASSERT(sizeof(struct pp_go_handoff_event) == 48, "pp_go_handoff_event layout");
PP_STATIC_ASSERT((PP_MAX_CHUNK & (PP_MAX_CHUNK - 1)) == 0, "PP_MAX_CHUNK must be a power of two");

#endif /* PASSPORT_ABI_H */
