/* Loader for the Go TLS prototype (bpf/gotls.bpf.c here), for check.sh only:
 *   gotls-loader BINARY PID WRITE_OFF READ_OFF RET_OFF...
 * Selects PID, attaches the three programs at the given file offsets of BINARY, prints
 * "attached" on stderr, then one line per event on stdout until SIGINT/SIGTERM:
 *   W|R fd=FD len=LEN g=GOROUTINE data=<first 255 bytes, \n as |, \r as ~, others as .> */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "gotls.skel.h"

struct gotls_event_view {
    unsigned int tgid, tid;
    unsigned long long goroutine, ts_ns;
    long long fd, len;
    unsigned int kind, captured;
    unsigned char data[4096];
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static int on_event(void *ctx, void *data, size_t size) {
    (void)ctx;
    (void)size;
    const struct gotls_event_view *e = data;
    printf("%s fd=%lld len=%lld g=%llx data=", e->kind == 1 ? "W" : "R", e->fd, e->len,
           e->goroutine);
    for (unsigned int i = 0; i < e->captured && i < 255; i++) {
        unsigned char c = e->data[i];
        putchar(c == '\n' ? '|' : c == '\r' ? '~' : (c >= 32 && c < 127) ? c : '.');
    }
    putchar('\n');
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s BINARY PID WRITE_OFF READ_OFF RET_OFF...\n", argv[0]);
        return 2;
    }
    const char *binary = argv[1];
    struct gotls *skel = gotls__open_and_load();
    if (!skel) {
        perror("gotls: load");
        return 1;
    }
    unsigned int pid = (unsigned int)atoi(argv[2]);
    unsigned char yes = 1;
    bpf_map_update_elem(bpf_map__fd(skel->maps.gotls_pids), &pid, &yes, BPF_ANY);
    LIBBPF_OPTS(bpf_uprobe_opts, opts);
    struct {
        struct bpf_program *prog;
        const char *offset;
    } attach[64];
    int n = 0;
    attach[n].prog = skel->progs.gotls_write_entry, attach[n++].offset = argv[3];
    attach[n].prog = skel->progs.gotls_read_entry, attach[n++].offset = argv[4];
    for (int i = 5; i < argc && n < 64; i++)
        attach[n].prog = skel->progs.gotls_read_ret, attach[n++].offset = argv[i];
    for (int i = 0; i < n; i++) {
        if (!bpf_program__attach_uprobe_opts(attach[i].prog, -1, binary,
                                             strtoul(attach[i].offset, NULL, 0), &opts)) {
            fprintf(stderr, "gotls: attach at %s failed\n", attach[i].offset);
            gotls__destroy(skel);
            return 1;
        }
    }
    struct ring_buffer *rb =
        ring_buffer__new(bpf_map__fd(skel->maps.gotls_events), on_event, NULL, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "attached\n");
    while (!stopping) ring_buffer__poll(rb, 100);
    ring_buffer__poll(rb, 0);
    fflush(stdout);
    ring_buffer__free(rb);
    gotls__destroy(skel);
    return 0;
}
