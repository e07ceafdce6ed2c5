/* In-memory model of the BPF maps and helpers declared in bpf/bpf_helpers.h (this directory).
 * Deterministic: the clock advances 1 us per read, random numbers come from a fixed-seed
 * generator, and pp_stub_reset() starts both over. Per-CPU maps have one CPU. */
#include "bpf_stub.h"

#include <stdlib.h>
#include <string.h>

#include "bpf/bpf_helpers.h"

#define PP_STUB_MAX_MAPS      64
#define PP_STUB_HASH_SLOTS    64
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
static unsigned char *ringbuf_log[PP_STUB_RINGBUF_LOG];
static size_t ringbuf_log_size[PP_STUB_RINGBUF_LOG];
static size_t ringbuf_log_count;
static __u64 clock_ns;
static __u64 rand_state;

static int is_array(unsigned type)
{
    return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static struct pp_stub_map *map_of(const void *def, struct pp_stub_map_info info)
{
    for (unsigned i = 0; i < map_count; i++)
        if (maps[i].def == def)
            return &maps[i];
    if (map_count == PP_STUB_MAX_MAPS)
        abort();
    struct pp_stub_map *m = &maps[map_count++];
    m->def = def;
    m->info = info;
    m->slots = is_array(info.type) || info.max_entries < PP_STUB_HASH_SLOTS ? info.max_entries
                                                                            : PP_STUB_HASH_SLOTS;
    m->used = calloc(m->slots, 1);
    m->keys = calloc(m->slots, info.key_size);
    m->values = calloc(m->slots, info.value_size);
    if (!m->used || !m->keys || !m->values)
        abort();
    return m;
}

/* Slot of key, or -1 (hashes; arrays index by the key itself). */
static long find_slot(const struct pp_stub_map *m, const void *key)
{
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

void *pp_stub_map_lookup(const void *map, struct pp_stub_map_info info, const void *key)
{
    struct pp_stub_map *m = map_of(map, info);
    long slot = find_slot(m, key);
    return slot < 0 ? NULL : m->values + (size_t)slot * info.value_size;
}

long pp_stub_map_update(const void *map, struct pp_stub_map_info info, const void *key,
                        const void *value, __u64 flags)
{
    struct pp_stub_map *m = map_of(map, info);
    long slot = find_slot(m, key);
    if (slot >= 0 && flags == BPF_NOEXIST)
        return -17; /* -EEXIST */
    if (slot < 0) {
        if (is_array(info.type) || flags == BPF_EXIST)
            return is_array(info.type) ? -7 : -2; /* -E2BIG, -ENOENT */
        for (unsigned i = 0; i < m->slots && slot < 0; i++)
            if (!m->used[i])
                slot = i;
        if (slot < 0)
            return -7;
        m->used[slot] = 1;
        memcpy(m->keys + (size_t)slot * info.key_size, key, info.key_size);
    }
    memcpy(m->values + (size_t)slot * info.value_size, value, info.value_size);
    return 0;
}

long pp_stub_map_delete(const void *map, struct pp_stub_map_info info, const void *key)
{
    struct pp_stub_map *m = map_of(map, info);
    long slot = find_slot(m, key);
    if (slot < 0 || is_array(info.type))
        return is_array(info.type) ? -22 : -2; /* -EINVAL, -ENOENT */
    m->used[slot] = 0;
    return 0;
}

/* Socket storage and fake sockets. */
#define PP_STUB_MAX_SOCKS 64
struct pp_stub_storage {
    const void *map;
    const void *sk;
    void *value;
};
static struct pp_stub_storage storage[PP_STUB_MAX_SOCKS];
static unsigned storage_count;
static struct {
    const void *sk;
    void *tcp;
} socks[PP_STUB_MAX_SOCKS];
static unsigned sock_count;

void *pp_stub_sk_storage_get(const void *map, unsigned value_size, void *sk, void *value,
                             __u64 flags)
{
    for (unsigned i = 0; i < storage_count; i++)
        if (storage[i].map == map && storage[i].sk == sk)
            return storage[i].value;
    if (!(flags & BPF_SK_STORAGE_GET_F_CREATE) || !sk || storage_count == PP_STUB_MAX_SOCKS)
        return NULL;
    void *v = calloc(1, value_size);
    if (!v)
        abort();
    if (value)
        memcpy(v, value, value_size);
    storage[storage_count++] = (struct pp_stub_storage){map, sk, v};
    return v;
}

void pp_stub_sock_set_tcp(const void *sk, void *tcp)
{
    for (unsigned i = 0; i < sock_count; i++)
        if (socks[i].sk == sk) {
            socks[i].tcp = tcp;
            return;
        }
    if (sock_count == PP_STUB_MAX_SOCKS)
        abort();
    socks[sock_count].sk = sk;
    socks[sock_count++].tcp = tcp;
}

struct tcp_sock *bpf_skc_to_tcp_sock(void *sk)
{
    for (unsigned i = 0; i < sock_count; i++)
        if (socks[i].sk == sk)
            return socks[i].tcp;
    return NULL;
}

__u64 bpf_get_current_task(void)
{
    return 0;
}
__u64 bpf_get_socket_cookie(void *ctx)
{
    (void)ctx;
    return 0;
}
long bpf_sock_hash_update(struct bpf_sock_ops *skops, void *map, void *key, __u64 flags)
{
    (void)skops;
    (void)map;
    (void)key;
    (void)flags;
    return -95; /* -EOPNOTSUPP: the sockhash is not modelled */
}
long bpf_sock_ops_cb_flags_set(struct bpf_sock_ops *skops, int argval)
{
    (void)skops;
    (void)argval;
    return 0;
}

/* The current sk_msg message. */
static struct sk_msg_md *msg_md;
static unsigned char *msg_bytes;
static size_t msg_len;
static unsigned char *msg_win; /* the pulled range's own allocation */
static size_t msg_win_start, msg_win_len;
static unsigned fail_push, fail_pull, push_calls, pull_calls;

static void msg_sync(void)
{
    if (msg_win) {
        memcpy(msg_bytes + msg_win_start, msg_win, msg_win_len);
        free(msg_win);
        msg_win = NULL;
    }
    if (msg_md) {
        msg_md->data = msg_md->data_end = NULL;
        msg_md->size = (__u32)msg_len;
    }
}

void pp_stub_msg_begin(void *md, const uint8_t *data, size_t len)
{
    msg_sync();
    free(msg_bytes);
    msg_md = md;
    msg_len = len;
    msg_bytes = malloc(len ? len : 1);
    if (!msg_bytes)
        abort();
    if (len)
        memcpy(msg_bytes, data, len);
    push_calls = pull_calls = 0;
    msg_sync();
}

const uint8_t *pp_stub_msg_end(size_t *len)
{
    msg_sync();
    msg_md = NULL;
    *len = msg_len;
    return msg_bytes;
}

void pp_stub_msg_fail_at(unsigned push_nth, unsigned pull_nth)
{
    fail_push = push_nth;
    fail_pull = pull_nth;
}

long bpf_msg_pull_data(struct sk_msg_md *msg, __u32 start, __u32 end, __u64 flags)
{
    if (msg != msg_md)
        abort();
    msg_sync();
    if (fail_pull && ++pull_calls == fail_pull)
        return -12; /* -ENOMEM */
    if (flags || end <= start || end > msg_len)
        return -22; /* -EINVAL */
    msg_win_start = start;
    msg_win_len = end - start;
    msg_win = malloc(msg_win_len);
    if (!msg_win)
        abort();
    memcpy(msg_win, msg_bytes + start, msg_win_len);
    msg->data = msg_win;
    msg->data_end = msg_win + msg_win_len;
    return 0;
}

long bpf_msg_push_data(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags)
{
    if (msg != msg_md)
        abort();
    msg_sync();
    if (fail_push && ++push_calls == fail_push)
        return -12;
    if (flags || start > msg_len)
        return -22;
    if (len == 0)
        return 0;
    unsigned char *b = malloc(msg_len + len);
    if (!b)
        abort();
    memcpy(b, msg_bytes, start);
    memset(b + start, 0, len);
    memcpy(b + start + len, msg_bytes + start, msg_len - start);
    free(msg_bytes);
    msg_bytes = b;
    msg_len += len;
    msg_sync();
    return 0;
}

long bpf_msg_pop_data(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags)
{
    if (msg != msg_md)
        abort();
    msg_sync();
    if (flags || start >= msg_len || len > msg_len - start)
        return -22;
    memmove(msg_bytes + start, msg_bytes + start + len, msg_len - start - len);
    msg_len -= len;
    msg_sync();
    return 0;
}

long bpf_loop(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags)
{
    long (*fn)(__u32, void *) = (long (*)(__u32, void *))callback_fn;
    (void)flags;
    __u32 i = 0;
    while (i < nr_loops) {
        long stop = fn(i, callback_ctx);
        i++;
        if (stop)
            break;
    }
    return i;
}

void *bpf_ringbuf_reserve(void *ringbuf, __u64 size, __u64 flags)
{
    (void)ringbuf;
    (void)flags;
    if (ringbuf_full || size > sizeof(ringbuf_slot))
        return NULL;
    ringbuf_last_size = size;
    memset(ringbuf_slot, 0xa5, size); /* reserved memory is not zeroed */
    return ringbuf_slot;
}

void bpf_ringbuf_submit(void *data, __u64 flags)
{
    (void)flags;
    memcpy(ringbuf_last, data, ringbuf_last_size);
    ringbuf_has_last = 1;
    if (ringbuf_log_count < PP_STUB_RINGBUF_LOG) {
        unsigned char *copy = malloc(ringbuf_last_size ? ringbuf_last_size : 1);
        if (!copy)
            abort();
        memcpy(copy, data, ringbuf_last_size);
        ringbuf_log[ringbuf_log_count] = copy;
        ringbuf_log_size[ringbuf_log_count++] = ringbuf_last_size;
    }
}

void bpf_ringbuf_discard(void *data, __u64 flags)
{
    (void)data;
    (void)flags;
}

long bpf_ringbuf_output(void *ringbuf, void *data, __u64 size, __u64 flags)
{
    void *slot = bpf_ringbuf_reserve(ringbuf, size, flags);
    if (!slot)
        return -11; /* -EAGAIN */
    memcpy(slot, data, size);
    bpf_ringbuf_submit(slot, flags);
    return 0;
}

__u64 bpf_ringbuf_query(void *ringbuf, __u64 flags)
{
    (void)ringbuf;
    (void)flags;
    return 0;
}

__u32 bpf_get_prandom_u32(void)
{
    rand_state = rand_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (__u32)(rand_state >> 32);
}

__u64 bpf_ktime_get_ns(void)
{
    return clock_ns += 1000;
}

__u64 bpf_get_current_pid_tgid(void)
{
    return (__u64)4242 << 32 | 4243;
}

struct task_struct *bpf_get_current_task_btf(void)
{
    return NULL;
}

struct pt_regs *bpf_task_pt_regs(struct task_struct *task)
{
    static struct pt_regs regs;
    (void)task;
    return &regs;
}

void *bpf_task_storage_get(void *map, struct task_struct *task, void *value, __u64 flags)
{
    (void)map;
    (void)task;
    (void)value;
    (void)flags;
    return NULL; /* not modelled: callers handle "no storage" */
}

long bpf_probe_read_user(void *dst, __u32 size, const void *unsafe_ptr)
{
    memcpy(dst, unsafe_ptr, size);
    return 0;
}

long bpf_probe_read_kernel(void *dst, __u32 size, const void *unsafe_ptr)
{
    memcpy(dst, unsafe_ptr, size);
    return 0;
}

void pp_stub_reset(void)
{
    for (unsigned i = 0; i < map_count; i++) {
        struct pp_stub_map *m = &maps[i];
        memset(m->used, 0, m->slots);
        memset(m->values, 0, (size_t)m->slots * m->info.value_size);
    }
    for (size_t i = 0; i < ringbuf_log_count; i++)
        free(ringbuf_log[i]);
    ringbuf_log_count = 0;
    for (unsigned i = 0; i < storage_count; i++)
        free(storage[i].value);
    storage_count = 0;
    sock_count = 0;
    fail_push = fail_pull = 0;
    ringbuf_full = 0;
    ringbuf_has_last = 0;
    ringbuf_last_size = 0;
    clock_ns = 1000000000ULL;
    rand_state = 1;
}

void pp_stub_set_ringbuf_full(int full)
{
    ringbuf_full = full;
}

size_t pp_stub_ringbuf_count(void)
{
    return ringbuf_log_count;
}

const void *pp_stub_ringbuf_at(size_t i, size_t *size)
{
    *size = i < ringbuf_log_count ? ringbuf_log_size[i] : 0;
    return i < ringbuf_log_count ? ringbuf_log[i] : NULL;
}

const void *pp_stub_ringbuf_last(size_t *size)
{
    *size = ringbuf_has_last ? ringbuf_last_size : 0;
    return ringbuf_has_last ? ringbuf_last : NULL;
}
