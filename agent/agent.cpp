#include "agent/agent.hpp"

#include <bpf/libbpf.h>
#include <malloc.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/bpf_loader.hpp"
#include "agent/go_tracer.hpp"
#include "agent/identity/resolver.hpp"
#include "agent/injection.hpp"
#include "agent/k8s_api.hpp"
#include "agent/kernel_features.hpp"
#include "agent/metrics/metrics_publisher.hpp"
#include "agent/metrics/rule_stats.hpp"
#include "agent/process_selector.hpp"
#include "agent/sampling_source.hpp"
#include "agent/summary.hpp"
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

// How long TLS attaching may delay `ready`: enough for a few binaries, bounded for a node with
// a thousand selected processes (docs/tls.md).
constexpr auto kTlsBeforeReady = 200ms;

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
    GoTracer* go = nullptr;  // nullptr when Go programs are not probed
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
    if (rc->go) {
        if (const auto* exec = std::get_if<events::ProcExec>(&ev)) rc->go->on_exec(exec->tgid);
        if (const auto* exit = std::get_if<events::ProcExit>(&ev)) rc->go->on_exit(exit->tgid);
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

// The kernel features as /metrics names them (passport_kernel_feature{feature=...}).
std::vector<metrics::Feature> metric_features(const KernelFeatures& f) {
    return {{"btf", f.btf},
            {"tracefs", f.tracefs},
            {"syscall_tracepoints", f.syscall_tracepoints},
            {"tp_btf", f.tp_btf},
            {"ringbuf", f.ringbuf},
            {"uprobes", f.uprobes},
            {"kprobes", f.kprobes},
            {"sk_msg", f.sk_msg},
            {"sock_ops", f.sock_ops},
            {"probe_write_user", f.probe_write_user}};
}

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
    Agent(Config cfg, exporter::Emitter* extra_emitter, ReloadSource reload)
        : cfg_(std::move(cfg)), extra_emitter_(extra_emitter), reload_(std::move(reload)) {}

    int run(const std::function<void()>& on_ready) {
        if (int rc = check_kernel(); rc != 0) return rc;
        if (int rc = start_metrics(); rc != 0) return rc;
        enable_aws_calls();
        if (int rc = open_outputs(); rc != 0) return rc;
        if (int rc = build_pipeline(); rc != 0) return rc;
        if (int rc = load_probes(); rc != 0) return rc;
        start_injection();
        start_kubernetes();
        if (int rc = select_processes(); rc != 0) return rc;
        adopt_connections();
        start_tls();
        start_go();
        report_identity();
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

    // The health and metrics endpoint (docs/deploy.md, "Health and metrics"). A bind failure
    // stops the agent when --metrics-address was given; on the default address it only warns.
    int start_metrics() {
        if (cfg_.metrics_address.empty()) {
            report().info("  [no]  metrics - off (--metrics-address off)");
            return 0;
        }
        metrics::PublisherConfig mc;
        mc.address = cfg_.metrics_address;
        mc.destination = cfg_.daemon_address.empty() ? cfg_.output : "udp " + cfg_.daemon_address;
        for (int r = 0; r < PP_DROP_REASON_COUNT; r++)
            mc.kernel_drop_reasons.emplace_back(drop_reason_name(r));
        mc.features = metric_features(features_);
        auto started = metrics::MetricsPublisher::start(std::move(mc));
        if (!started) {
            if (cfg_.metrics_address_explicit) {
                spdlog::error("--metrics-address {}", started.error());
                return 2;
            }
            report().info("  [no]  metrics - {}", started.error());
            return 0;
        }
        metrics_ = std::move(*started);
        report().info("  [yes] metrics - {} (and /healthz, /readyz)", metrics_->metrics_url());
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
    static Result<sample::LocalRules> read_rules(const Config& cfg) {
        if (cfg.sampling_rules.empty()) return sample::default_local_rules();
        auto r = sample::load_local_rules(cfg.sampling_rules);
        if (!r) return make_error("--sampling-rules " + cfg.sampling_rules + ": " + r.error());
        return r;
    }

    int build_pipeline() {
        auto read = read_rules(cfg_);
        if (!read) {
            spdlog::error("{}", read.error());
            return 2;
        }
        sample::LocalRules rules = std::move(*read);
        // The kernel decides sampling for the traces it mints (the decision travels downstream
        // in injected headers before userspace sees the request); rules it cannot hold stay here.
        kernel_rules_ = sample::compile_kernel_rules(rules);
        if (kernel_rules_.deferred > 0)
            spdlog::warn(
                "{} sampling rule(s) too long or beyond the first {}: requests reaching them are "
                "sampled in userspace, not in the kernel",
                kernel_rules_.deferred, PP_MAX_SAMPLE_RULES);
        counters_.set("kernel.sampling_rules_deferred", kernel_rules_.deferred);

        start_identity();
        pipeline::PipelineConfig pcfg;
        pcfg.correlator.identity = identity_.get();
        pcfg.correlator.kernel_rule_names = kernel_rules_.names;
        pcfg.correlator.configured_service_name = cfg_.service_name;
        pcfg.correlator.hostname = hostname();
        pcfg.correlator.redaction = {cfg_.redact, cfg_.redact_names};
        pcfg.correlator.export_process_args = cfg_.export_process_args;
        pcfg.tracker.memory_budget_bytes = size_t{cfg_.memory_budget_mb} * 1024 * 1024;
        pcfg.keep_sdk_segments = cfg_.keep_sdk_segments;
        report_sdk_segments();
        pipeline_ = std::make_unique<pipeline::Pipeline>(pcfg, make_sampler(std::move(rules)),
                                                         fanout_, counters_, clock_);
        if (metrics_)
            pipeline_->set_segment_observer(
                [this](const xray::Segment& s) { metrics_->on_segment(s); });
        return 0;
    }

    // --sampling: X-Ray's rules (agent/sampling_source.hpp) or the local ones alone.
    std::unique_ptr<sample::Sampler> make_sampler(sample::LocalRules rules) {
        const auto addr = exporter::parse_daemon_address(cfg_.daemon_address);
        if (cfg_.sampling != "centralized" || !addr) {
            report().info("  [yes] sampling - local rules ({})",
                          cfg_.sampling_rules.empty() ? "the default rule" : cfg_.sampling_rules);
            return std::make_unique<sample::LocalSampler>(std::move(rules));
        }
        sampling_ = std::make_unique<CentralizedSampling>(
            CentralizedSamplingOptions{.tcp = addr->tcp, .local = rules});
        report_sampling();
        return sampling_->pipeline_sampler();
    }

    void report_sampling() {
        report().info("  [yes] sampling - {}", sampling_->report_line());
        if (sampling_->kernel_decides())
            report().info(
                "  [yes] kernel sampling under X-Ray rules - decided at each request's first read "
                "(per-process rule masks, quotas, borrowing, per-rule statistics)");
        else
            report().info(
                "  [no]  kernel sampling under X-Ray rules - userspace decides while X-Ray's "
                "rules are in force (the kernel decides under the local rules)");
        report().info(
            "  [no]  X-Ray API access - sampling rules come only through the daemon's proxy "
            "(no direct SigV4 calls)");
    }

    // Processes with their own X-Ray SDK (docs/sdk.md).
    void report_sdk_segments() {
        if (cfg_.keep_sdk_segments) {
            report().info(
                "  [no]  SDK dedupe - off (--sdk-segments keep): a process with its own X-Ray "
                "SDK gets Passport's server segments next to the SDK's");
            return;
        }
        report().info(
            "  [yes] SDK dedupe - a process that sends X-Ray daemon datagrams or its own "
            "X-Amzn-Trace-Id gets no server segment from Passport (the SDK's stays); "
            "correlate.sdk_* counts them");
    }

    int load_probes() {
        ProbeConfig pc;
        pc.trace_all = cfg_.trace_all();
        pc.server_ports = cfg_.ports;
        pc.ringbuf_bytes = cfg_.ringbuf_mb * 1024u * 1024u;
        pc.max_connections = cfg_.max_connections;
        pc.request_text = sampling_ != nullptr && sampling_->kernel_decides();
        pc.sample_rules = kernel_rules_.rules;
        pc.sample_default = kernel_rules_.default_rule;
        pc.sample_cfg = kernel_rules_.cfg;
        pc.inject = cfg_.inject && features_.sk_msg && features_.sock_ops;
        pc.sample_gate = cfg_.sample_gate;
        auto loaded = BpfProbes::load(pc);
        if (!loaded) {
            spdlog::error("{}", loaded.error());
            return 1;
        }
        probes_ = std::move(*loaded);
        if (metrics_) metrics_->set_attached();
        if (sampling_) start_sampling();
        // Loading parses the kernel's BTF (tens of MB, freed once CO-RE relocation is done); give
        // those pages back instead of keeping them as idle heap for the agent's whole life.
        ::malloc_trim(0);
        report().info("  {} tp_btf - {}", probes_->fork_inheritance() ? "[yes]" : "[no] ",
                      probes_->fork_inheritance()
                          ? "children forked by selected processes are selected in the kernel"
                          : "refused by this kernel: children forked by selected processes after "
                            "start are not traced");
        report().info("  {} unsampled gate - {}", cfg_.sample_gate ? "[yes]" : "[no] ",
                      cfg_.sample_gate
                          ? "the bytes of unsampled plaintext requests and their responses stay "
                            "in the kernel"
                          : "off (--no-sample-gate): unsampled requests are shipped and dropped "
                            "in userspace");
        return 0;
    }

    // The kernel's rule names follow what the sampling thread writes, on this thread.
    void start_sampling() {
        sampling_->start(*probes_, identity_.get(), [this](std::vector<std::string> names) {
            asio::post(io_, [this, n = std::move(names)]() mutable {
                collect_rule_stats();  // what the kernel counted under the previous names
                kernel_rules_.names = n;
                pipeline_->set_sampling(sampling_->pipeline_sampler(), std::move(n));
            });
        });
    }

    // Header injection: optional; everything else works without it.
    void start_injection() {
        std::string why;
        if (!cfg_.inject) {
            why = "off (--no-inject)";
        } else if (!features_.sk_msg || !features_.sock_ops) {
            why =
                "off: sock_ops/sk_msg programs cannot be loaded (a kernel without them, or "
                "no CAP_NET_ADMIN)";
        } else {
            std::vector<DenyEntry> deny;
            for (uint16_t port : kDefaultInjectDenyPorts)
                deny.push_back(DenyEntry{.is_port = true, .port = port});
            for (const auto& d : cfg_.inject_deny) deny.push_back(*parse_deny(d));
            why = attach_injection(deny);
        }
        if (!injection_) {
            report().info("  [no]  injection - {}", why);
            return;
        }
        report().info(
            "  [yes] injection - X-Amzn-Trace-Id added to plaintext HTTP/1.x requests of traced "
            "processes on connections opened from now on, and on those they opened earlier "
            "(adopted) (sock_ops on {} (host cgroup root)); never to {} well-known non-HTTP "
            "ports{}; a header a proxy forwards gets its Parent rewritten in place to the "
            "proxy's call",
            injection_->cgroup_path(), std::size(kDefaultInjectDenyPorts),
            cfg_.inject_deny.empty() ? "" : " nor to --inject-deny");
    }

    // sock_ops on the host's cgroup v2 root, never on a cgroup namespace's own root (it would
    // reach only the agent's container). Returns why injection is off, empty when attached.
    std::string attach_injection(const std::vector<DenyEntry>& deny) {
        CgroupRoot root = find_cgroup_root(cfg_.cgroup_root);
        if (!root.host_root) return root.why_not;
        auto inj = Injection::attach(*probes_, deny, std::move(root), cfg_.trace_all());
        if (!inj) return "off: " + inj.error();
        injection_ = std::move(*inj);
        return {};
    }

    std::string node_name() const {
        if (!cfg_.node_name.empty()) return cfg_.node_name;
        const char* env = std::getenv("NODE_NAME");
        return env != nullptr ? env : "";
    }

    // Names and identity blocks for every segment (docs/identity.md); lookups on their own
    // thread, the EC2 one at once.
    void start_identity() {
        identity::ResolverConfig rc;
        rc.configured_service_name = cfg_.service_name;
        rc.overrides = identity::ServiceNameOverrides::parse(cfg_.service_name_overrides).value();
        rc.cluster_name = cfg_.cluster_name;
        rc.node_name = node_name();
        identity::ImdsOptions imds;
        imds.allow_v1 = cfg_.imds == "v2-then-v1";
        rc.imds_options = identity::imds_options_from_env(
            imds, [](const char* name) { return std::getenv(name); });
        rc.imds = cfg_.imds != "off" && !rc.imds_options.disabled;
        rc.runtime_sockets = identity::runtime_sockets_from(cfg_.runtime_sockets);
        rc.ecs_metadata_host = cfg_.ecs_metadata_host;
        identity_ = std::make_unique<identity::IdentityResolver>(std::move(rc), &pods_);
        identity_->start();
    }

    void report_identity() {
        const auto st = identity_->status();
        if (!st.ec2_done)
            report().info("  [..]  EC2 identity - IMDS lookup still running (at most 2 s)");
        else if (st.ec2)
            report().info("  [yes] EC2 identity - {} in {}", st.ec2->instance_id,
                          st.ec2->availability_zone);
        else
            report().info("  [no]  EC2 identity - {}", st.ec2_why_not);
        report().info(
            "  [yes] identity - ECS from each process's task metadata endpoint; pods from {}the "
            "node (cgroup path, hostname, service-account file, runtime sockets: {})",
            pod_watcher_ ? "the API server, then " : "", runtime_socket_list());
    }

    // The runtime sockets present now (the resolver asks those it finds, per container).
    std::string runtime_socket_list() const {
        std::string out;
        for (const auto& p : identity::runtime_sockets_from(cfg_.runtime_sockets).paths) {
            std::error_code ec;
            if (!std::filesystem::exists(p, ec)) continue;
            out += (out.empty() ? "" : ", ") + p;
        }
        return out.empty() ? "none found" : out;
    }

    // Pod metadata for the --k8s-* rules and for identity: the API server's pods of this node,
    // when reachable.
    void start_kubernetes() {
        const bool in_cluster = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr ||
                                cfg_.k8s_api.rfind("https://", 0) == 0;
        if (!cfg_.k8s.any() && !in_cluster) return;
        const std::string node = node_name();
        auto ep = resolve_api_endpoint(cfg_.k8s_api, std::getenv("KUBERNETES_SERVICE_HOST"),
                                       std::getenv("KUBERNETES_SERVICE_PORT"),
                                       cfg_.k8s_service_account_dir, node);
        if (!ep) {
            report().info(
                "  [no]  kubernetes - {}: namespace from each pod's service-account files only; "
                "label and workload rules cannot match",
                ep.error());
            if (cfg_.k8s.needs_api())
                spdlog::warn(
                    "--k8s-label/--k8s-exclude-label/--k8s-workload need the API server: "
                    "pods they name are not traced");
            return;
        }
        pod_watcher_ = std::make_unique<PodWatcher>(std::move(*ep), pods_);
        pod_watcher_->start();
        pod_watcher_->wait_first_attempt(std::chrono::seconds(2));
        report_kubernetes();
    }

    void report_kubernetes() {
        const auto st = pods_.status();
        const auto& ep = pod_watcher_->endpoint();
        if (st.synced) {
            report().info("  [yes] kubernetes - API server at {}, {} pods on node {}", ep.base_url,
                          pods_.snapshot()->size(), ep.node_name);
            return;
        }
        report().info(
            "  [no]  kubernetes - API server at {}: {}; retrying in the background, processes in "
            "pods stay unselected until their pod is known",
            ep.base_url, st.last_error.empty() ? "no answer yet" : st.last_error);
    }

    int select_processes() {
        selector_ = std::make_unique<ProcessSelector>(cfg_, *probes_, counters_,
                                                      pod_watcher_ ? &pods_ : nullptr);
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

    // Go net/http: the client handoff uprobes for the selected Go programs (docs/context-flow.md).
    void start_go() {
        const char* what = "Go net/http client handoff";
        if (!features_.uprobes) {
            report().info(
                "  [no]  {} - this kernel refuses uprobes: a Go service's calls are "
                "placed by the thread rules",
                what);
            return;
        }
        go_ = std::make_unique<GoTracer>(*probes_, counters_, cfg_.trace_all());
        const size_t n = go_->scan_selected();
        report().info(
            "  [yes] {} - uprobes on net/http of Go >= 1.17 programs with a symbol table "
            "({} probed now)",
            what, n);
    }

    // TLS: OpenSSL uprobes for the selected processes (docs/tls.md). The maps are read now; the
    // uprobes are attached for up to kTlsBeforeReady before `ready`, the rest after it in slices
    // between ring reads (attach_tls_slice).
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
        if (const std::string why = tls_->can_attach(); !why.empty()) {
            report().info(
                "  [no]  TLS - the kernel refuses this agent a uprobe ({}; CAP_SYS_ADMIN is needed "
                "for uprobes on some kernels, docs/deploy.md): HTTPS traffic is not traced",
                why);
            tls_.reset();
            return;
        }
        const size_t binaries = tls_->begin_scan();
        if (binaries == 0) {
            report().info(
                "  [yes] TLS - OpenSSL uprobes ready, nothing attached yet: no selected process "
                "maps libssl.so.* or exports SSL_write; processes that load it later are attached "
                "then");
            return;
        }
        // A small selection is attached before `ready`, so its first HTTPS request is traced;
        // what the budget leaves is attached after `ready`, between ring reads.
        tls_pending_ = !tls_->attach_step(kTlsBeforeReady);
        if (tls_pending_) {
            report().info(
                "  [yes] TLS - {} binaries found; {} attached before ready, the rest in the "
                "background",
                binaries, tls_->attached_binaries());
        } else {
            report().info("  [yes] TLS - OpenSSL uprobes on {} binaries in {} processes",
                          tls_->attached_binaries(), tls_->attached_processes());
            log_tls_attached();
        }
    }

    void log_tls_attached() {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - tls_started_)
                            .count();
        spdlog::info("tls: attached to {} binaries covering {} processes in {} ms",
                     tls_->attached_binaries(), tls_->attached_processes(), ms);
        if (cfg_.verbose) {
            for (const auto& line : tls_->describe()) report().info("        tls {}", line);
        }
    }

    // One slice of the start's TLS attaching, then the ring and timers get their turn.
    void attach_tls_slice() {
        if (!tls_->attach_step(20ms)) {
            asio::post(io_, [this]() { attach_tls_slice(); });
            return;
        }
        tls_pending_ = false;
        log_tls_attached();
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
        ring_context_.go = go_.get();
        ring_.reset(ring_buffer__new(probes_->events_map_fd(), on_record, &ring_context_, nullptr));
        if (!ring_) {
            spdlog::error("ring buffer setup failed");
            return 1;
        }
        if (metrics_) metrics_->watch_ring(probes_->events_map_fd());
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
        timers_.push_back(every(io_, 200ms, [this]() { refresh_selection(); }));
        timers_.push_back(every(io_, 100ms, [this]() {
            if (tls_) tls_->tick();
            if (go_) go_->tick();
        }));
        if (tls_pending_) asio::post(io_, [this]() { attach_tls_slice(); });
        timers_.push_back(every(io_, 10s, [this]() { clock_.refresh(); }));
        // The kernel's epoch offset (minted trace ids) follows wall-clock steps within a second.
        timers_.push_back(every(io_, 1s, [this]() { probes_->refresh_clock(); }));
        timers_.push_back(every(io_, 1s, [this]() { collect_identity_counters(); }));
        if (sampling_) {
            timers_.push_back(every(io_, 1s, [this]() {
                sampling_->collect(counters_);
                if (metrics_) metrics_->set_note(sampling_->health_note());
            }));
        }
        if (metrics_) {
            // The LRU eviction estimate walks the kernel's tables: every 10 s, not every second.
            timers_.push_back(every(io_, 10s, [this]() { collect_lru_evictions(); }));
            timers_.push_back(every(io_, 1s, [this]() {
                collect_kernel_counters();
                metrics_->publish(counters_);
            }));
        }

        signals_.async_wait([this](boost::system::error_code ec, int) {
            if (!ec) io_.stop();
        });
        wait_hangup();
        if (cfg_.summary_interval_s > 0) {
            summary_base_ = counter_snapshot();
            timers_.push_back(every(
                io_,
                std::chrono::milliseconds(static_cast<int64_t>(cfg_.summary_interval_s * 1000)),
                [this]() { print_summary(); }));
        }
        if (cfg_.duration_s > 0) {
            duration_timer_.expires_after(
                std::chrono::milliseconds(static_cast<int64_t>(cfg_.duration_s * 1000)));
            duration_timer_.async_wait([this](boost::system::error_code ec) {
                if (!ec) io_.stop();
            });
        }
    }

    // What the identity lookups found (levels, for /metrics and the exit counters).
    void collect_identity_counters() {
        const auto st = identity_->status();
        counters_.set("identity.ec2", st.ec2 ? 1 : 0);
        counters_.set("identity.ecs_endpoints", st.ecs_endpoints);
        counters_.set("identity.ecs_failed", st.ecs_failed);
        counters_.set("identity.containers", st.containers);
        counters_.set("identity.lookups_not_queued", st.jobs_dropped);
    }

    // Processes whose pod became known: selected now, then their connections and TLS libraries.
    void refresh_selection() {
        for (uint32_t pid : selector_->refresh()) {
            if (injection_) injection_->adopt_process(pid);
            if (tls_) tls_->on_exec(pid);
            if (go_) go_->on_exec(pid);
        }
        counters_.set("select.k8s_waiting", selector_->waiting());
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
        if (selector_->waiting() > 0)
            spdlog::info("{} process(es) in pods wait for their pod's metadata (not traced yet)",
                         selector_->waiting());
        spdlog::info("ready");
        ::sd_notify(0, "READY=1");  // systemd Type=notify; nothing without NOTIFY_SOCKET
        if (metrics_) {
            collect_lru_evictions();
            collect_kernel_counters();
            metrics_->publish(counters_);  // /metrics has a full page from the first scrape
            metrics_->set_ready();
        }
    }

    // The counters now, the kernel's drop reasons included (for the summary line).
    CounterSnapshot counter_snapshot() const {
        CounterSnapshot now(counters_.all().begin(), counters_.all().end());
        auto drops = probes_->drop_counts();
        for (int r = 0; r < PP_DROP_REASON_COUNT; r++)
            now[std::string("kernel.") + drop_reason_name(r)] = drops[static_cast<size_t>(r)];
        return now;
    }

    void print_summary() {
        CounterSnapshot now = counter_snapshot();
        spdlog::info("{}", summary_line(summary_base_, now, cfg_.summary_interval_s));
        summary_base_ = std::move(now);
    }

    // SIGHUP: read the configuration again and apply what can change while running.
    void wait_hangup() {
        hangup_.async_wait([this](boost::system::error_code ec, int) {
            if (ec) return;
            ::sd_notify(0, "RELOADING=1");
            if (auto done = reload(); !done)
                spdlog::warn("reload: {}; the configuration in use is kept", done.error());
            ::sd_notify(0, "READY=1");
            wait_hangup();
        });
    }

    // Everything is checked before anything changes: a bad file changes nothing.
    Result<bool> reload() {
        spdlog::info("reload: reading the configuration again (SIGHUP)");
        Config next = cfg_;
        Settings settings = reload_.settings;
        if (reload_.read) {
            auto read = reload_.read(settings);
            if (!read) return make_error(read.error());
            next = std::move(*read);
        }
        auto rules = read_rules(next);
        if (!rules) return make_error(rules.error());
        if (auto selected = reload_selection(next); !selected) return selected;
        // A selection left as it was (it needs a restart) keeps its old settings, so that the
        // next reload compares with what is in force.
        if (next.trace_all() != cfg_.trace_all()) keep_settings(settings, {"pid", "exe"});
        if (next.ports.empty() != cfg_.ports.empty()) keep_settings(settings, {"port"});
        reload_sampling(*rules, next.sampling_rules);
        reload_naming(next);
        if (next.verbose != cfg_.verbose) {
            cfg_.verbose = next.verbose;
            spdlog::set_level(cfg_.verbose ? spdlog::level::debug : spdlog::level::info);
        }
        reload_.settings = keep_restart_keys(settings);
        spdlog::info("reload: done");
        return true;
    }

    void keep_settings(Settings& next, std::initializer_list<const char*> keys) const {
        for (const char* key : keys) {
            next.erase(key);
            if (auto old = reload_.settings.find(key); old != reload_.settings.end())
                next[key] = old->second;
        }
    }

    // The new settings for the keys a reload applies, the old ones for the others (reported).
    Settings keep_restart_keys(const Settings& next) const {
        const auto reloadable = [](const std::string& key) {
            return std::find(kReloadableKeys.begin(), kReloadableKeys.end(), key) !=
                   kReloadableKeys.end();
        };
        Settings kept = reload_.settings;
        std::vector<std::string> restart;
        std::set<std::string> keys;
        for (const auto& entry : kept) keys.insert(entry.first);
        for (const auto& entry : next) keys.insert(entry.first);
        for (const auto& key : keys) {
            auto a = kept.find(key);
            auto b = next.find(key);
            const bool same = (a == kept.end()) == (b == next.end()) &&
                              (a == kept.end() || a->second == b->second);
            if (same) continue;
            if (!reloadable(key)) {
                restart.push_back(key);
            } else if (b == next.end()) {
                kept.erase(key);
            } else {
                kept[key] = b->second;
            }
        }
        for (const auto& key : restart)
            spdlog::warn("reload: '{}' changed: it needs a restart; left as it was", key);
        return kept;
    }

    // --pid/--exe and --port in place. Switching between tracing every process and a
    // selection, or between all ports and some, changes what the loaded programs were built for
    // (fixed at load): those need a restart.
    Result<bool> reload_selection(const Config& next) {
        if (next.trace_all() != cfg_.trace_all()) {
            spdlog::warn(
                "reload: switching between tracing every process and a --pid/--exe selection "
                "needs a restart; the selection is left as it was");
        } else if (!next.trace_all() &&
                   (next.pids != cfg_.pids || next.exe_globs != cfg_.exe_globs ||
                    !(next.k8s == cfg_.k8s))) {
            const Config before = cfg_;
            cfg_.pids = next.pids;
            cfg_.exe_globs = next.exe_globs;
            cfg_.k8s = next.k8s;
            auto change = selector_->rescan();
            if (!change) {
                cfg_.pids = before.pids;
                cfg_.exe_globs = before.exe_globs;
                cfg_.k8s = before.k8s;
                return make_error(change.error());
            }
            for (uint32_t pid : change->added) {
                if (injection_) injection_->adopt_process(pid);
                if (tls_) tls_->on_exec(pid);
                if (go_) go_->on_exec(pid);
            }
            spdlog::info("reload: selection: {} process(es) added, {} no longer traced",
                         change->added.size(), change->removed.size());
        }
        if (next.ports.empty() != cfg_.ports.empty()) {
            spdlog::warn(
                "reload: switching between all ports and --port needs a restart; the ports are "
                "left as they were");
        } else if (next.ports != cfg_.ports) {
            if (auto set = probes_->set_server_ports(cfg_.ports, next.ports); !set)
                return make_error(set.error());
            cfg_.ports = next.ports;
            spdlog::info("reload: server ports changed");
        }
        return true;
    }

    // Segment names and the cluster name: every process's identity is composed again.
    void reload_naming(const Config& next) {
        if (next.service_name_overrides == cfg_.service_name_overrides &&
            next.service_name == cfg_.service_name && next.cluster_name == cfg_.cluster_name)
            return;
        cfg_.service_name_overrides = next.service_name_overrides;
        cfg_.service_name = next.service_name;
        cfg_.cluster_name = next.cluster_name;
        identity_->set_naming(
            identity::ServiceNameOverrides::parse(cfg_.service_name_overrides).value(),
            cfg_.service_name, cfg_.cluster_name);
        spdlog::info("reload: service names and cluster name");
    }

    // New rules in the kernel and in userspace. A request reads them at its first read, so a
    // request in flight keeps the decision it got.
    void reload_sampling(const sample::LocalRules& rules, const std::string& path) {
        if (sampling_) {  // the fallback rules: in the kernel when they are in force
            if (sampling_->set_local_rules(rules) && !sampling_->centralized())
                pipeline_->set_sampling(sampling_->pipeline_sampler(),
                                        sample::compile_kernel_rules(rules).names);
            cfg_.sampling_rules = path;
            spdlog::info("reload: local sampling rules applied ({})",
                         path.empty() ? "the default rule" : path);
            return;
        }
        sample::KernelRules kernel = sample::compile_kernel_rules(rules);
        if (!probes_->can_decide(kernel.rules, kernel.cfg)) {
            // The loaded programs skip the method, path and Host: let userspace decide.
            kernel.cfg.enabled = 0;
            spdlog::warn(
                "reload: the new sampling rules match on method, path or Host, which the kernel "
                "programs loaded at start do not read: userspace decides sampling until a restart");
        }
        collect_rule_stats();
        if (auto set = probes_->set_sampling(kernel.rules, kernel.default_rule, kernel.cfg); !set)
            spdlog::warn("reload: kernel sampling rules: {}", set.error());
        pipeline_->set_sampling(std::make_unique<sample::LocalSampler>(rules), kernel.names);
        counters_.set("kernel.sampling_rules_deferred", kernel.deferred);
        kernel_rules_ = std::move(kernel);
        cfg_.sampling_rules = path;
        spdlog::info("reload: sampling rules applied ({})",
                     path.empty() ? "the default rule" : path);
    }

    // Drain what the kernel already wrote, end open exchanges, detach, then print the counters.
    void shutdown() {
        ::sd_notify(0, "STOPPING=1");
        if (metrics_) metrics_->set_stopping();
        if (sampling_) sampling_->stop();  // its thread writes into the probes' maps
        ring_buffer__consume(ring_.get());
        pipeline_->shutdown();
        collect_lru_evictions();
        collect_kernel_counters();
        injection_.reset();  // detach before the programs and maps go
        ring_.reset();
        go_.reset();  // uprobe links before the programs they use
        tls_.reset();
        probes_.reset();
        if (record_.file) std::fflush(record_.file.get());
        for (const auto& [name, value] : counters_.all())
            report().info("counter {} {}", name, value);
    }

    // The kernel's per-rule sampling statistics under the names of the rules now in the kernel
    // (before the rules change: the counts at an index belong to the rule that was there).
    void collect_rule_stats() {
        rule_stats_.collect(probes_->read_sampling_stats(), kernel_rules_.names, counters_);
    }

    // Counts the entries of the kernel's LRU tables: one syscall per entry.
    void collect_lru_evictions() {
        const auto lru = probes_->lru_evictions();
        counters_.set("kernel.conns_evicted", lru.conns);
        counters_.set("kernel.thread_ctx_evicted", lru.thread_ctx);
    }

    void collect_kernel_counters() {
        auto drops = probes_->drop_counts();
        for (int r = 0; r < PP_DROP_REASON_COUNT; r++)
            counters_.set(std::string("kernel.") + drop_reason_name(r),
                          drops[static_cast<size_t>(r)]);
        auto ctxc = probes_->ctx_counts();
        for (int r = 0; r < PP_CTXC_COUNT; r++)
            counters_.set(std::string("kernel.") + ctx_counter_name(r),
                          ctxc[static_cast<size_t>(r)]);
        collect_rule_stats();
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

    Config cfg_;  // reload changes the keys it applies in place (ProcessSelector reads them)
    exporter::Emitter* extra_emitter_;
    ReloadSource reload_;
    KernelFeatures features_;
    std::unique_ptr<metrics::MetricsPublisher> metrics_;  // nullptr with --metrics-address off
    asio::io_context io_;
    Counters counters_;
    ClockOffset clock_;
    exporter::FanoutEmitter fanout_;
    sample::KernelRules kernel_rules_;
    metrics::RuleStatsCollector rule_stats_;
    std::unique_ptr<pipeline::Pipeline> pipeline_;
    std::unique_ptr<BpfProbes> probes_;
    std::unique_ptr<Injection> injection_;
    k8s::PodCache pods_;
    std::unique_ptr<PodWatcher> pod_watcher_;  // stopped (joined) before the cache goes
    std::unique_ptr<identity::IdentityResolver> identity_;  // joined before pods_ goes
    // Its thread uses the probes and the identities: stopped (destroyed) before either goes.
    std::unique_ptr<CentralizedSampling> sampling_;
    std::unique_ptr<ProcessSelector> selector_;
    size_t selected_ = 0;  // processes selected at start
    std::unique_ptr<TlsTracer> tls_;
    std::unique_ptr<GoTracer> go_;
    std::chrono::steady_clock::time_point tls_started_;
    bool tls_pending_ = false;  // TLS attaching left for after `ready`
    Recorder record_;
    RingContext ring_context_{};
    std::unique_ptr<ring_buffer, void (*)(ring_buffer*)> ring_{nullptr, ring_buffer__free};
    std::optional<asio::posix::stream_descriptor> ring_fd_;
    std::vector<std::shared_ptr<asio::steady_timer>> timers_;
    asio::signal_set signals_{io_, SIGINT, SIGTERM};
    asio::signal_set hangup_{io_, SIGHUP};
    CounterSnapshot summary_base_;
    asio::steady_timer duration_timer_{io_};
};

}  // namespace

int run_agent(const Config& cfg, exporter::Emitter* extra_emitter,
              const std::function<void()>& on_ready, ReloadSource reload) {
    return Agent(cfg, extra_emitter, std::move(reload)).run(on_ready);
}

}  // namespace passport::agent
