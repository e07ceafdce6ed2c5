/* Which processes are traced. Runs first in every program (exit programs included, before any
 * map lookup) so unselected processes pay one load from the selection bitmap and nothing else. */
#ifndef PASSPORT_FILTER_BPF_H
#define PASSPORT_FILTER_BPF_H

#include "maps.bpf.h"

static __always_inline int is_traced(__u32 tgid)
{
    if (tgid == pp_cfg.self_tgid)
        return 0;
    if (pp_cfg.trace_all)
        return 1;
    return pp_pid_bit(PP_BITS_TRACED, tgid);
}

static __always_inline int server_port_allowed(__u16 local_port)
{
    if (!pp_cfg.filter_ports)
        return 1;
    return bpf_map_lookup_elem(&server_ports, &local_port) != NULL;
}

#endif /* PASSPORT_FILTER_BPF_H */
