/* Local sampling rules decided in the kernel, for requests whose trace the kernel mints (no
 * upstream decision): the same semantics as userspace/sample/sampler.cpp (rules in file order,
 * case-insensitive '*'/'?' patterns on Host without port, method and URL path, an empty request
 * attribute matches anything; the matched rule samples fixed_target requests per wall-clock
 * second, then a `rate` fraction). What the kernel cannot decide (a rule that did not compile, a
 * pattern match too long for the step budget, no clock yet) is PP_SAMPLED_UNKNOWN: userspace
 * then decides with the same rules.
 *
 * pp_sample_request() is shared with the injection program (calls made outside any request).
 * It uses the per-CPU map sample_scratch: call it from one program at a time per CPU (programs
 * that cannot interrupt one another, e.g. syscall tracepoints and sk_msg in process context). */
#ifndef PASSPORT_SAMPLE_BPF_H
#define PASSPORT_SAMPLE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"
#include "trace_ctx.bpf.h"

/* Steps one pattern match may take (greedy star matching restarts); beyond: undecided. */
#define PP_GLOB_STEPS 8192

/* *a from where a request head's method, path (without query) and Host value lie in its text, as
 * offsets from the request's first byte (the method starts at 0). A range that is empty or ends
 * at or past PP_MAX_CHUNK is left out (empty: matches any pattern). A Host value with exactly one
 * ':' ends there (its port); one with more (an IPv6 literal) is kept whole. */
static __always_inline void pp_sample_text_from(struct pp_sample_text *a, __u32 method_end,
                                                __u32 path_start, __u32 path_end, __u32 host_start,
                                                __u32 host_end, __u32 host_colon, __u32 host_colons)
{
    __builtin_memset(a, 0, sizeof(*a));
    if (method_end > 0 && method_end < PP_MAX_CHUNK)
        a->method_len = method_end;
    if (path_end > path_start && path_end < PP_MAX_CHUNK) {
        a->path_off = path_start;
        a->path_len = path_end - path_start;
    }
    __u32 he = host_colons == 1 ? host_colon : host_end;
    if (he > host_start && he < PP_MAX_CHUNK) {
        a->host_off = host_start;
        a->host_len = he - host_start;
    }
}

static __always_inline __u8 pp_fold(__u8 c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* bpf_loop contexts (stack): pointers only. */
struct pp_glob {
    const __u8 *text; /* map value */
    const char *pat;  /* map value (a pattern of a pp_sample_rule) */
    struct pp_glob_state *g;
};

struct pp_rule_walk {
    const __u8 *text;
    struct pp_sample_scratch *sc;
};

static long pp_glob_step(__u32 i, void *arg)
{
    struct pp_glob *l = arg;
    struct pp_glob_state *g = l->g;
    __u32 p = g->p;
    if (g->t >= g->tlen) {
        /* Text consumed: only trailing stars may remain. */
        if (p < g->plen && p < PP_GLOB_MAX && l->pat[p & (PP_GLOB_MAX - 1)] == '*') {
            g->p = p + 1;
            return 0;
        }
        g->result = p == g->plen;
        return 1;
    }
    __u8 pc = p < g->plen ? (__u8)l->pat[p & (PP_GLOB_MAX - 1)] : 0;
    __u8 tc = l->text[(g->toff + g->t) & 0x1fff];
    if (p < g->plen && (pc == '?' || pp_fold(pc) == pp_fold(tc))) {
        g->p = p + 1;
        g->t++;
    } else if (p < g->plen && pc == '*') {
        g->star = p;
        g->p = p + 1;
        g->star_t = g->t;
    } else if (g->star != ~0U) {
        g->p = g->star + 1;
        g->star_t++;
        g->t = g->star_t;
    } else {
        g->result = 0;
        return 1;
    }
    return 0;
}

/* 1 match, 0 no match, -1 undecided. An empty attribute matches any pattern. */
static __always_inline int pp_glob_match(struct pp_sample_scratch *sc, const char *pat, __u32 plen,
                                         const __u8 *text, __u32 toff, __u32 tlen)
{
    if (tlen == 0)
        return 1;
    if (plen > PP_GLOB_MAX)
        return -1;
    struct pp_glob_state *g = &sc->g;
    g->plen = plen;
    g->toff = toff;
    g->tlen = tlen;
    g->p = 0;
    g->t = 0;
    g->star = ~0U;
    g->star_t = 0;
    g->result = -1;
    struct pp_glob l = {.text = text, .pat = pat, .g = g};
    bpf_loop(PP_GLOB_STEPS, pp_glob_step, &l, 0);
    return g->result;
}

static long pp_rule_step(__u32 i, void *arg)
{
    struct pp_rule_walk *l = arg;
    struct pp_rule_state *w = &l->sc->w;
    if (i >= w->count || i >= PP_MAX_SAMPLE_RULES)
        return 1;
    __u32 key = i;
    struct pp_sample_rule *r = bpf_map_lookup_elem(&sample_rules, &key);
    if (!r || r->deferred) {
        w->match = -2;
        return 1;
    }
    int m = pp_glob_match(l->sc, r->host, r->host_len, l->text, w->a.host_off, w->a.host_len);
    if (m == 1)
        m = pp_glob_match(l->sc, r->method, r->method_len, l->text, w->a.method_off,
                          w->a.method_len);
    if (m == 1)
        m = pp_glob_match(l->sc, r->path, r->path_len, l->text, w->a.path_off, w->a.path_len);
    if (m < 0) {
        w->match = -2;
        return 1;
    }
    if (m == 1) {
        w->match = (__s32)i;
        return 1;
    }
    return 0;
}

/* The sampling decision for a request without an upstream decision: PP_SAMPLED_YES/NO with
 * *rule = the deciding rule's index (PP_MAX_SAMPLE_RULES: default), or PP_SAMPLED_UNKNOWN with
 * *rule = PP_RULE_NONE when userspace must decide. tgid is reserved for per-process rule masks
 * (centralized rules' service name); local rules do not match on it. */
static __always_inline __u8 pp_sample_request(__u32 tgid, const __u8 *text,
                                              const struct pp_sample_text *a, __u16 *rule)
{
    (void)tgid;
    *rule = PP_RULE_NONE;
    __u32 zero = 0;
    struct pp_sample_cfg *cfg = bpf_map_lookup_elem(&sample_cfg, &zero);
    if (!cfg || !cfg->enabled) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return PP_SAMPLED_UNKNOWN;
    }
    __u32 now = pp_epoch_seconds();
    if (now == 0) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return PP_SAMPLED_UNKNOWN;
    }
    struct pp_sample_scratch *sc = bpf_map_lookup_elem(&sample_scratch, &zero);
    if (!sc) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return PP_SAMPLED_UNKNOWN;
    }
    sc->w.a = *a;
    sc->w.count = cfg->rule_count;
    sc->w.match = -1;
    struct pp_rule_walk l = {.text = text, .sc = sc};
    bpf_loop(PP_MAX_SAMPLE_RULES, pp_rule_step, &l, 0);
    __s32 match = sc->w.match;
    __u32 idx;
    if (match == -2 || (match == -1 && cfg->overflow)) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return PP_SAMPLED_UNKNOWN;
    }
    idx = match >= 0 ? (__u32)match : PP_MAX_SAMPLE_RULES;
    struct pp_sample_rule *r = bpf_map_lookup_elem(&sample_rules, &idx);
    struct pp_reservoir *res = bpf_map_lookup_elem(&sample_reservoirs, &idx);
    if (!r || !res) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return PP_SAMPLED_UNKNOWN;
    }
    pp_ctx_count(PP_CTXC_SAMPLE_KERNEL);
    *rule = (__u16)idx;
    /* Reservoir: reset when the epoch second changes (the CPU that wins the swap resets). */
    __u64 sec = res->second;
    if (sec != now && __sync_val_compare_and_swap(&res->second, sec, (__u64)now) == sec)
        __sync_lock_test_and_set(&res->used, 0);
    if (r->fixed_target && __sync_fetch_and_add(&res->used, 1) < r->fixed_target)
        return PP_SAMPLED_YES;
    if (r->rate_all || bpf_get_prandom_u32() < r->rate_u32)
        return PP_SAMPLED_YES;
    return PP_SAMPLED_NO;
}

#endif /* PASSPORT_SAMPLE_BPF_H */
