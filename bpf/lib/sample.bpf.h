/* Sampling rules decided in the kernel, for requests whose trace the kernel mints or whose
 * upstream left the decision open (Sampled=?): the same semantics as userspace/sample/sampler.cpp
 * (rules in order, case-insensitive '*'/'?' patterns on Host without port, method and URL path,
 * an empty request attribute matches anything). A process only meets the rules of its mask
 * (sample_proc_rules[tgid], else sample_cfg.default_mask: centralized rules name services); the
 * default rule (index PP_MAX_SAMPLE_RULES) applies to every process. The matched rule samples
 * from its reservoir (fixed_target requests per wall-clock second while its quota is valid;
 * without one, it borrows one request a second), then a `rate` fraction; sample_stats counts per
 * rule the requests, those sampled, those borrowed. Local rules: every rule in every mask, quotas
 * valid for ever. What the kernel cannot decide (a rule that did not compile, a pattern match too
 * long for the step budget, no clock yet) is PP_SAMPLED_UNKNOWN: userspace then decides with the
 * same rules.
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

/* 1 match, 0 no match, -1 undecided. An empty attribute matches any pattern. l holds the text
 * and the loop state (the same for every pattern of a rule walk); pat is set here. */
static __always_inline int pp_glob_match(struct pp_glob *l, const char *pat, __u32 plen, __u32 toff,
                                         __u32 tlen)
{
    if (tlen == 0)
        return 1;
    if (plen > PP_GLOB_MAX)
        return -1;
    struct pp_glob_state *g = l->g;
    g->plen = plen;
    g->toff = toff;
    g->tlen = tlen;
    g->p = 0;
    g->t = 0;
    g->star = ~0U;
    g->star_t = 0;
    g->result = -1;
    l->pat = pat;
    bpf_loop(PP_GLOB_STEPS, pp_glob_step, l, 0);
    return g->result;
}

static long pp_rule_step(__u32 i, void *arg)
{
    struct pp_rule_walk *lw = arg;
    struct pp_rule_state *w = &lw->sc->w;
    if (i >= w->count || i >= PP_MAX_SAMPLE_RULES)
        return 1;
    if (!((w->mask >> i) & 1))
        return 0; /* not one of this process's rules */
    /* The lookup key and the match context share the stack with nothing else: this frame is
     * part of the deepest call chain of the head scan (the verifier's 512-byte limit). */
    w->key = i;
    struct pp_sample_rule *r = bpf_map_lookup_elem(&sample_rules, &w->key);
    if (!r || r->deferred) {
        w->match = -2;
        return 1;
    }
    struct pp_glob l = {.text = lw->text, .g = &lw->sc->g};
    int m = pp_glob_match(&l, r->host, r->host_len, w->a.host_off, w->a.host_len);
    if (m == 1)
        m = pp_glob_match(&l, r->method, r->method_len, w->a.method_off, w->a.method_len);
    if (m == 1)
        m = pp_glob_match(&l, r->path, r->path_len, w->a.path_off, w->a.path_len);
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

/* pp_reservoir_take(): what the rule's reservoir gives a request. */
#define PP_TAKE_NONE   0
#define PP_TAKE_QUOTA  1
#define PP_TAKE_BORROW 2

/* Counts the request in the rule's reservoir for the epoch second `now` (reset when the second
 * changes: the CPU that wins the swap resets). With a valid quota (no `borrow` flag, `expires` 0
 * or later than now) up to fixed_target requests a second; otherwise one a second, borrowed. The
 * count is read before the atomic add, so requests past the limit only read the shared line. */
static __always_inline int pp_reservoir_take(const struct pp_sample_rule *r,
                                             struct pp_reservoir *res, __u32 now)
{
    __u64 sec = res->second;
    if (sec != now && __sync_val_compare_and_swap(&res->second, sec, (__u64)now) == sec)
        __sync_lock_test_and_set(&res->used, 0);
    if (!r->borrow && (r->expires == 0 || now < r->expires)) {
        __u64 limit = r->fixed_target;
        if (limit && res->used < limit && __sync_fetch_and_add(&res->used, 1) < limit)
            return PP_TAKE_QUOTA;
        return PP_TAKE_NONE;
    }
    if (res->used == 0 && __sync_fetch_and_add(&res->used, 1) == 0)
        return PP_TAKE_BORROW;
    return PP_TAKE_NONE;
}

/* After the rule walk (bpf_loop callback, one step): the matched rule's (or the default rule's)
 * reservoir and rate decide, counted in sample_stats; sc->w.sampled and sc->w.rule hold the
 * outcome. */
static long pp_decide_step(__u32 i, void *arg)
{
    struct pp_sample_scratch *sc = ((struct pp_rule_walk *)arg)->sc;
    struct pp_rule_state *w = &sc->w;
    w->sampled = PP_SAMPLED_UNKNOWN;
    w->rule = PP_RULE_NONE;
    w->now = w->a.now ? w->a.now : pp_epoch_seconds();
    if (w->now == 0 || w->match == -2 || (w->match == -1 && w->overflow)) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return 1;
    }
    w->key = w->match >= 0 ? (__u32)w->match : PP_MAX_SAMPLE_RULES;
    struct pp_sample_rule *r = bpf_map_lookup_elem(&sample_rules, &w->key);
    struct pp_reservoir *res = bpf_map_lookup_elem(&sample_reservoirs, &w->key);
    struct pp_sample_stat *st = bpf_map_lookup_elem(&sample_stats, &w->key);
    if (!r || !res || !st) {
        pp_ctx_count(PP_CTXC_SAMPLE_DEFERRED);
        return 1;
    }
    pp_ctx_count(PP_CTXC_SAMPLE_KERNEL);
    w->rule = w->key;
    st->requests++;
    int took = pp_reservoir_take(r, res, w->now);
    if (took == PP_TAKE_BORROW) {
        st->borrowed++;
        w->sampled = PP_SAMPLED_YES;
    } else if (took == PP_TAKE_QUOTA || r->rate_all || bpf_get_prandom_u32() < r->rate_u32) {
        st->sampled++;
        w->sampled = PP_SAMPLED_YES;
    } else {
        w->sampled = PP_SAMPLED_NO;
    }
    return 1;
}

/* The sampling decision for a request without an upstream decision: PP_SAMPLED_YES/NO with
 * *rule = the deciding rule's index (PP_MAX_SAMPLE_RULES: default), or PP_SAMPLED_UNKNOWN with
 * *rule = PP_RULE_NONE when userspace must decide. tgid: the process that serves (or sends) the
 * request, whose rule mask applies. a->now: the request's epoch second when the caller has it (a
 * minted trace id's, so the reservoir second is the one the id shows), else 0: the clock's.
 * Without a clock (userspace has not written clock_sync yet) the decision is deferred. */
static __always_inline __u8 pp_sample_request(__u32 tgid, const __u8 *text,
                                              const struct pp_sample_text *a, __u16 *rule)
{
    *rule = PP_RULE_NONE;
    __u32 zero = 0;
    struct pp_sample_cfg *cfg = bpf_map_lookup_elem(&sample_cfg, &zero);
    if (!cfg || !cfg->enabled) {
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
    sc->w.mask = cfg->default_mask;
    sc->w.overflow = cfg->overflow;
    sc->w.sampled = PP_SAMPLED_UNKNOWN;
    sc->w.rule = PP_RULE_NONE;
    struct pp_rule_walk l = {.text = text, .sc = sc};
    sc->w.key = tgid;
    __u32 *proc_mask = bpf_map_lookup_elem(&sample_proc_rules, &sc->w.key);
    if (proc_mask)
        sc->w.mask = *proc_mask;
    bpf_loop(PP_MAX_SAMPLE_RULES, pp_rule_step, &l, 0);
    /* The decision in a callback of its own: its locals stay off the caller's stack, which the
     * head scan's call chain has little of. */
    bpf_loop(1, pp_decide_step, &l, 0);
    *rule = (__u16)sc->w.rule;
    return (__u8)sc->w.sampled;
}

#endif /* PASSPORT_SAMPLE_BPF_H */
