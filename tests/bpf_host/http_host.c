/* pp_host_* of http_host.h: bpf/lib/http.bpf.h itself, compiled against the stubs in stub/. */
#include "http_host.h"

#include "vmlinux.h"

#include "http.bpf.h"

int pp_host_starts_with_method(const uint8_t *m)
{
    return pp_starts_with_method(pp_first_word(m));
}

uint32_t pp_host_head_budget_take(struct pp_host_budget *b, int ingress, int request, uint64_t n,
                                  uint32_t first)
{
    struct pp_conn_state st = {.rx_head_budget = b->rx, .tx_head_budget = b->tx};
    uint32_t full = pp_head_budget_take(&st, ingress, request, n, first);
    b->rx = st.rx_head_budget;
    b->tx = st.tx_head_budget;
    return full;
}
