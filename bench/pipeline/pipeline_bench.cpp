// passport_pipeline_bench: the userspace pipeline alone, fed from a recorded event stream.
//
// The capture (tests/replay/data/*.events.jsonl, recorded by `passport --record` on a real kernel)
// is encoded back into the kernel's ring-buffer record format (bpf/include/passport/abi.h), then
// replayed many times through what the agent runs per record:
//   decode -> connection tracking + reassembly -> HTTP/1 parse -> pairing -> correlate/sample
//   -> X-Ray document (JSON) -> emitter
// Each iteration moves the records' timestamps and connection generations forward, so every
// iteration's connections are new ones of the same long-running processes. Process exec/exit
// records are replayed once (a process starts once; its /proc identity is then cached), so an
// iteration is the connection, data and close records: the steady state of a traced server.
// /proc is a fake tree written to a temp directory for the capture's processes.
//
// Documents go to a discarding emitter by default (pipeline cost only), or with --udp HOST:PORT
// through the agent's real UdpEmitter, batched like the agent does (adds the export syscalls).
//
// Output: one JSON object on stdout. Under `valgrind --tool=callgrind --instr-atstart=no` only
// the replayed iterations are instrumented, so the callgrind total / "events" is instructions per
// event. Not a test: never registered with ctest.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#include <nlohmann/json.hpp>

#include "passport/abi.h"
#include "userspace/common/clock.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/events/decoder.hpp"
#include "userspace/events/recording.hpp"
#include "userspace/export/daemon_address.hpp"
#include "userspace/export/udp_emitter.hpp"
#include "userspace/pipeline/pipeline.hpp"
#include "userspace/sample/rules.hpp"
#include "userspace/sample/sampler.hpp"

namespace {

using namespace passport;
namespace fs = std::filesystem;

// Counts and discards: the pipeline's cost without any export syscall.
class DiscardEmitter : public exporter::Emitter {
  public:
    void emit(std::string datagram) override {
        datagrams_++;
        bytes_ += datagram.size();
        // Hands the buffer back through spare(), as the agent's UdpEmitter does once it is sent.
        datagram.clear();
        spare_ = std::move(datagram);
    }
    std::string spare() override { return std::move(spare_); }
    std::string spare_;
    uint64_t datagrams_ = 0;
    uint64_t bytes_ = 0;
};

// One encoded ring-buffer record, and where its time/generation fields sit so an iteration can
// move them forward in place.
struct Record {
    std::vector<uint8_t> bytes;
    bool per_iteration = true;  // false: exec/exit, replayed in the first iteration only
};

template <typename T>
std::vector<uint8_t> as_bytes(const T& s, size_t size = sizeof(T)) {
    std::vector<uint8_t> out(size);
    std::memcpy(out.data(), &s, size);
    return out;
}

void fill_header(pp_event_header& h, uint8_t kind, uint32_t tgid, uint32_t tid, uint64_t ts) {
    std::memset(&h, 0, sizeof(h));
    h.kind = kind;
    h.tgid = tgid;
    h.tid = tid;
    h.ts_ns = ts;
}

pp_conn_id conn_id(const events::ConnKey& k) {
    pp_conn_id c{};
    c.tgid = k.tgid;
    c.fd = k.fd;
    c.gen = k.gen;
    return c;
}

pp_endpoint endpoint(const events::Endpoint& e) {
    pp_endpoint p{};
    p.family = e.family;
    p.port = e.port;
    std::memcpy(p.addr, e.addr.data(), sizeof(p.addr));
    return p;
}

void copy_str(char* dst, size_t cap, const std::string& s) {
    std::memset(dst, 0, cap);
    s.copy(dst, std::min(cap - 1, s.size()));  // the memset left the NUL after it
}

// The inverse of events::decode: what the BPF side would have written for this event.
Record encode(const events::Event& e) {
    Record r;
    if (const auto* o = std::get_if<events::ConnOpen>(&e)) {
        pp_conn_open_event ev{};
        fill_header(ev.hdr, PP_EV_CONN_OPEN, o->conn.tgid, o->tid, o->ts_ns);
        ev.conn = conn_id(o->conn);
        ev.local = endpoint(o->local);
        ev.remote = endpoint(o->remote);
        ev.netns = o->netns;
        ev.role = static_cast<uint8_t>(o->role);
        r.bytes = as_bytes(ev);
    } else if (const auto* d = std::get_if<events::Data>(&e)) {
        pp_data_event ev{};
        fill_header(ev.hdr, PP_EV_DATA, d->conn.tgid, d->tid, d->enter_ns);
        ev.conn = conn_id(d->conn);
        ev.exit_ns = d->exit_ns;
        ev.pos = d->pos;
        ev.len = d->len;
        ev.captured = static_cast<uint32_t>(std::min<size_t>(d->bytes.size(), PP_MAX_CHUNK));
        ev.direction = static_cast<uint8_t>(d->direction);
        ev.syscall = d->syscall;
        ev.role = static_cast<uint8_t>(d->role);
        std::memcpy(ev.msg, d->bytes.data(), ev.captured);
        r.bytes = as_bytes(ev, offsetof(pp_data_event, msg) + ev.captured);
    } else if (const auto* c = std::get_if<events::ConnClose>(&e)) {
        pp_conn_close_event ev{};
        fill_header(ev.hdr, PP_EV_CONN_CLOSE, c->conn.tgid, c->tid, c->ts_ns);
        ev.conn = conn_id(c->conn);
        ev.rx_bytes = c->rx_bytes;
        ev.tx_bytes = c->tx_bytes;
        r.bytes = as_bytes(ev);
    } else if (const auto* x = std::get_if<events::ProcExec>(&e)) {
        pp_proc_event ev{};
        fill_header(ev.hdr, PP_EV_PROC_EXEC, x->tgid, x->tgid, x->ts_ns);
        ev.ppid = x->ppid;
        copy_str(ev.comm, sizeof(ev.comm), x->comm);
        copy_str(ev.filename, sizeof(ev.filename), x->filename);
        r.bytes = as_bytes(ev);
        r.per_iteration = false;
    } else if (const auto* q = std::get_if<events::ProcExit>(&e)) {
        pp_proc_event ev{};
        fill_header(ev.hdr, PP_EV_PROC_EXIT, q->tgid, q->tgid, q->ts_ns);
        ev.exit_code = q->exit_code;
        copy_str(ev.comm, sizeof(ev.comm), q->comm);
        r.bytes = as_bytes(ev);
        r.per_iteration = false;
    }
    return r;
}

// Moves every timestamp and connection generation of a record forward by delta.
void shift(Record& r, uint64_t delta) {
    auto* h = reinterpret_cast<pp_event_header*>(r.bytes.data());
    h->ts_ns += delta;
    switch (h->kind) {
        case PP_EV_CONN_OPEN:
            reinterpret_cast<pp_conn_open_event*>(r.bytes.data())->conn.gen += delta;
            break;
        case PP_EV_CONN_CLOSE:
            reinterpret_cast<pp_conn_close_event*>(r.bytes.data())->conn.gen += delta;
            break;
        case PP_EV_DATA: {
            auto* ev = reinterpret_cast<pp_data_event*>(r.bytes.data());
            ev->conn.gen += delta;
            ev->exit_ns += delta;
            break;
        }
        default:
            break;
    }
}

// A /proc look-alike for the capture's processes, so process identity is read (once) from files
// as the agent does, instead of failing on every lookup.
struct FakeProc {
    fs::path root;
    explicit FakeProc(const std::vector<events::Event>& evs) {
        char tmpl[] = "/tmp/passport-bench-proc.XXXXXX";
        if (!::mkdtemp(tmpl)) {
            std::perror("mkdtemp");
            std::exit(1);
        }
        root = tmpl;
        std::map<uint32_t, std::string> name;  // last exec'd file of each process
        std::set<uint32_t> tgids;
        for (const auto& e : evs) {
            if (const auto* x = std::get_if<events::ProcExec>(&e)) name[x->tgid] = x->filename;
            if (const auto* o = std::get_if<events::ConnOpen>(&e)) tgids.insert(o->conn.tgid);
        }
        for (uint32_t t : tgids) {
            fs::path dir = root / std::to_string(t);
            fs::create_directories(dir);
            std::string exe = name.count(t) ? name[t] : "/usr/bin/bench-server";
            std::string base = fs::path(exe).filename();
            fs::create_symlink(exe, dir / "exe");
            std::ofstream(dir / "comm") << base.substr(0, 15) << "\n";
            std::string argv = exe + std::string(1, '\0') + "server-" + std::to_string(t) + ".py" +
                               std::string(1, '\0');
            std::ofstream(dir / "cmdline", std::ios::binary) << argv;
            std::ofstream(dir / "environ", std::ios::binary)
                << "PATH=/usr/bin" << '\0' << "HOME=/root" << '\0';
            std::ofstream(dir / "status") << "Name:\t" << base << "\nPPid:\t1\n";
            std::ofstream(dir / "cgroup") << "0::/\n";
        }
    }
    ~FakeProc() {
        std::error_code ec;
        fs::remove_all(root, ec);
    }
};

struct Options {
    std::string capture = PASSPORT_BENCH_CAPTURE;
    double seconds = 5.0;
    long iterations = 0;  // > 0: run exactly this many instead of timing
    long warmup = 20;
    std::string udp;      // HOST:PORT: send documents with the agent's UdpEmitter
    long udp_batch = 64;  // datagrams per sendmmsg, as the agent configures it
};

[[noreturn]] void usage(int code) {
    std::fprintf(
        code ? stderr : stdout,
        "usage: passport_pipeline_bench [--capture FILE] [--seconds S | --iterations N]\n"
        "                                [--warmup N] [--udp HOST:PORT [--udp-batch N]]\n"
        "Replays a recorded event stream through decode -> reassembly -> parse -> correlate ->\n"
        "document and prints one JSON object (events/s, ns/event, documents).\n");
    std::exit(code);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(2);
            return argv[++i];
        };
        if (a == "--capture")
            o.capture = next();
        else if (a == "--seconds")
            o.seconds = std::atof(next().c_str());
        else if (a == "--iterations")
            o.iterations = std::atol(next().c_str());
        else if (a == "--warmup")
            o.warmup = std::atol(next().c_str());
        else if (a == "--udp")
            o.udp = next();
        else if (a == "--udp-batch")
            o.udp_batch = std::atol(next().c_str());
        else if (a == "-h" || a == "--help")
            usage(0);
        else
            usage(2);
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse(argc, argv);

    std::ifstream in(opt.capture);
    if (!in) {
        std::fprintf(stderr, "passport_pipeline_bench: cannot open %s\n", opt.capture.c_str());
        return 1;
    }
    auto loaded = events::read_recording(in);
    if (!loaded) {
        std::fprintf(stderr, "passport_pipeline_bench: %s: %s\n", opt.capture.c_str(),
                     loaded.error().c_str());
        return 1;
    }
    const std::vector<events::Event>& evs = *loaded;

    std::vector<Record> records;
    uint64_t t_min = UINT64_MAX, t_max = 0;
    for (const auto& e : evs) {
        records.push_back(encode(e));
        uint64_t ts = reinterpret_cast<const pp_event_header*>(records.back().bytes.data())->ts_ns;
        t_min = std::min(t_min, ts);
        t_max = std::max(t_max, ts);
    }
    // Each iteration starts one second after the previous one's last record.
    const uint64_t delta = (t_max - t_min) + 1'000'000'000ULL;
    size_t per_iter_records = 0;
    for (const auto& r : records) per_iter_records += r.per_iteration ? 1 : 0;

    FakeProc proc(evs);
    Counters counters;
    ClockOffset clock(1'795'000'000'000'000'000LL);
    auto rules = sample::parse_local_rules(
        R"({"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]})");
    if (!rules) {
        std::fprintf(stderr, "passport_pipeline_bench: rules: %s\n", rules.error().c_str());
        return 1;
    }
    DiscardEmitter discard;
    boost::asio::io_context io;
    std::unique_ptr<exporter::UdpEmitter> udp;
    exporter::Emitter* emitter = &discard;
    if (!opt.udp.empty()) {
        auto addr = exporter::parse_daemon_address(opt.udp);
        if (!addr) {
            std::fprintf(stderr, "passport_pipeline_bench: --udp: %s\n", addr.error().c_str());
            return 2;
        }
        auto u = exporter::UdpEmitter::create(io, addr->udp, counters);
        if (!u) {
            std::fprintf(stderr, "passport_pipeline_bench: --udp: %s\n", u.error().c_str());
            return 1;
        }
        udp = std::move(*u);
        udp->set_batch_size(static_cast<size_t>(std::max(1L, opt.udp_batch)));
        emitter = udp.get();
    }
    pipeline::PipelineConfig cfg;
    cfg.correlator.hostname = "bench-host";
    cfg.proc_root = proc.root.string();
    uint64_t seq = 1;
    pipeline::Pipeline pipe(cfg, std::make_unique<sample::LocalSampler>(std::move(*rules)),
                            *emitter, counters, clock,
                            [&seq] { return seq++ * 0x9E3779B97F4A7C15ULL; });

    uint64_t events_replayed = 0;
    uint64_t bytes_replayed = 0;
    long iteration = 0;
    events::Event event;
    auto run_iteration = [&]() {
        if (iteration > 0) {
            for (auto& r : records)
                if (r.per_iteration) shift(r, delta);
        }
        CALLGRIND_START_INSTRUMENTATION;
        for (const auto& r : records) {
            if (!r.per_iteration && iteration > 0) continue;
            // One event reused across records, as the agent's ring callback does.
            events::Event& ev = event;
            if (events::decode_counted({r.bytes.data(), r.bytes.size()}, counters, ev))
                pipe.on_event(ev);
            events_replayed++;
            bytes_replayed += r.bytes.size();
        }
        // The agent flushes batched datagrams on its drain tick; an iteration stands in for one.
        emitter->flush();
        CALLGRIND_STOP_INSTRUMENTATION;
        iteration++;
    };

    // Warm-up: the first iteration also replays process exec records and fills the caches.
    for (long i = 0; i < std::max(1L, opt.warmup); i++) run_iteration();
    const uint64_t ev0 = events_replayed, by0 = bytes_replayed;
    const uint64_t docs0 = counters.get("pipeline.documents");
    const uint64_t req0 = counters.get("http.requests");
    const long it0 = iteration;

    timespec c0{}, c1{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    auto w0 = std::chrono::steady_clock::now();
    if (opt.iterations > 0) {
        for (long i = 0; i < opt.iterations; i++) run_iteration();
    } else {
        auto until = w0 + std::chrono::duration<double>(opt.seconds);
        while (std::chrono::steady_clock::now() < until)
            for (int i = 0; i < 20; i++) run_iteration();
    }
    auto w1 = std::chrono::steady_clock::now();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    pipe.shutdown();

    const double wall = std::chrono::duration<double>(w1 - w0).count();
    const double cpu = double(c1.tv_sec - c0.tv_sec) + double(c1.tv_nsec - c0.tv_nsec) / 1e9;
    const uint64_t events = events_replayed - ev0;
    const uint64_t docs = counters.get("pipeline.documents") - docs0;
    const uint64_t requests = counters.get("http.requests") - req0;

    nlohmann::json out;
    out["capture"] = fs::path(opt.capture).filename().string();
    out["records_in_capture"] = records.size();
    out["records_per_iteration"] = per_iter_records;
    out["iterations"] = iteration - it0;
    out["events"] = events;
    out["event_bytes"] = bytes_replayed - by0;
    out["http_requests"] = requests;
    out["documents"] = docs;
    out["wall_s"] = wall;
    out["cpu_s"] = cpu;
    out["events_per_s"] = cpu > 0 ? double(events) / cpu : 0.0;
    out["ns_per_event"] = events ? cpu * 1e9 / double(events) : 0.0;
    out["us_per_document"] = docs ? cpu * 1e6 / double(docs) : 0.0;
    out["emitter"] =
        udp ? "udp " + opt.udp + " batch " + std::to_string(opt.udp_batch) : std::string("discard");
    out["decode_rejected"] = 0;
    for (const auto& [name, value] : counters.all())
        if (name.rfind("decode.rejected", 0) == 0)
            out["decode_rejected"] = out["decode_rejected"].get<uint64_t>() + value;
    out["udp_send_failed"] = counters.get("export.udp_send_failed");
    std::printf("%s\n", out.dump().c_str());
    return docs > 0 ? 0 : 1;
}
