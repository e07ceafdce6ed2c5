/* Userspace stand-in for libbpf's <bpf/bpf_endian.h> (little-endian hosts). */
#ifndef PASSPORT_STUB_BPF_ENDIAN_H
#define PASSPORT_STUB_BPF_ENDIAN_H

#define bpf_htons(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define bpf_ntohs(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define bpf_htonl(x) ((__u32)__builtin_bswap32((__u32)(x)))
#define bpf_ntohl(x) ((__u32)__builtin_bswap32((__u32)(x)))

#endif /* PASSPORT_STUB_BPF_ENDIAN_H */
