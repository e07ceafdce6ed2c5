/* Processes that report to X-Ray themselves: a traced process that sends, on a UDP socket, a
 * datagram starting with the X-Ray daemon header (PP_XRAY_DGRAM_HDR, or PP_XRAY_DGRAM_HDR_SP)
 * has an X-Ray SDK of its own. Reported once per process as PP_EV_SDK_DATAGRAM; userspace then
 * leaves the process's server segments to the SDK (docs/sdk.md).
 * Called at the entry of the send syscalls, only for fds already known to be UDP sockets: TCP
 * traffic never reaches it. Maps: sdk_reported, events. */
#ifndef PASSPORT_SDK_DGRAM_BPF_H
#define PASSPORT_SDK_DGRAM_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "emit.bpf.h"
#include "maps.bpf.h"

/* The first bytes of a datagram: the longer header's worth, or the shorter one's when the
 * buffer ends sooner (a read across an unmapped page fails). 0: neither could be read. */
static __always_inline __u32 pp_dgram_read_head(__u8 *b, __u64 addr)
{
    if (bpf_probe_read_user(b, PP_XRAY_DGRAM_HDR_SP_LEN, (void *)addr) == 0)
        return PP_XRAY_DGRAM_HDR_SP_LEN;
    if (bpf_probe_read_user(b, PP_XRAY_DGRAM_HDR_LEN, (void *)addr) == 0)
        return PP_XRAY_DGRAM_HDR_LEN;
    return 0;
}

/* 1: the compact header, 2: the spaced one, 0: neither. Branch-free, so the verifier walks the
 * comparison once rather than once per combination of matching bytes. */
static __always_inline int pp_dgram_header_kind(const __u8 *b, __u32 n)
{
    __u32 diff_compact = 0, diff_spaced = 0;
#pragma unroll
    for (int i = 0; i < PP_XRAY_DGRAM_HDR_SP_LEN; i++) {
        if (i < PP_XRAY_DGRAM_HDR_LEN) /* constant after unrolling */
            diff_compact |= b[i] ^ (__u8)PP_XRAY_DGRAM_HDR[i];
        diff_spaced |= b[i] ^ (__u8)PP_XRAY_DGRAM_HDR_SP[i];
    }
    if (n >= PP_XRAY_DGRAM_HDR_LEN && diff_compact == 0)
        return 1;
    if (n >= PP_XRAY_DGRAM_HDR_SP_LEN && diff_spaced == 0)
        return 2;
    return 0;
}

/* The address of a send's first bytes: the buffer itself, the first iovec's base, or that of a
 * msghdr's first iovec (sendmsg; sendmmsg's first message starts with one). 0: none. */
static __always_inline __u64 pp_dgram_first_bytes(__u64 buf, __u8 kind)
{
    if (kind == PP_IO_BUF)
        return buf;
    __u64 iov_ptr = buf;
    if (kind == PP_IO_MSGHDR) {
        struct user_msghdr mh;
        if (bpf_probe_read_user(&mh, sizeof(mh), (void *)buf) != 0 || mh.msg_iovlen == 0)
            return 0;
        iov_ptr = (__u64)mh.msg_iov;
    } else if (kind != PP_IO_IOVEC) {
        return 0;
    }
    struct iovec iov;
    if (bpf_probe_read_user(&iov, sizeof(iov), (void *)iov_ptr) != 0 ||
        iov.iov_len < PP_XRAY_DGRAM_HDR_LEN)
        return 0;
    return (__u64)iov.iov_base;
}

/* A traced process sends on a UDP socket: report it once if the datagram is one for the daemon. */
static __noinline __attribute__((unused)) void pp_sdk_datagram_check(__u64 pid_tgid, __u64 buf,
                                                                     __u8 kind, __u8 syscall)
{
    __u32 tgid = pid_tgid >> 32;
    if (bpf_map_lookup_elem(&sdk_reported, &tgid))
        return; /* already reported: one lookup per datagram from then on */
    __u64 addr = pp_dgram_first_bytes(buf, kind);
    if (!addr)
        return;
    __u8 b[PP_XRAY_DGRAM_HDR_SP_LEN] = {};
    int found = pp_dgram_header_kind(b, pp_dgram_read_head(b, addr));
    if (!found)
        return;
    __u8 one = 1;
    if (bpf_map_update_elem(&sdk_reported, &tgid, &one, BPF_NOEXIST) != 0)
        return; /* another thread reported it first, or the map is full */
    struct pp_sdk_event ev = {};
    fill_header(&ev.hdr, PP_EV_SDK_DATAGRAM, pid_tgid, bpf_ktime_get_ns());
    ev.syscall = syscall;
    ev.spaced = found == 2;
    emit(&ev, sizeof(ev));
}

#endif /* PASSPORT_SDK_DGRAM_BPF_H */
