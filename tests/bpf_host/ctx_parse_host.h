/* The kernel's server-side trace-context scan (bpf/lib/ctx_parse.bpf.h, pp_head_open/piece)
 * run in userspace on the BPF helper model of bpf_stub/: for the ctx_parse fuzz target and host
 * tests. No BPF types in this interface. */
#ifndef PASSPORT_CTX_PARSE_HOST_H
#define PASSPORT_CTX_PARSE_HOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pp_host_head_result {
    /* The scan's verdicts: 0 header absent, 1 valid, 2 present but rejected. */
    uint32_t xray;
    uint32_t traceparent;
    /* The PP_EV_TRACE_CTX record (ring buffer; when full, the copy stored for the thread). */
    uint32_t source;   /* enum pp_ctx_source */
    uint32_t sampled;  /* enum pp_sampled */
    uint32_t rejected; /* PP_REJECT_* */
    char root[36];     /* "1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy", lower hex, NUL-terminated */
    uint64_t parent_id;
    int emitted;    /* a record reached the ring buffer */
    int stored;     /* thread_ctx holds the same context as the record */
    int pending;    /* the head's end was not read yet: its scan waits for the next read */
    int head_ended; /* the scan saw the blank line ending the head */
};

/* Scans head[0..len) as a server request arriving in one read (cut into PP_MAX_CHUNK pieces,
 * PP_HEAD_BUDGET bytes at most, as io_exit does). The capture buffer's bytes past the request are
 * filled with `stale` repeated (the kernel's buffer holds earlier data there). head_text: the
 * loader's pp_head_text (1 when sampling rules read method, path or Host). ring_full: the ring
 * buffer rejects the record. */
void pp_host_head_scan(const uint8_t *head, size_t len, const uint8_t *stale, size_t stale_len,
                       int head_text, int ring_full, struct pp_host_head_result *out);

/* The same, the request arriving in reads of read_size bytes (0: one read). */
void pp_host_head_scan_reads(const uint8_t *head, size_t len, size_t read_size,
                             const uint8_t *stale, size_t stale_len, int head_text, int ring_full,
                             struct pp_host_head_result *out);

#ifdef __cplusplus
}
#endif

#endif /* PASSPORT_CTX_PARSE_HOST_H */
