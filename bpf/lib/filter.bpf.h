/* Which processes are traced. Runs first in every program so unselected processes pay one
 * hash lookup and nothing else. */
#ifndef PASSPORT_FILTER_BPF_H
#define PASSPORT_FILTER_BPF_H

#include "maps.bpf.h"

static __always_inline int is_traced(__u32 tgid)
{
    if (tgid == pp_cfg.self_tgid)
        return 0;
    if (pp_cfg.trace_all)
        return 1;
    return bpf_map_lookup_elem(&traced_pids, &tgid) != NULL;
}

static __always_inline int server_port_allowed(__u16 local_port)
{
    if (!pp_cfg.filter_ports)
        return 1;
    return bpf_map_lookup_elem(&server_ports, &local_port) != NULL;
}

#endif /* PASSPORT_FILTER_BPF_H */
