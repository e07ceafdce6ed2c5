/* Userspace stand-in for the generated vmlinux.h: the UAPI headers give the BPF enums and flags
 * (map types, BPF_ANY, BPF_RB_*, BPF_F_*) and the __u8..__u64 types the kernel-side headers use.
 * Kernel structs they only name are declared here; add one when a header needs it. */
#ifndef PASSPORT_STUB_VMLINUX_H
#define PASSPORT_STUB_VMLINUX_H

#include <linux/bpf.h>
#include <linux/types.h>

struct task_struct;

#endif /* PASSPORT_STUB_VMLINUX_H */
