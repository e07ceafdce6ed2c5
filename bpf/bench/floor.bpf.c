/* Benchmark floor: the tracepoints Passport attaches (bpf/probes/), each with a program
 * that returns at once. What any syscall-probe agent pays before doing any work of its own;
 * bench/ compares Passport against it. Loaded by bench/passport_floor. Not part of the agent. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define FLOOR_SYSCALL(call)                                                                        \
    SEC("tracepoint/syscalls/sys_enter_" #call)                                                    \
    int floor_enter_##call(struct trace_event_raw_sys_enter *ctx)                                  \
    {                                                                                              \
        return 0;                                                                                  \
    }                                                                                              \
    SEC("tracepoint/syscalls/sys_exit_" #call)                                                     \
    int floor_exit_##call(struct trace_event_raw_sys_exit *ctx)                                    \
    {                                                                                              \
        return 0;                                                                                  \
    }

/* data_syscalls.bpf.c */
FLOOR_SYSCALL(read)
FLOOR_SYSCALL(write)
FLOOR_SYSCALL(readv)
FLOOR_SYSCALL(writev)
FLOOR_SYSCALL(recvfrom)
FLOOR_SYSCALL(sendto)
FLOOR_SYSCALL(recvmsg)
FLOOR_SYSCALL(sendmsg)
FLOOR_SYSCALL(sendfile64)
/* sock_syscalls.bpf.c */
FLOOR_SYSCALL(accept)
FLOOR_SYSCALL(accept4)
FLOOR_SYSCALL(connect)

/* close.bpf.c: entry only */
SEC("tracepoint/syscalls/sys_enter_close")
int floor_enter_close(struct trace_event_raw_sys_enter *ctx)
{
    return 0;
}

/* process.bpf.c */
SEC("tracepoint/sched/sched_process_exec")
int floor_process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(floor_process_fork, struct task_struct *parent, struct task_struct *child)
{
    return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int floor_process_exit(struct trace_event_raw_sched_process_template *ctx)
{
    return 0;
}
