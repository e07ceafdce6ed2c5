/* In-memory model of the BPF maps and helpers declared in bpf/bpf_helpers.h (this directory).
 * Deterministic: the clock advances 1 us per read, random numbers come from a fixed-seed
 * generator, and pp_stub_reset() starts both over. Per-CPU maps have one CPU. */
#include "bpf_stub.h"

#include <stdlib.h>
#include <string.h>

#include "bpf/bpf_helpers.h"

#define PP_STUB_MAX_MAPS 64
#define PP_STUB_HASH_SLOTS 64
#define PP_STUB_RINGBUF_BYTES (64 * 1024)

struct pp_stub_map {
    const void *def;
    struct pp_stub_map_info info;
    unsigned slots;        /* arrays: max_entries; hashes: at most PP_STUB_HASH_SLOTS */
    unsigned char *used;   /* hashes: slot holds an entry */
    unsigned char *keys;   /* hashes: slots * key_size */
    unsigned char *values; /* slots * value_size */
};

/* Load-time constants (the skeleton's .rodata, written by the loader): strong, writable
 * definitions that replace the headers' weak `const volatile` ones, so a run can set them. */
__u32 pp_head_text = 1;

static struct pp_stub_map maps[PP_STUB_MAX_MAPS];
static unsigned map_count;
static int ringbuf_full;
static unsigned char ringbuf_slot[PP_STUB_RINGBUF_BYTES];
static unsigned char ringbuf_last[PP_STUB_RINGBUF_BYTES];
static size_t ringbuf_last_size;
static int ringbuf_has_last;
static __u64 clock_ns;
static __u64 rand_state;

static int is_array(unsigned type) {
    return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static struct pp_stub_map *map_of(const void *def, struct pp_stub_map_info info) {
    for (unsigned i = 0; i < map_count; i++)
        if (maps[i].def == def) return &maps[i];
    if (map_count == PP_STUB_MAX_MAPS) abort();
    struct pp_stub_map *m = &maps[map_count++];
    m->def = def;
    m->info = info;
    m->slots = is_array(info.type) || info.max_entries < PP_STUB_HASH_SLOTS ? info.max_entries
                                                                            : PP_STUB_HASH_SLOTS;
    m->used = calloc(m->slots, 1);
    m->keys = calloc(m->slots, info.key_size);
    m->values = calloc(m->slots, info.value_size);
    if (!m->used || !m->keys || !m->values) abort();
    return m;
}

/* Slot of key, or -1 (hashes; arrays index by the key itself). */
static long find_slot(const struct pp_stub_map *m, const void *key) {
    if (is_array(m->info.type)) {
        __u32 idx;
        memcpy(&idx, key, sizeof(idx));
        return idx < m->slots ? (long)idx : -1;
    }
    for (unsigned i = 0; i < m->slots; i++)
        if (m->used[i] &&
            memcmp(m->keys + (size_t)i * m->info.key_size, key, m->info.key_size) == 0)
            return i;
    return -1;
}

void *pp_stub_map_lookup(const void *map, struct pp_stub_map_info info, const void *key) {
    struct pp_stub_map *m = map_of(map, info);
    long slot = find_slot(m, key);
    return slot < 0 ? NULL : m->values + (size_t)slot * info.value_size;
}

long pp_stub_map_update(const void *map, struct pp_stub_map_info info, const void *key,
                        const void *value, __u64 flags) {
    struct pp_stub_map *m = map_of(map, info);
    long slot = find_slot(m, key);
    if (slot >= 0 && flags == BPF_NOEXIST) return -17; /* -EEXIST */
    if (slot < 0) {
        if (is_array(info.type) || flags == BPF_EXIST)
            return is_array(info.type) ? -7 : -2; /* -E2BIG, -ENOENT */
        for (unsigned i = 0; i < m->slots && slot < 0; i++)
            if (!m->used[i]) slot = i;
        if (slot < 0) return -7;
        m->used[slot] = 1;
        memcpy(m->keys + (size_t)slot * info.key_size, key, info.key_size);
    }
    memcpy(m->values + (size_t)slot * info.value_size, value, info.value_size);
    return 0;
}

long pp_stub_map_delete(const void *map, struct pp_stub_map_info info, const void *key) {
    struct pp_stub_map *m = map_of(map, info);
    long slot = find_slot(m, key);
    if (slot < 0 || is_array(info.type))
        return is_array(info.type) ? -22 : -2; /* -EINVAL, -ENOENT */
    m->used[slot] = 0;
    return 0;
}

long bpf_loop(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) {
    long (*fn)(__u32, void *) = (long (*)(__u32, void *))callback_fn;
    (void)flags;
    __u32 i = 0;
    while (i < nr_loops) {
        long stop = fn(i, callback_ctx);
        i++;
        if (stop) break;
    }
    return i;
}

void *bpf_ringbuf_reserve(void *ringbuf, __u64 size, __u64 flags) {
    (void)ringbuf;
    (void)flags;
    if (ringbuf_full || size > sizeof(ringbuf_slot)) return NULL;
    ringbuf_last_size = size;
    memset(ringbuf_slot, 0xa5, size); /* reserved memory is not zeroed */
    return ringbuf_slot;
}

void bpf_ringbuf_submit(void *data, __u64 flags) {
    (void)flags;
    memcpy(ringbuf_last, data, ringbuf_last_size);
    ringbuf_has_last = 1;
}

void bpf_ringbuf_discard(void *data, __u64 flags) {
    (void)data;
    (void)flags;
}

long bpf_ringbuf_output(void *ringbuf, void *data, __u64 size, __u64 flags) {
    void *slot = bpf_ringbuf_reserve(ringbuf, size, flags);
    if (!slot) return -11; /* -EAGAIN */
    memcpy(slot, data, size);
    bpf_ringbuf_submit(slot, flags);
    return 0;
}

__u64 bpf_ringbuf_query(void *ringbuf, __u64 flags) {
    (void)ringbuf;
    (void)flags;
    return 0;
}

__u32 bpf_get_prandom_u32(void) {
    rand_state = rand_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (__u32)(rand_state >> 32);
}

__u64 bpf_ktime_get_ns(void) { return clock_ns += 1000; }

__u64 bpf_get_current_pid_tgid(void) { return (__u64)4242 << 32 | 4243; }

struct task_struct *bpf_get_current_task_btf(void) {
    return NULL;
}

void *bpf_task_storage_get(void *map, struct task_struct *task, void *value, __u64 flags) {
    (void)map;
    (void)task;
    (void)value;
    (void)flags;
    return NULL; /* not modelled: callers handle "no storage" */
}

long bpf_probe_read_user(void *dst, __u32 size, const void *unsafe_ptr) {
    memcpy(dst, unsafe_ptr, size);
    return 0;
}

long bpf_probe_read_kernel(void *dst, __u32 size, const void *unsafe_ptr) {
    memcpy(dst, unsafe_ptr, size);
    return 0;
}

void pp_stub_reset(void) {
    for (unsigned i = 0; i < map_count; i++) {
        struct pp_stub_map *m = &maps[i];
        memset(m->used, 0, m->slots);
        memset(m->values, 0, (size_t)m->slots * m->info.value_size);
    }
    ringbuf_full = 0;
    ringbuf_has_last = 0;
    ringbuf_last_size = 0;
    clock_ns = 1000000000ULL;
    rand_state = 1;
}

void pp_stub_set_ringbuf_full(int full) { ringbuf_full = full; }

const void *pp_stub_ringbuf_last(size_t *size) {
    *size = ringbuf_has_last ? ringbuf_last_size : 0;
    return ringbuf_has_last ? ringbuf_last : NULL;
}
