#include "agent/agent.hpp"

#include <bpf/libbpf.h>
#include <malloc.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/bpf_loader.hpp"
#include "agent/injection.hpp"
#include "agent/kernel_features.hpp"
#include "agent/process_selector.hpp"
#include "agent/tls_tracer.hpp"
#include "userspace/common/clock.hpp"
#include "userspace/events/decoder.hpp"
#include "userspace/events/record_redactor.hpp"
#include "userspace/events/recording.hpp"
#include "userspace/export/daemon_address.hpp"
#include "userspace/export/fanout_emitter.hpp"
#include "userspace/export/file_emitter.hpp"
#include "userspace/export/private_file.hpp"
#include "userspace/export/udp_emitter.hpp"
#include "userspace/pipeline/pipeline.hpp"
#include "userspace/sample/kernel_rules.hpp"
#include "userspace/sample/rules.hpp"

namespace passport::agent {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// --record: events as JSON lines in a 0600 file, credentials masked unless --record-raw.
struct Recorder {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file{nullptr, std::fclose};
    std::optional<events::RecordRedactor> redactor;  // empty with --record-raw

    void write(const events::Event& ev) {
        std::string line;
        if (const auto* d = std::get_if<events::Data>(&ev); d && redactor) {
            events::Event masked = *d;  // the pipeline keeps the original bytes
            redactor->redact(std::get<events::Data>(masked));
            line = events::to_json_line(masked);
        } else {
            if (const auto* c = std::get_if<events::ConnClose>(&ev); c && redactor)
                redactor->forget(c->conn);
            line = events::to_json_line(ev);
        }
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), file.get());
    }
};

Result<Recorder> open_recorder(const Config& cfg) {
    Recorder r;
    auto fd = exporter::open_private_file(cfg.record);
    if (!fd) return make_error(fd.error());
    r.file.reset(::fdopen(*fd, "w"));
    if (!r.file) {
        ::close(*fd);
        return make_error(cfg.record + ": fdopen failed");
    }
    if (!cfg.record_raw) r.redactor.emplace(redact::Policy{true, cfg.redact_names});
    return r;
}

struct RingContext {
    Counters* counters;
    pipeline::Pipeline* pipeline;
    ProcessSelector* selector;
    Recorder* record;
    TlsTracer* tls;                  // nullptr when TLS capture is off
    Injection* injection = nullptr;  // nullptr when injection is off
    bool trace_all = false;
    bool verbose = false;
    // Reused for every record: decode_counted keeps its payload storage (no allocation per record).
    events::Event event;
};

int on_record(void* ctx, void* data, size_t size) {
    auto* rc = static_cast<RingContext*>(ctx);
    events::Event& ev = rc->event;
    if (!events::decode_counted({static_cast<const uint8_t*>(data), size}, *rc->counters, ev))
        return 0;
    if (rc->record && rc->record->file) rc->record->write(ev);
    if (const auto* exec = std::get_if<events::ProcExec>(&ev)) {
        rc->selector->on_exec(*exec);
        // A process selected now may hold connections it opened before (inherited across exec).
        if (rc->injection && !rc->trace_all) rc->injection->adopt_process(exec->tgid);
    }
    if (const auto* exit = std::get_if<events::ProcExit>(&ev)) rc->selector->on_exit(*exit);
    if (const auto* inj = std::get_if<events::Inject>(&ev);
        inj && inj->outcome == events::InjectOutcome::kLeave && rc->injection)
        rc->injection->remove_socket(inj->socket_cookie);
    if (rc->tls) {
        if (const auto* exec = std::get_if<events::ProcExec>(&ev)) rc->tls->on_exec(exec->tgid);
        if (const auto* exit = std::get_if<events::ProcExit>(&ev)) rc->tls->on_exit(exit->tgid);
    }
    rc->pipeline->on_event(ev);
    return 0;
}

// Lets the fan-out feed an emitter it does not own (the demo's in-memory sink).
class ForwardingEmitter : public exporter::Emitter {
  public:
    explicit ForwardingEmitter(exporter::Emitter& target) : target_(target) {}
    void emit(std::string datagram) override { target_.emit(std::move(datagram)); }
    void flush() override { target_.flush(); }

  private:
    exporter::Emitter& target_;
};

std::string hostname() {
    char buf[256] = {};
    return ::gethostname(buf, sizeof(buf) - 1) == 0 ? buf : "";
}

}  // namespace

int run_agent(const Config& cfg, exporter::Emitter* extra_emitter, std::function<void()> on_ready) {
    if (::geteuid() != 0) {
        std::fprintf(
            stderr,
            "passport: must run as root (loads BPF programs and reads /proc of other users)\n");
        return 1;
    }
    KernelFeatures features = probe_kernel_features();
    std::fputs(format_feature_report(features).c_str(), stderr);
    if (!features.btf || !features.syscall_tracepoints || !features.ringbuf) {
        std::fprintf(
            stderr,
            "passport: this kernel lacks what capture needs (BTF, syscall tracepoints and a "
            "BPF ring buffer); nothing can be traced\n");
        return 1;
    }
    std::fprintf(
        stderr,
        "passport: capabilities: HTTP/1.x server segments and outgoing-call subsegments over "
        "plaintext TCP and OpenSSL TLS, kernel trace context, X-Amzn-Trace-Id injection, AWS API "
        "calls (see below). Not built yet: HTTP/2, gRPC, SQL, Go TLS (see "
        "docs/not-supported.md)\n");
    // AWS API calls: set before any traffic is processed, read-only afterwards.
    aws::set_options(aws::Options{.enabled = cfg.aws_calls, .endpoints = cfg.aws_endpoints});
    std::fprintf(stderr, "passport: AWS API calls: %s\n",
                 !cfg.aws_calls ? "off (--no-aws-calls): recorded as remote HTTP calls"
                 : cfg.aws_endpoints.empty()
                     ? "recognised by *.amazonaws.com hosts and SigV4 signatures (docs/aws.md)"
                     : "recognised by *.amazonaws.com hosts, SigV4 signatures and the configured "
                       "--aws-endpoint hosts (docs/aws.md)");

    spdlog::set_level(cfg.verbose ? spdlog::level::debug : spdlog::level::info);
    asio::io_context io;
    Counters counters;
    ClockOffset clock;

    // Emitters: UDP to the daemon and/or JSON lines to a file, plus the caller's own sink.
    exporter::FanoutEmitter fanout;
    if (!cfg.daemon_address.empty()) {
        auto addr = exporter::parse_daemon_address(cfg.daemon_address);
        if (!addr) {
            std::fprintf(stderr, "passport: daemon address: %s\n", addr.error().c_str());
            return 2;
        }
        auto u = exporter::UdpEmitter::create(io, addr->udp, counters);
        if (!u) {
            std::fprintf(stderr, "passport: %s\n", u.error().c_str());
            return 1;
        }
        (*u)->set_batch_size(64);  // one sendmmsg per drain instead of a syscall per document
        fanout.add(std::move(*u));
        std::fprintf(stderr, "passport: sending documents to the X-Ray daemon at udp %s\n",
                     exporter::to_string(addr->udp).c_str());
    }
    if (!cfg.output.empty()) {
        auto f = exporter::FileEmitter::open(cfg.output, counters);
        if (!f) {
            std::fprintf(stderr, "passport: --output: %s\n", f.error().c_str());
            return 1;
        }
        fanout.add(std::move(*f));
    }
    if (extra_emitter) fanout.add(std::make_unique<ForwardingEmitter>(*extra_emitter));

    sample::LocalRules rules = sample::default_local_rules();
    if (!cfg.sampling_rules.empty()) {
        auto r = sample::load_local_rules(cfg.sampling_rules);
        if (!r) {
            std::fprintf(stderr, "passport: --sampling-rules %s: %s\n", cfg.sampling_rules.c_str(),
                         r.error().c_str());
            return 2;
        }
        rules = std::move(*r);
    }

    // The kernel decides sampling for the traces it mints (the decision travels downstream in
    // injected headers before userspace sees the request); rules it cannot hold stay here.
    sample::KernelRules kernel_rules = sample::compile_kernel_rules(rules);
    if (kernel_rules.deferred > 0)
        std::fprintf(stderr,
                     "passport: %zu sampling rule(s) too long or beyond the first %d: requests "
                     "reaching them are "
                     "sampled in userspace, not in the kernel\n",
                     kernel_rules.deferred, PP_MAX_SAMPLE_RULES);
    counters.set("kernel.sampling_rules_deferred", kernel_rules.deferred);

    pipeline::PipelineConfig pcfg;
    pcfg.correlator.kernel_rule_names = kernel_rules.names;
    pcfg.correlator.configured_service_name = cfg.service_name;
    pcfg.correlator.hostname = hostname();
    pcfg.correlator.redaction = {cfg.redact, cfg.redact_names};
    pcfg.correlator.export_process_args = cfg.export_process_args;
    pcfg.tracker.memory_budget_bytes = size_t{cfg.memory_budget_mb} * 1024 * 1024;
    pipeline::Pipeline pipe(pcfg, std::make_unique<sample::LocalSampler>(std::move(rules)), fanout,
                            counters, clock);

    ProbeConfig pc;
    pc.trace_all = cfg.trace_all();
    pc.server_ports = cfg.ports;
    pc.ringbuf_bytes = cfg.ringbuf_mb * 1024u * 1024u;
    pc.max_connections = cfg.max_connections;
    pc.sample_rules = kernel_rules.rules;
    pc.sample_default = kernel_rules.default_rule;
    pc.sample_cfg = kernel_rules.cfg;
    pc.inject = cfg.inject && features.sk_msg && features.sock_ops;
    auto loaded = BpfProbes::load(pc);
    if (!loaded) {
        std::fprintf(stderr, "passport: %s\n", loaded.error().c_str());
        return 1;
    }
    std::unique_ptr<BpfProbes> probes = std::move(*loaded);
    // Loading parses the kernel's BTF (tens of MB, freed once CO-RE relocation is done); give
    // those pages back instead of keeping them as idle heap for the agent's whole life.
    ::malloc_trim(0);
    std::fprintf(stderr, "  %s tp_btf - %s\n", probes->fork_inheritance() ? "[yes]" : "[no] ",
                 probes->fork_inheritance()
                     ? "children forked by selected processes are selected in the kernel"
                     : "refused by this kernel: children forked by selected processes after start "
                       "are not traced");

    // Header injection: optional; everything else works without it.
    std::unique_ptr<Injection> injection;
    {
        std::string why;
        if (!cfg.inject) {
            why = "off (--no-inject)";
        } else if (!features.sk_msg || !features.sock_ops) {
            why = "off: this kernel lacks sock_ops/sk_msg programs";
        } else {
            std::vector<DenyEntry> deny;
            for (uint16_t port : kDefaultInjectDenyPorts)
                deny.push_back(DenyEntry{.is_port = true, .port = port});
            for (const auto& d : cfg.inject_deny) deny.push_back(*parse_deny(d));
            auto inj = Injection::attach(*probes, deny, features.cgroup2_path, cfg.trace_all());
            if (inj) {
                injection = std::move(*inj);
            } else {
                why = "off: " + inj.error();
            }
        }
        if (injection) {
            std::fprintf(
                stderr,
                "  [yes] injection - X-Amzn-Trace-Id added to plaintext HTTP/1.x requests of "
                "traced "
                "processes on connections opened from now on, and on those they opened earlier "
                "(adopted) (sock_ops on %s); never to %zu well-known non-HTTP ports%s\n",
                injection->cgroup_path().c_str(), std::size(kDefaultInjectDenyPorts),
                cfg.inject_deny.empty() ? "" : " nor to --inject-deny");
        } else {
            std::fprintf(stderr, "  [no]  injection - %s\n", why.c_str());
        }
    }

    ProcessSelector selector(cfg, *probes, counters);
    auto scanned = selector.scan();
    if (!scanned) {
        std::fprintf(stderr, "passport: %s\n", scanned.error().c_str());
        return 2;
    }

    // Connections the selected processes opened before now never passed sock_ops: adopt them
    // (docs/injection.md, "Connections opened earlier").
    if (injection) {
        size_t adopted = injection->adopt_selected();
        std::fprintf(
            stderr, "        injection adopted %zu established connection(s) opened before start\n",
            adopted);
    }

    // TLS: OpenSSL uprobes on the selected processes (docs/tls.md).
    std::unique_ptr<TlsTracer> tls;
    if (!cfg.tls) {
        std::fprintf(stderr, "  [no]  TLS - off (--no-tls): HTTPS traffic is not traced\n");
    } else if (!features.uprobes) {
        std::fprintf(stderr,
                     "  [no]  TLS - this kernel refuses uprobes: HTTPS traffic is not traced\n");
    } else {
        tls = std::make_unique<TlsTracer>(*probes, counters, cfg.trace_all());
        tls->scan_selected();
        if (tls->attached_binaries() == 0) {
            std::fprintf(stderr,
                         "  [yes] TLS - OpenSSL uprobes ready, nothing attached yet: no selected "
                         "process maps "
                         "libssl.so.* or exports SSL_write; processes that load it later are "
                         "attached then\n");
        } else {
            std::fprintf(stderr, "  [yes] TLS - OpenSSL uprobes on %zu binaries in %zu processes\n",
                         tls->attached_binaries(), tls->attached_processes());
        }
        if (cfg.verbose) {
            for (const auto& line : tls->describe())
                std::fprintf(stderr, "        tls %s\n", line.c_str());
        }
    }

    Recorder record;
    if (!cfg.record.empty()) {
        auto r = open_recorder(cfg);
        if (!r) {
            std::fprintf(stderr, "passport: --record: %s\n", r.error().c_str());
            return 1;
        }
        record = std::move(*r);
    }
    RingContext rc{&counters,       &pipe,           &selector,   &record, tls.get(),
                   injection.get(), cfg.trace_all(), cfg.verbose, {}};
    std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> ring(
        ring_buffer__new(probes->events_map_fd(), on_record, &rc, nullptr), ring_buffer__free);
    if (!ring) {
        std::fprintf(stderr, "passport: ring buffer setup failed\n");
        return 1;
    }

    // The kernel side wakes us only when much data waits (wakeups are costly there); a short
    // timer drains the rest.
    asio::posix::stream_descriptor ring_fd(io, ::dup(ring_buffer__epoll_fd(ring.get())));
    std::function<void()> wait_ring = [&]() {
        ring_fd.async_wait(asio::posix::stream_descriptor::wait_read,
                           [&](boost::system::error_code ec) {
                               if (ec) return;
                               ring_buffer__consume(ring.get());
                               fanout.flush();
                               wait_ring();
                           });
    };
    wait_ring();

    auto every = [&](std::chrono::milliseconds period, std::function<void()> fn) {
        auto timer = std::make_shared<asio::steady_timer>(io);
        auto tick = std::make_shared<std::function<void()>>();
        *tick = [timer, period, fn, tick]() {
            timer->expires_after(period);
            timer->async_wait([timer, fn, tick](boost::system::error_code ec) {
                if (ec) return;
                fn();
                (*tick)();
            });
        };
        (*tick)();
        return timer;
    };
    auto t_drain = every(10ms, [&]() {
        ring_buffer__consume(ring.get());
        fanout.flush();  // batched datagrams leave at most one tick after their document
    });
    auto t_tick = every(200ms, [&]() { pipe.tick(monotonic_now_ns()); });
    auto t_tls = every(100ms, [&]() {
        if (tls) tls->tick();
    });
    auto t_clock = every(10s, [&]() { clock.refresh(); });
    // The kernel's epoch offset (minted trace ids) follows wall-clock steps within a second.
    auto t_kclock = every(1s, [&]() { probes->refresh_clock(); });

    auto stop = [&]() { io.stop(); };
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (!ec) stop();
    });
    asio::steady_timer duration_timer(io);
    if (cfg.duration_s > 0) {
        duration_timer.expires_after(
            std::chrono::milliseconds(static_cast<int64_t>(cfg.duration_s * 1000)));
        duration_timer.async_wait([&](boost::system::error_code ec) {
            if (!ec) stop();
        });
    }

    std::fprintf(stderr, "passport: %zu programs attached; tracing %s\n", probes->attached().size(),
                 cfg.trace_all() ? "every process except passport"
                                 : (std::to_string(*scanned) +
                                    " selected process(es) and their future children")
                                       .c_str());
    std::fprintf(stderr, "passport: ready\n");
    std::fflush(stderr);
    if (on_ready) asio::post(io, on_ready);

    io.run();

    // Drain what the kernel already wrote, end open exchanges, then detach.
    ring_buffer__consume(ring.get());
    pipe.shutdown();
    auto drops = probes->drop_counts();
    for (int r = 0; r < PP_DROP_REASON_COUNT; r++)
        counters.set(std::string("kernel.") + drop_reason_name(r), drops[static_cast<size_t>(r)]);
    const auto lru = probes->lru_evictions();
    counters.set("kernel.conns_evicted", lru.conns);
    counters.set("kernel.thread_ctx_evicted", lru.thread_ctx);
    auto ctxc = probes->ctx_counts();
    for (int r = 0; r < PP_CTXC_COUNT; r++)
        counters.set(std::string("kernel.") + ctx_counter_name(r), ctxc[static_cast<size_t>(r)]);
    if (injection) {
        auto ic = injection->counters();
        for (int c = 0; c < PP_INJC_COUNT; c++)
            counters.set(std::string("inject.") + inject_counter_name(c),
                         ic[static_cast<size_t>(c)]);
        const auto& ac = injection->adopt_counts();
        counters.set("inject.adopted_sockets", ac.adopted);
        counters.set("inject.adopt_denied", ac.denied);
        counters.set("inject.adopt_ebusy", ac.ebusy);
        counters.set("inject.adopt_blocking", ac.blocking);
        counters.set("inject.adopt_removed", ac.removed);
        counters.set("inject.adopt_failed", ac.failed);
    }
    injection.reset();  // detach before the programs and maps go
    ring.reset();
    tls.reset();  // uprobe links before the programs they use
    probes.reset();
    if (record.file) std::fflush(record.file.get());

    for (const auto& [name, value] : counters.all())
        std::fprintf(stderr, "counter %s %llu\n", name.c_str(),
                     static_cast<unsigned long long>(value));
    return 0;
}

}  // namespace passport::agent
