/* The request recognition and head budget the syscall and TLS probes share (bpf/lib/http.bpf.h),
 * run in userspace. No BPF types in this interface. */
#ifndef PASSPORT_HTTP_HOST_H
#define PASSPORT_HTTP_HOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* pp_starts_with_method on the first 4 bytes of m (len >= 4). */
int pp_host_starts_with_method(const uint8_t *m);

/* The head budgets of one connection, per direction, as the probes keep them. */
struct pp_host_budget {
    uint32_t rx;
    uint32_t tx;
};

/* pp_head_budget_take on *b: bytes of a call moving n bytes (first: its first piece) copied in
 * full; request: the call starts a request. */
uint32_t pp_host_head_budget_take(struct pp_host_budget *b, int ingress, int request, uint64_t n,
                                  uint32_t first);

#ifdef __cplusplus
}
#endif

#endif /* PASSPORT_HTTP_HOST_H */
