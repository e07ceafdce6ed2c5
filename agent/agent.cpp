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

// The start report and the exit counters: user-facing lines, printed as they are.
spdlog::logger& report() {
    static const std::shared_ptr<spdlog::logger> logger = [] {
        auto named = spdlog::get(kReportLogger);  // registered by main()
        return named ? named : spdlog::default_logger();
    }();
    return *logger;
}

// A timer that runs `fn` every `period` on `io` until the io_context stops.
std::shared_ptr<asio::steady_timer> every(asio::io_context& io, std::chrono::milliseconds period,
                                          std::function<void()> fn) {
    auto timer = std::make_shared<asio::steady_timer>(io);
    auto tick = std::make_shared<std::function<void()>>();
    *tick = [timer, period, fn = std::move(fn), tick]() {
        timer->expires_after(period);
        timer->async_wait([timer, fn, tick](boost::system::error_code ec) {
            if (ec) return;
            fn();
            (*tick)();
        });
    };
    (*tick)();
    return timer;
}

// One run of the agent, from the kernel check to the exit counters. Each start-up step returns
// 0 to go on or the exit status to stop with (1: cannot run here, 2: bad configuration), having
// said why. Members are declared in the order they are built, so an early return tears them
// down in reverse, as the normal shutdown does.
class Agent {
  public:
    Agent(const Config& cfg, exporter::Emitter* extra_emitter)
        : cfg_(cfg), extra_emitter_(extra_emitter) {}

    int run(const std::function<void()>& on_ready) {
        if (int rc = check_kernel(); rc != 0) return rc;
        enable_aws_calls();
        if (int rc = open_outputs(); rc != 0) return rc;
        if (int rc = build_pipeline(); rc != 0) return rc;
        if (int rc = load_probes(); rc != 0) return rc;
        start_injection();
        if (int rc = select_processes(); rc != 0) return rc;
        adopt_connections();
        start_tls();
        if (int rc = open_ring(); rc != 0) return rc;
        schedule_work();
        report_ready();
        if (on_ready) asio::post(io_, on_ready);
        io_.run();
        shutdown();
        return 0;
    }

  private:
    int check_kernel() {
        if (::geteuid() != 0) {
            spdlog::error("must run as root (loads BPF programs and reads /proc of other users)");
            return 1;
        }
        features_ = probe_kernel_features();
        std::string text = format_feature_report(features_);
        if (!text.empty() && text.back() == '\n') text.pop_back();
        report().info(text);
        if (!features_.btf || !features_.syscall_tracepoints || !features_.ringbuf) {
            spdlog::error(
                "this kernel lacks what capture needs (BTF, syscall tracepoints and a BPF ring "
                "buffer); nothing can be traced");
            return 1;
        }
        spdlog::info(
            "capabilities: HTTP/1.x server segments and outgoing-call subsegments over plaintext "
            "TCP and OpenSSL TLS, kernel trace context, X-Amzn-Trace-Id injection, AWS API calls "
            "(see below). Not built yet: HTTP/2, gRPC, SQL, Go TLS (see docs/not-supported.md)");
        return 0;
    }

    // Set before any traffic is processed, read-only afterwards.
    void enable_aws_calls() {
        aws::set_options(aws::Options{.enabled = cfg_.aws_calls, .endpoints = cfg_.aws_endpoints});
        spdlog::info("AWS API calls: {}",
                     !cfg_.aws_calls ? "off (--no-aws-calls): recorded as remote HTTP calls"
                     : cfg_.aws_endpoints.empty()
                         ? "recognised by *.amazonaws.com hosts and SigV4 signatures (docs/aws.md)"
                         : "recognised by *.amazonaws.com hosts, SigV4 signatures and the "
                           "configured --aws-endpoint hosts (docs/aws.md)");
    }

    // Emitters: UDP to the daemon and/or JSON lines to a file, plus the caller's own sink.
    int open_outputs() {
        if (!cfg_.daemon_address.empty()) {
            auto addr = exporter::parse_daemon_address(cfg_.daemon_address);
            if (!addr) {
                spdlog::error("daemon address: {}", addr.error());
                return 2;
            }
            auto u = exporter::UdpEmitter::create(io_, addr->udp, counters_);
            if (!u) {
                spdlog::error("{}", u.error());
                return 1;
            }
            (*u)->set_batch_size(64);  // one sendmmsg per drain instead of a syscall per document
            fanout_.add(std::move(*u));
            spdlog::info("sending documents to the X-Ray daemon at udp {}",
                         exporter::to_string(addr->udp));
        }
        if (!cfg_.output.empty()) {
            auto f = exporter::FileEmitter::open(cfg_.output, counters_);
            if (!f) {
                spdlog::error("--output: {}", f.error());
                return 1;
            }
            fanout_.add(std::move(*f));
        }
        if (extra_emitter_) fanout_.add(std::make_unique<ForwardingEmitter>(*extra_emitter_));
        return 0;
    }

    // Sampling rules, split between the kernel and userspace, and the pipeline that uses them.
    int build_pipeline() {
        sample::LocalRules rules = sample::default_local_rules();
        if (!cfg_.sampling_rules.empty()) {
            auto r = sample::load_local_rules(cfg_.sampling_rules);
            if (!r) {
                spdlog::error("--sampling-rules {}: {}", cfg_.sampling_rules, r.error());
                return 2;
            }
            rules = std::move(*r);
        }
        // The kernel decides sampling for the traces it mints (the decision travels downstream
        // in injected headers before userspace sees the request); rules it cannot hold stay here.
        kernel_rules_ = sample::compile_kernel_rules(rules);
        if (kernel_rules_.deferred > 0)
            spdlog::warn(
                "{} sampling rule(s) too long or beyond the first {}: requests reaching them are "
                "sampled in userspace, not in the kernel",
                kernel_rules_.deferred, PP_MAX_SAMPLE_RULES);
        counters_.set("kernel.sampling_rules_deferred", kernel_rules_.deferred);

        pipeline::PipelineConfig pcfg;
        pcfg.correlator.kernel_rule_names = kernel_rules_.names;
        pcfg.correlator.configured_service_name = cfg_.service_name;
        pcfg.correlator.hostname = hostname();
        pcfg.correlator.redaction = {cfg_.redact, cfg_.redact_names};
        pcfg.correlator.export_process_args = cfg_.export_process_args;
        pcfg.tracker.memory_budget_bytes = size_t{cfg_.memory_budget_mb} * 1024 * 1024;
        pipeline_ = std::make_unique<pipeline::Pipeline>(
            pcfg, std::make_unique<sample::LocalSampler>(std::move(rules)), fanout_, counters_,
            clock_);
        return 0;
    }

    int load_probes() {
        ProbeConfig pc;
        pc.trace_all = cfg_.trace_all();
        pc.server_ports = cfg_.ports;
        pc.ringbuf_bytes = cfg_.ringbuf_mb * 1024u * 1024u;
        pc.max_connections = cfg_.max_connections;
        pc.sample_rules = kernel_rules_.rules;
        pc.sample_default = kernel_rules_.default_rule;
        pc.sample_cfg = kernel_rules_.cfg;
        pc.inject = cfg_.inject && features_.sk_msg && features_.sock_ops;
        auto loaded = BpfProbes::load(pc);
        if (!loaded) {
            spdlog::error("{}", loaded.error());
            return 1;
        }
        probes_ = std::move(*loaded);
        // Loading parses the kernel's BTF (tens of MB, freed once CO-RE relocation is done); give
        // those pages back instead of keeping them as idle heap for the agent's whole life.
        ::malloc_trim(0);
        report().info("  {} tp_btf - {}", probes_->fork_inheritance() ? "[yes]" : "[no] ",
                      probes_->fork_inheritance()
                          ? "children forked by selected processes are selected in the kernel"
                          : "refused by this kernel: children forked by selected processes after "
                            "start are not traced");
        return 0;
    }

    // Header injection: optional; everything else works without it.
    void start_injection() {
        std::string why;
        if (!cfg_.inject) {
            why = "off (--no-inject)";
        } else if (!features_.sk_msg || !features_.sock_ops) {
            why = "off: this kernel lacks sock_ops/sk_msg programs";
        } else {
            std::vector<DenyEntry> deny;
            for (uint16_t port : kDefaultInjectDenyPorts)
                deny.push_back(DenyEntry{.is_port = true, .port = port});
            for (const auto& d : cfg_.inject_deny) deny.push_back(*parse_deny(d));
            auto inj = Injection::attach(*probes_, deny, features_.cgroup2_path, cfg_.trace_all());
            if (inj) {
                injection_ = std::move(*inj);
            } else {
                why = "off: " + inj.error();
            }
        }
        if (!injection_) {
            report().info("  [no]  injection - {}", why);
            return;
        }
        report().info(
            "  [yes] injection - X-Amzn-Trace-Id added to plaintext HTTP/1.x requests of traced "
            "processes on connections opened from now on, and on those they opened earlier "
            "(adopted) (sock_ops on {}); never to {} well-known non-HTTP ports{}",
            injection_->cgroup_path(), std::size(kDefaultInjectDenyPorts),
            cfg_.inject_deny.empty() ? "" : " nor to --inject-deny");
    }

    int select_processes() {
        selector_ = std::make_unique<ProcessSelector>(cfg_, *probes_, counters_);
        auto scanned = selector_->scan();
        if (!scanned) {
            spdlog::error("{}", scanned.error());
            return 2;
        }
        selected_ = *scanned;
        return 0;
    }

    // Connections the selected processes opened before now never passed sock_ops: adopt them
    // (docs/injection.md, "Connections opened earlier").
    void adopt_connections() {
        if (!injection_) return;
        size_t adopted = injection_->adopt_selected();
        report().info("        injection adopted {} established connection(s) opened before start",
                      adopted);
    }

    // TLS: OpenSSL uprobes for the selected processes (docs/tls.md). The maps are read now; the
    // uprobes are attached after `ready`, in slices between ring reads (attach_tls_slice).
    void start_tls() {
        if (!cfg_.tls) {
            report().info("  [no]  TLS - off (--no-tls): HTTPS traffic is not traced");
            return;
        }
        if (!features_.uprobes) {
            report().info("  [no]  TLS - this kernel refuses uprobes: HTTPS traffic is not traced");
            return;
        }
        tls_started_ = std::chrono::steady_clock::now();
        tls_ = std::make_unique<TlsTracer>(*probes_, counters_, cfg_.trace_all());
        const size_t binaries = tls_->begin_scan();
        if (binaries == 0) {
            report().info(
                "  [yes] TLS - OpenSSL uprobes ready, nothing attached yet: no selected process "
                "maps libssl.so.* or exports SSL_write; processes that load it later are attached "
                "then");
        } else {
            report().info("  [yes] TLS - attaching in the background to {} binaries", binaries);
        }
    }

    // One slice of the start's TLS attaching, then the ring and timers get their turn.
    void attach_tls_slice() {
        if (!tls_->attach_step(20ms)) {
            asio::post(io_, [this]() { attach_tls_slice(); });
            return;
        }
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - tls_started_)
                            .count();
        spdlog::info("tls: attached to {} binaries covering {} processes in {} ms",
                     tls_->attached_binaries(), tls_->attached_processes(), ms);
        if (cfg_.verbose) {
            for (const auto& line : tls_->describe()) report().info("        tls {}", line);
        }
    }

    // The recorder, then the ring buffer that feeds it and the pipeline.
    int open_ring() {
        if (!cfg_.record.empty()) {
            auto r = open_recorder(cfg_);
            if (!r) {
                spdlog::error("--record: {}", r.error());
                return 1;
            }
            record_ = std::move(*r);
        }
        ring_context_ = RingContext{&counters_, pipeline_.get(),  selector_.get(),  &record_,
                                    tls_.get(), injection_.get(), cfg_.trace_all(), {}};
        ring_.reset(ring_buffer__new(probes_->events_map_fd(), on_record, &ring_context_, nullptr));
        if (!ring_) {
            spdlog::error("ring buffer setup failed");
            return 1;
        }
        return 0;
    }

    // Everything the io_context runs: ring reads, periodic work, and what stops the agent.
    void schedule_work() {
        // The kernel side wakes us only when much data waits (wakeups are costly there); a short
        // timer drains the rest.
        ring_fd_.emplace(io_, ::dup(ring_buffer__epoll_fd(ring_.get())));
        wait_ring();
        timers_.push_back(every(io_, 10ms, [this]() {
            ring_buffer__consume(ring_.get());
            fanout_.flush();  // batched datagrams leave at most one tick after their document
        }));
        timers_.push_back(every(io_, 200ms, [this]() { pipeline_->tick(monotonic_now_ns()); }));
        timers_.push_back(every(io_, 100ms, [this]() {
            if (tls_) tls_->tick();
        }));
        if (tls_) asio::post(io_, [this]() { attach_tls_slice(); });
        timers_.push_back(every(io_, 10s, [this]() { clock_.refresh(); }));
        // The kernel's epoch offset (minted trace ids) follows wall-clock steps within a second.
        timers_.push_back(every(io_, 1s, [this]() { probes_->refresh_clock(); }));

        signals_.async_wait([this](boost::system::error_code ec, int) {
            if (!ec) io_.stop();
        });
        if (cfg_.duration_s > 0) {
            duration_timer_.expires_after(
                std::chrono::milliseconds(static_cast<int64_t>(cfg_.duration_s * 1000)));
            duration_timer_.async_wait([this](boost::system::error_code ec) {
                if (!ec) io_.stop();
            });
        }
    }

    void wait_ring() {
        ring_fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                             [this](boost::system::error_code ec) {
                                 if (ec) return;
                                 ring_buffer__consume(ring_.get());
                                 fanout_.flush();
                                 wait_ring();
                             });
    }

    void report_ready() {
        // Records written since the probes were loaded, first: a process exec'd during the start
        // and matched by --exe is selected before `ready`, not after the first ring read (a
        // request it serves right after `ready` would otherwise find it unselected).
        ring_buffer__consume(ring_.get());
        spdlog::info("{} programs attached; tracing {}", probes_->attached().size(),
                     cfg_.trace_all() ? "every process except passport"
                                      : std::to_string(selected_) +
                                            " selected process(es) and their future children");
        spdlog::info("ready");
    }

    // Drain what the kernel already wrote, end open exchanges, detach, then print the counters.
    void shutdown() {
        ring_buffer__consume(ring_.get());
        pipeline_->shutdown();
        collect_kernel_counters();
        injection_.reset();  // detach before the programs and maps go
        ring_.reset();
        tls_.reset();  // uprobe links before the programs they use
        probes_.reset();
        if (record_.file) std::fflush(record_.file.get());
        for (const auto& [name, value] : counters_.all())
            report().info("counter {} {}", name, value);
    }

    void collect_kernel_counters() {
        auto drops = probes_->drop_counts();
        for (int r = 0; r < PP_DROP_REASON_COUNT; r++)
            counters_.set(std::string("kernel.") + drop_reason_name(r),
                          drops[static_cast<size_t>(r)]);
        const auto lru = probes_->lru_evictions();
        counters_.set("kernel.conns_evicted", lru.conns);
        counters_.set("kernel.thread_ctx_evicted", lru.thread_ctx);
        auto ctxc = probes_->ctx_counts();
        for (int r = 0; r < PP_CTXC_COUNT; r++)
            counters_.set(std::string("kernel.") + ctx_counter_name(r),
                          ctxc[static_cast<size_t>(r)]);
        if (!injection_) return;
        auto ic = injection_->counters();
        for (int c = 0; c < PP_INJC_COUNT; c++)
            counters_.set(std::string("inject.") + inject_counter_name(c),
                          ic[static_cast<size_t>(c)]);
        const auto& ac = injection_->adopt_counts();
        counters_.set("inject.adopted_sockets", ac.adopted);
        counters_.set("inject.adopt_denied", ac.denied);
        counters_.set("inject.adopt_ebusy", ac.ebusy);
        counters_.set("inject.adopt_blocking", ac.blocking);
        counters_.set("inject.adopt_removed", ac.removed);
        counters_.set("inject.adopt_failed", ac.failed);
    }

    const Config& cfg_;
    exporter::Emitter* extra_emitter_;
    KernelFeatures features_;
    asio::io_context io_;
    Counters counters_;
    ClockOffset clock_;
    exporter::FanoutEmitter fanout_;
    sample::KernelRules kernel_rules_;
    std::unique_ptr<pipeline::Pipeline> pipeline_;
    std::unique_ptr<BpfProbes> probes_;
    std::unique_ptr<Injection> injection_;
    std::unique_ptr<ProcessSelector> selector_;
    size_t selected_ = 0;  // processes selected at start
    std::unique_ptr<TlsTracer> tls_;
    std::chrono::steady_clock::time_point tls_started_;
    Recorder record_;
    RingContext ring_context_{};
    std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> ring_{nullptr, ring_buffer__free};
    std::optional<asio::posix::stream_descriptor> ring_fd_;
    std::vector<std::shared_ptr<asio::steady_timer>> timers_;
    asio::signal_set signals_{io_, SIGINT, SIGTERM};
    asio::steady_timer duration_timer_{io_};
};

}  // namespace

int run_agent(const Config& cfg, exporter::Emitter* extra_emitter,
              const std::function<void()>& on_ready) {
    return Agent(cfg, extra_emitter).run(on_ready);
}

}  // namespace passport::agent
