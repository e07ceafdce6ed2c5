/* The kernel's sk_msg injection program (bpf/probes/inject.bpf.c, inject_msg) run in userspace
 * on the BPF helper model of stub/: fake sockets, one message at a time, the bytes the kernel
 * would send, the PP_EV_INJECT records and the counters. No BPF types in this interface. */
#ifndef PASSPORT_INJECT_HOST_H
#define PASSPORT_INJECT_HOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Forgets every socket, record and counter (maps, clock and random numbers start over). */
void pp_inj_host_reset(void);

/* A new fake TCP socket (nonblocking file, send buffer not full), at a request boundary: marked
 * as at connect, or adopted (its state created by its first message from the inject_adopt entry
 * the agent would write, with app_pos 0). Socket ids count from 0; at most 16 per reset. */
int pp_inj_host_socket(int adopted);

/* Runs inject_msg on one message of socket id: `in` as written by the app; *out (valid until the
 * next call) is what the kernel sends. The socket's write_seq then advances by *out_len. Returns
 * the program's verdict (1: SK_PASS). */
int pp_inj_host_send(int id, const uint8_t *in, size_t len, const uint8_t **out, size_t *out_len);

/* The kernel sent len bytes on socket id without running the program (the rest of a message
 * it sent only in part, written again by the app): write_seq advances by len. */
void pp_inj_host_bypass(int id, size_t len);

/* The socket's parser gave up (M_DEAD: nothing of it is ever touched again). */
int pp_inj_host_dead(int id);

struct pp_inj_host_report {
    uint8_t outcome; /* enum pp_inject_outcome */
    uint8_t sampled; /* enum pp_sampled of the context written */
    uint16_t rule;
    uint64_t app_pos;       /* app offset of the request's first byte */
    uint64_t subsegment_id; /* Parent on the wire (0: nothing inserted) */
    uint64_t socket_cookie;
    uint64_t ctx_segment_id; /* the segment id of the context reported */
    uint8_t ctx_from_thread;
};

/* As the syscall probes do at a request's first read: this process (the stub's current tgid)
 * received a request whose own X-Amzn-Trace-Id had `root` ("1-<8 hex>-<24 hex>") and `parent`
 * (16 hex); the kernel gave it segment id `segment_id`. Returns 0, or -1 for malformed ids. */
int pp_inj_host_received(const char *root, const char *parent, uint64_t segment_id);

/* PP_EV_INJECT records since the reset, in order; returns how many there are (fills <= max). */
size_t pp_inj_host_reports(struct pp_inj_host_report *out, size_t max);

/* The inject_counters value of enum pp_inject_counter c. */
uint64_t pp_inj_host_counter(unsigned c);

#ifdef __cplusplus
}
#endif

#endif /* PASSPORT_INJECT_HOST_H */
