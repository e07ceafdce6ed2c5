/* Control of the BPF helper model (bpf_stub.c) for host tests and fuzz targets; no BPF types. */
#ifndef PASSPORT_STUB_BPF_STUB_H
#define PASSPORT_STUB_BPF_STUB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Empties every map and the ring buffer, and restarts the clock and the random numbers. */
void pp_stub_reset(void);
/* bpf_ringbuf_reserve/output fail (ring full) while set. */
void pp_stub_set_ringbuf_full(int full);
/* The last record submitted to the ring buffer (NULL when none since the reset). */
const void *pp_stub_ringbuf_last(size_t *size);

/* Every record submitted since the reset, in order (at most PP_STUB_RINGBUF_LOG of them). */
#define PP_STUB_RINGBUF_LOG 4096
size_t pp_stub_ringbuf_count(void);
const void *pp_stub_ringbuf_at(size_t i, size_t *size);

/* Fake sockets for the socket programs: bpf_skc_to_tcp_sock(sk) gives tcp (NULL: not TCP). */
void pp_stub_sock_set_tcp(const void *sk, void *tcp);
/* The message the sk_msg helpers act on (md: the program's struct sk_msg_md): its bytes are
 * copied in; pp_stub_msg_end gives the bytes the kernel would send (valid until the next begin).
 * Each pull hands out a fresh allocation of exactly [start, end), so ASan sees any access
 * outside it; its bytes are written back at the next helper call or at the end. */
void pp_stub_msg_begin(void *md, const uint8_t *data, size_t len);
const uint8_t *pp_stub_msg_end(size_t *len);
/* Helper failure injection: the next n-th (1-based) push or pull fails; 0 never. */
void pp_stub_msg_fail_at(unsigned push_nth, unsigned pull_nth);

#ifdef __cplusplus
}
#endif

#endif /* PASSPORT_STUB_BPF_STUB_H */
