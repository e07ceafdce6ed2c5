/* Userspace stand-in for libbpf's <bpf/bpf_helpers.h>, so that the kernel-side sources in bpf/
 * compile unchanged as plain C for host tests and fuzz targets (the same files, not copies).
 *
 * Map definitions keep libbpf's BTF form: __uint/__type expand to the same pointer-to-array and
 * pointer members libbpf uses, so a map's type, max_entries, key and value sizes are compile-time
 * facts of its definition, and the helper macros below pass them to an in-memory model of the
 * maps (bpf_stub.c): arrays indexed by a __u32 key, hashes as small tables keyed by bytes, a ring
 * buffer that keeps the last record submitted. Helpers are plain C functions; bpf_loop runs its
 * callback in an ordinary loop.
 *
 * Adding a program (for example probes/inject.bpf.c): declare each further helper it calls here
 * and model it in bpf_stub.c; its SEC() programs become plain functions a target calls with a
 * context struct it fills in. */
#ifndef PASSPORT_STUB_BPF_HELPERS_H
#define PASSPORT_STUB_BPF_HELPERS_H

#include <stddef.h>

#include "vmlinux.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SEC(name)
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define __noinline         __attribute__((noinline))
#define __weak             __attribute__((weak))
#define __uint(name, val)  int(*name)[val]
#define __type(name, val)  __typeof__(val) *name
#define __array(name, val) __typeof__(val) *name[]

/* What a map definition says about the map. */
struct pp_stub_map_info {
    unsigned type;
    unsigned max_entries;
    unsigned key_size;
    unsigned value_size;
};

/* A map reached through a void pointer (pp_count_n, the per-CPU counter function of maps.bpf.h) is
 * described as a per-CPU __u32 -> __u64 array of PP_STUB_COUNTERS entries, enough for every
 * counter enum. */
#define PP_STUB_COUNTERS 64
struct pp_stub_counter_map {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, PP_STUB_COUNTERS);
    __type(key, __u32);
    __type(value, __u64);
};
#define PP_STUB_MAP_DEF(map)                                                                       \
    _Generic((map), void * : (struct pp_stub_counter_map *)0, default : (map))

#define PP_STUB_MAP_INFO(map)                                                                      \
    ((struct pp_stub_map_info){sizeof(*PP_STUB_MAP_DEF(map)->type) / sizeof(int),                  \
                               sizeof(*PP_STUB_MAP_DEF(map)->max_entries) / sizeof(int),           \
                               sizeof(*PP_STUB_MAP_DEF(map)->key),                                 \
                               sizeof(*PP_STUB_MAP_DEF(map)->value)})

void *pp_stub_map_lookup(const void *map, struct pp_stub_map_info info, const void *key);
long pp_stub_map_update(const void *map, struct pp_stub_map_info info, const void *key,
                        const void *value, __u64 flags);
long pp_stub_map_delete(const void *map, struct pp_stub_map_info info, const void *key);

#define bpf_map_lookup_elem(map, key) pp_stub_map_lookup((map), PP_STUB_MAP_INFO(map), (key))
#define bpf_map_update_elem(map, key, value, flags)                                                \
    pp_stub_map_update((map), PP_STUB_MAP_INFO(map), (key), (value), (flags))
#define bpf_map_delete_elem(map, key) pp_stub_map_delete((map), PP_STUB_MAP_INFO(map), (key))

long bpf_loop(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags);

void *bpf_ringbuf_reserve(void *ringbuf, __u64 size, __u64 flags);
void bpf_ringbuf_submit(void *data, __u64 flags);
void bpf_ringbuf_discard(void *data, __u64 flags);
long bpf_ringbuf_output(void *ringbuf, void *data, __u64 size, __u64 flags);
__u64 bpf_ringbuf_query(void *ringbuf, __u64 flags);

__u32 bpf_get_prandom_u32(void);
__u64 bpf_ktime_get_ns(void);
__u64 bpf_get_current_pid_tgid(void);
struct task_struct *bpf_get_current_task_btf(void);
void *bpf_task_storage_get(void *map, struct task_struct *task, void *value, __u64 flags);
/* Zeroed registers: no goroutine (bpf/lib/go_ctx.bpf.h then stores nothing). */
struct pt_regs *bpf_task_pt_regs(struct task_struct *task);
long bpf_probe_read_user(void *dst, __u32 size, const void *unsafe_ptr);
long bpf_probe_read_kernel(void *dst, __u32 size, const void *unsafe_ptr);

/* Socket programs (probes/inject.bpf.c). Socket storage: one value per (map, socket pointer),
 * zeroed when created. The sk_msg helpers act on the message the harness gave
 * pp_stub_msg_begin (bpf_stub.h), as the kernel documents them: pull makes [start, end) the
 * directly accessible data..data_end; push inserts len zero bytes at start; pop removes len
 * bytes at start; push and pop leave nothing directly accessible until the next pull. */
__u64 bpf_get_current_task(void);
__u64 bpf_get_socket_cookie(void *ctx);
long bpf_sock_hash_update(struct bpf_sock_ops *skops, void *map, void *key, __u64 flags);
long bpf_sock_ops_cb_flags_set(struct bpf_sock_ops *skops, int argval);
void *pp_stub_sk_storage_get(const void *map, unsigned value_size, void *sk, void *value,
                             __u64 flags);
#define bpf_sk_storage_get(map, sk, init, flags)                                                   \
    pp_stub_sk_storage_get((map), sizeof(*(map)->value), (sk), (init), (flags))
struct tcp_sock *bpf_skc_to_tcp_sock(void *sk);
long bpf_msg_pull_data(struct sk_msg_md *msg, __u32 start, __u32 end, __u64 flags);
long bpf_msg_push_data(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags);
long bpf_msg_pop_data(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags);

#ifdef __cplusplus
}
#endif

#endif /* PASSPORT_STUB_BPF_HELPERS_H */
