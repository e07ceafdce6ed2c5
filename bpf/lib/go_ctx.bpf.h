/* Go net/http: the request a goroutine serves, and the request an outgoing http.Request was made
 * for, so that the thread that writes the call (a different goroutine, on any thread) carries the
 * right trace context when the header is injected (probes/go_http.bpf.c; docs/context-flow.md,
 * "Go net/http").
 *
 * Go (>= 1.17, amd64) keeps the running goroutine's `g` in R14 in Go code, and its syscall stubs
 * leave it there: at a syscall the user R14 saved in the task's pt_regs names the goroutine.
 * Maps: go_procs (tgid -> 1, written by the agent for the Go processes it probes), go_g_ctx
 * ((tgid, g) -> the request that goroutine read last), go_req_ctx ((tgid, *http.Request) -> the
 * request it was made for). */
#ifndef PASSPORT_GO_CTX_BPF_H
#define PASSPORT_GO_CTX_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "maps.bpf.h"
#include "passport/abi.h"

struct pp_go_key {
    __u32 tgid;
    __u32 _pad;
    __u64 ptr; /* a g, or a *http.Request */
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u8);
} go_procs SEC(".maps") __weak;

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct pp_go_key);
    __type(value, struct pp_trace_ctx);
} go_g_ctx SEC(".maps") __weak;

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct pp_go_key);
    __type(value, struct pp_trace_ctx);
} go_req_ctx SEC(".maps") __weak;

/* The key of a go_g_ctx update built off the stack: the request-head path that calls
 * pp_go_note_request is near the verifier's combined stack limit. */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct pp_go_key);
} go_key_scratch SEC(".maps") __weak;

/* A server request's context was just stored for this thread (thread_ctx), in a syscall of the
 * goroutine that read it: in a probed Go process, that goroutine serves it. */
static __noinline __attribute__((unused)) void pp_go_note_request(__u64 pid_tgid)
{
    __u32 tgid = pid_tgid >> 32;
    if (!bpf_map_lookup_elem(&go_procs, &tgid))
        return;
    struct pp_trace_ctx *ctx = bpf_map_lookup_elem(&thread_ctx, &pid_tgid);
    if (!ctx)
        return;
    __u32 zero = 0;
    struct pp_go_key *k = bpf_map_lookup_elem(&go_key_scratch, &zero);
    if (!k)
        return;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    k->tgid = tgid;
    k->_pad = 0;
    k->ptr = BPF_CORE_READ(regs, r14);
    if (k->ptr)
        bpf_map_update_elem(&go_g_ctx, k, ctx, BPF_ANY);
}

#endif /* PASSPORT_GO_CTX_BPF_H */
