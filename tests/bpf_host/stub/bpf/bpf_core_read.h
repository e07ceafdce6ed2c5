/* Userspace stand-in for libbpf's <bpf/bpf_core_read.h>: BPF_CORE_READ(src, a, b, c) is the plain
 * load src->a->b->c (each argument may itself be a dotted path of embedded members); a NULL
 * pointer along the chain reads as 0, as the kernel's probe read of address 0 fails to 0. */
#ifndef PASSPORT_STUB_BPF_CORE_READ_H
#define PASSPORT_STUB_BPF_CORE_READ_H

#include <string.h>

#define pp_core_nz(p, e)                 ((p) ? (e) : 0)
#define PP_CORE_READ1(s, a)              pp_core_nz(s, (s)->a)
#define PP_CORE_READ2(s, a, b)           pp_core_nz(PP_CORE_READ1(s, a), PP_CORE_READ1(s, a)->b)
#define PP_CORE_READ3(s, a, b, c)        pp_core_nz(PP_CORE_READ2(s, a, b), PP_CORE_READ2(s, a, b)->c)
#define PP_CORE_PICK(_1, _2, _3, n, ...) n
#define BPF_CORE_READ(s, ...)                                                                      \
    PP_CORE_PICK(__VA_ARGS__, PP_CORE_READ3, PP_CORE_READ2, PP_CORE_READ1, _)(s, __VA_ARGS__)
#define bpf_core_read(dst, sz, src) (memcpy((dst), (src), (sz)), 0)

#endif /* PASSPORT_STUB_BPF_CORE_READ_H */
