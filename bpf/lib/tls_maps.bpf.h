/* The TLS probes' maps (probes/tls.bpf.c, and the socket syscall probes that bind SSL* to
 * sockets): declared once, here. See tls.bpf.h for how they are used. */
#ifndef PASSPORT_TLS_MAPS_BPF_H
#define PASSPORT_TLS_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"

enum pp_conn_tls {
    PP_CONN_PLAIN = 0,
    PP_CONN_TLS_RECORDS = 1,   /* first bytes were a TLS record: ciphertext, not parsed */
    PP_CONN_TLS_PLAINTEXT = 2, /* a TLS library call produced plaintext on this socket */
};

/* One SSL_read/SSL_write(_ex) call in progress on a thread (entry -> return). */
struct pp_tls_call {
    __u64 ssl;
    __u64 buf;
    __u64 len_ptr; /* _ex variants: size_t *readbytes / *written; else 0 */
    __u64 enter_ns;
    __s32 fd;       /* socket the thread used during the call, -1 if none */
    __u32 num;      /* bytes asked for (SSL_write: what a successful call writes) */
    __u8 direction; /* enum pp_direction: SSL_read = ingress */
    __u8 emitted;   /* SSL_write plaintext already sent, at the call's first socket write */
    __u8 _pad[6];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64); /* pid_tgid */
    __type(value, struct pp_tls_call);
} tls_calls SEC(".maps") __weak;

struct pp_tls_key {
    __u64 ssl;
    __u32 tgid;
    __u32 _pad;
};

struct pp_tls_fd {
    __u64 gen; /* conns generation when bound: a reused fd number does not match */
    __s32 fd;
    /* An SSL_write of this many bytes failed (non-blocking socket) after its plaintext was sent
     * at its first socket write: OpenSSL requires the retry to pass the same arguments, and
     * the retry must not send the bytes again. 0: none. */
    __u32 retry_num;
};

/* SSL* -> socket, per process. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct pp_tls_key);
    __type(value, struct pp_tls_fd);
} tls_fds SEC(".maps") __weak;

/* Processes with TLS uprobes attached (tgid -> 1), the agent's list; the socket probes test the
 * same set as pid_bits slot PP_BITS_TLS. Only their socket reads are remembered in tls_last_rx. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, __u8);
} tls_procs SEC(".maps") __weak;

/* Last socket fd each thread of a tls_procs process read from (memory-BIO SSL_read). */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64); /* pid_tgid */
    __type(value, __s32);
} tls_last_rx SEC(".maps") __weak;

/* A memory-BIO runtime writes the ciphertext of an SSL_write right after it (node: same tick,
 * microseconds later); a pending plaintext older than this is dropped instead of sent. */
#define PP_TLS_PENDING_MAX_NS (50ULL * 1000 * 1000)

/* Plaintext of an SSL_write whose socket was not known yet (memory BIO, first write of a
 * connection): sent when the thread's next socket write names the socket. While pending, the
 * event's `pos` field holds the SSL* (the real position is assigned when it is sent). Only its
 * first PP_MAX_CHUNK bytes are kept. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 256);
    __type(key, __u64); /* pid_tgid */
    __type(value, struct pp_data_event);
} tls_pending SEC(".maps") __weak;

/* Selected processes that mapped executable memory since the agent last looked (tgid -> 1): the
 * agent rescans their /proc/PID/maps for a libssl loaded late (dlopen, python `import ssl`). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, __u32);
    __type(value, __u8);
} tls_rescan SEC(".maps") __weak;

#endif /* PASSPORT_TLS_MAPS_BPF_H */
