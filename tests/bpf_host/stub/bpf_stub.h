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

#ifdef __cplusplus
}
#endif

#endif /* PASSPORT_STUB_BPF_STUB_H */
