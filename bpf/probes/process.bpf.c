/* Process lifecycle: exec (of any process, so userspace can apply --exe selectors), fork
 * (children of a selected process are selected too: nginx workers, pre-fork servers) and exit
 * of a traced process (its open requests end; its selection is dropped).
 * Hooks: tracepoint sched:sched_process_exec, tp_btf sched_process_fork,
 * tracepoint sched:sched_process_exit. Maps: traced_pids, pid_bits, events, thread_ctx (copied to
 * new threads and children at fork, deleted at thread exit), ctx_counters, sdk_reported (deleted
 * at exec and exit), sample_proc_rules (deleted at exit). */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "emit.bpf.h"
#include "filter.bpf.h"
#include "maps.bpf.h"

SEC("tracepoint/sched/sched_process_exec")
int process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    if ((__u32)(pid_tgid >> 32) == pp_cfg.self_tgid)
        return 0;
    struct pp_proc_event ev = {};
    fill_header(&ev.hdr, PP_EV_PROC_EXEC, pid_tgid, bpf_ktime_get_ns());
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
    bpf_get_current_comm(ev.comm, sizeof(ev.comm));
    __u32 tgid = pid_tgid >> 32;
    bpf_map_delete_elem(&sdk_reported, &tgid); /* a new program: its own SDK or none */
    unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
    bpf_probe_read_kernel_str(ev.filename, sizeof(ev.filename), (void *)ctx + loc);
    emit(&ev, sizeof(ev));
    return 0;
}

/* A thread (or child process) created by a thread that holds a trace context gets a copy, so
 * work it does for the request (a worker thread's outgoing calls) carries the same trace. */
static __always_inline void inherit_trace_ctx(struct task_struct *parent, struct task_struct *child)
{
    __u64 parent_key = (__u64)BPF_CORE_READ(parent, tgid) << 32 | (__u32)BPF_CORE_READ(parent, pid);
    struct pp_trace_ctx *ctx = bpf_map_lookup_elem(&thread_ctx, &parent_key);
    if (!ctx)
        return;
    struct pp_trace_ctx copy = *ctx;
    __u64 child_key = (__u64)BPF_CORE_READ(child, tgid) << 32 | (__u32)BPF_CORE_READ(child, pid);
    if (pp_store_thread_ctx(child_key, &copy) == 0)
        pp_ctx_count(PP_CTXC_INHERITED);
    else
        pp_ctx_count(PP_CTXC_STORE_FAILED);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
    inherit_trace_ctx(parent, child);
    if (pp_cfg.trace_all)
        return 0;
    __u32 child_pid = BPF_CORE_READ(child, pid);
    __u32 child_tgid = BPF_CORE_READ(child, tgid);
    if (child_pid != child_tgid) /* a new thread, not a new process */
        return 0;
    __u32 parent_tgid = BPF_CORE_READ(parent, tgid);
    __u8 *sel = bpf_map_lookup_elem(&traced_pids, &parent_tgid);
    if (!sel)
        return 0;
    __u8 v = *sel;
    bpf_map_update_elem(&traced_pids, &child_tgid, &v, BPF_ANY);
    if (pp_pid_bit(PP_BITS_NO_INJECT, parent_tgid))
        pp_pid_bit_set(PP_BITS_NO_INJECT, child_tgid);
    pp_pid_bit_set(PP_BITS_TRACED, child_tgid);
    return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(struct trace_event_raw_sched_process_template *ctx)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u32 tgid = pid_tgid >> 32;
    if (bpf_map_delete_elem(&thread_ctx, &pid_tgid) ==
        0) /* the thread's trace context ends with it */
        lru_count(PP_LRU_CTX_DELETED);
    if ((__u32)pid_tgid != tgid) /* a thread ended; the process goes on */
        return 0;
    if (!is_traced(tgid))
        return 0;
    struct pp_proc_event ev = {};
    fill_header(&ev.hdr, PP_EV_PROC_EXIT, pid_tgid, bpf_ktime_get_ns());
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    ev.exit_code = BPF_CORE_READ(task, exit_code) >> 8;
    ev.ppid = BPF_CORE_READ(task, real_parent, tgid);
    bpf_get_current_comm(ev.comm, sizeof(ev.comm));
    pp_pid_bit_clear(PP_BITS_TRACED, tgid);
    pp_pid_bit_clear(PP_BITS_TLS, tgid);
    pp_pid_bit_clear(PP_BITS_NO_INJECT, tgid);
    bpf_map_delete_elem(&traced_pids, &tgid);
    bpf_map_delete_elem(&sdk_reported, &tgid);
    bpf_map_delete_elem(&sample_proc_rules, &tgid);
    emit(&ev, sizeof(ev));
    return 0;
}
