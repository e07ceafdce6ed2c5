#pragma once
// Typed, owning forms of the records the kernel side writes into the ring buffer (see
// bpf/include/passport/abi.h). The decoder (decoder.hpp) is the only code that reads raw
// records; every later stage takes these types, so the whole pipeline can be fed from recorded
// streams or hand-built events in tests.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>

namespace passport::events {

enum class Role : uint8_t { kUnknown = 0, kServer = 1, kClient = 2 };
enum class Direction : uint8_t { kIngress = 0, kEgress = 1 };

// The values below are those of bpf/include/passport/abi.h (checked in abi_layout.cpp); the
// decoder rejects a record carrying any other.

// Where a Data event's bytes come from (enum pp_data_source).
enum class DataSource : uint8_t {
    kSocket = 0,  // read/write syscalls on the socket (plaintext or ciphertext)
    kTls = 1,     // plaintext from a TLS library call
};

// A sampling decision as the kernel carries it (enum pp_sampled).
enum class Sampled : uint8_t {
    kNo = 0,
    kYes = 1,
    kUnknown = 2,  // not decided in the kernel: userspace decides
};

// Where a kernel trace context came from (enum pp_ctx_source); never kNone in a decoded event.
enum class CtxSource : uint8_t {
    kNone = 0,
    kXrayHeader = 1,   // the request's X-Amzn-Trace-Id
    kTraceparent = 2,  // the request's W3C traceparent, converted
    kMinted = 3,       // no usable header: a new trace, sampled by the kernel rules
};

// The kernel sampling rule that decided: an index into the rules the agent wrote to the kernel
// (kDefault, the last index, is the default rule), or kNone (PP_RULE_NONE).
enum class Rule : uint16_t {
    kDefault = 16,  // PP_MAX_SAMPLE_RULES
    kNone = 0xffff,
};
constexpr uint16_t rule_index(Rule r) { return static_cast<uint16_t>(r); }
constexpr bool rule_valid(uint16_t raw) {
    return raw <= rule_index(Rule::kDefault) || raw == rule_index(Rule::kNone);
}

// A connection as the kernel names it: the fd of a process plus a generation, so a reused fd is
// a different connection.
struct ConnKey {
    uint32_t tgid = 0;
    int32_t fd = -1;
    uint64_t gen = 0;
    bool operator==(const ConnKey&) const = default;
};

struct ConnKeyHash {
    size_t operator()(const ConnKey& k) const {
        uint64_t h = (uint64_t{k.tgid} << 32) ^ static_cast<uint32_t>(k.fd);
        return std::hash<uint64_t>{}(h ^ (k.gen * 0x9E3779B97F4A7C15ULL));
    }
};

struct Endpoint {
    uint16_t family = 0;  // AF_INET / AF_INET6; 0 = unknown
    uint16_t port = 0;
    std::array<uint8_t, 16> addr{};
    // "127.0.0.1" / "::1" / "" when unknown. IPv4-mapped IPv6 prints as IPv4.
    std::string ip_string() const;
    bool operator==(const Endpoint&) const = default;
};

// Both ends of a socket and its network namespace, as the kernel reports them when a connection
// opens and when a header is injected into it: decoded, recorded and replayed alike.
struct SocketAddrs {
    Endpoint local;
    Endpoint remote;
    uint32_t netns = 0;
};

// Times are CLOCK_MONOTONIC nanoseconds from the kernel; convert with a ClockOffset.
struct ConnOpen : SocketAddrs {
    ConnKey conn;
    uint32_t tid = 0;
    uint64_t ts_ns = 0;
    Role role = Role::kUnknown;
};

struct Data {
    ConnKey conn;
    uint32_t tid = 0;
    uint64_t enter_ns = 0;  // syscall entry
    uint64_t exit_ns = 0;   // syscall exit
    uint64_t pos = 0;       // stream offset of the first byte in this direction
    uint32_t len = 0;       // bytes the syscall moved; bytes.size() may be smaller (capture cap)
    Direction direction = Direction::kIngress;
    Role role = Role::kUnknown;
    uint8_t syscall = 0;  // enum pp_syscall
    DataSource source = DataSource::kSocket;
    std::string bytes;  // captured prefix of the len bytes
};

struct ConnClose {
    ConnKey conn;
    uint32_t tid = 0;
    uint64_t ts_ns = 0;
    uint64_t rx_bytes = 0;
    uint64_t tx_bytes = 0;
};

struct ProcExec {
    uint32_t tgid = 0;
    uint32_t ppid = 0;
    uint64_t ts_ns = 0;
    std::string comm;
    std::string filename;
};

struct ProcExit {
    uint32_t tgid = 0;
    uint64_t ts_ns = 0;
    int32_t exit_code = 0;
    std::string comm;
};

// The trace context the kernel gave a server request at its first read (PP_EV_TRACE_CTX): ids
// already in their X-Ray text form. Reported just before that read's Data events; matched to
// the request by (conn, request_pos).
struct TraceCtx {
    ConnKey conn;
    uint32_t tid = 0;
    uint64_t ts_ns = 0;
    uint64_t request_pos = 0;  // ingress stream offset of the request's first byte
    std::string trace_id;      // 1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy
    std::string segment_id;    // 16 hex digits
    std::string parent_id;     // 16 hex digits, or empty
    Sampled sampled = Sampled::kUnknown;
    CtxSource source = CtxSource::kNone;
    Rule rule = Rule::kNone;  // the kernel sampling rule that decided
    uint8_t rejected = 0;     // PP_REJECT_* bits
    // Requests before this one on conn were unsampled and the kernel shipped none of their bytes
    // (nor their responses'): ingress from unsampled_rx_pos and egress from unsampled_tx_pos,
    // each up to the next position of that direction that arrives, belong to them.
    bool unsampled_before = false;
    uint64_t unsampled_rx_pos = 0;
    uint64_t unsampled_tx_pos = 0;
};

// The kernel put (or found) X-Amzn-Trace-Id in an outgoing request (PP_EV_INJECT). Matches the
// client request whose connection is (tgid, local, remote, netns) and whose first byte is at
// egress stream offset app_pos.
// kLeave is no request: an adopted socket must leave the sockhash (the agent removes it).
enum class InjectOutcome : uint8_t {
    kInjected = 1,
    kAppHeader = 2,
    kSkippedSplit = 3,
    kSkippedFailed = 4,
    kLeave = 5,
    // The request forwarded, byte for byte, the Root and Parent of a request its process received
    // (a proxy): the kernel replaced Parent's digits with subsegment_id; the context is that
    // request's (ctx_from_thread, ctx_conn, ctx_request_pos).
    kRewritten = 6,
};

// The kernel put ids of Passport's on the wire for this request: a header inserted, or a
// forwarded header's Parent rewritten.
inline bool carries_our_ids(InjectOutcome o) {
    return o == InjectOutcome::kInjected || o == InjectOutcome::kRewritten;
}

struct Inject : SocketAddrs {
    uint32_t tgid = 0;
    uint32_t tid = 0;
    uint64_t ts_ns = 0;
    InjectOutcome outcome = InjectOutcome::kInjected;
    uint64_t app_pos = 0;
    uint64_t subsegment_id = 0;  // the Parent written on the wire; 0 unless carries_our_ids()
    uint64_t socket_cookie = 0;
    // The context the header carries.
    bool ctx_from_thread = false;  // the writing thread's server request; else minted for this call
    std::string trace_id;          // "1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx"
    uint64_t segment_id = 0;       // the server request's segment (or the call's own segment)
    Sampled sampled = Sampled::kUnknown;
    Rule rule = Rule::kNone;       // minted: the kernel sampling rule that decided
    ConnKey ctx_conn;              // the server request's connection (ctx_from_thread)
    uint64_t ctx_request_pos = 0;  // its ingress offset on ctx_conn
};

// A traced process sent, on a UDP socket, a datagram that starts with the X-Ray daemon header
// (PP_EV_SDK_DATAGRAM): it has an X-Ray SDK of its own. Reported once per process (again after
// an exec).
struct SdkDatagram {
    uint32_t tgid = 0;
    uint32_t tid = 0;
    uint64_t ts_ns = 0;
    uint8_t syscall = 0;  // enum pp_syscall that sent it
    bool spaced = false;  // the header written with spaces (Go, Java SDKs)
};

// A Go process's thread is about to write an outgoing net/http request made for the server
// request (ctx_conn, ctx_request_pos); its thread context is that request's now, handed over by
// the Go transport's own call (PP_EV_GO_HANDOFF, bpf/probes/go_http.bpf.c). ctx_conn.tgid 0: the
// call's request is unknown (nothing was handed over).
struct GoHandoff {
    uint32_t tgid = 0;
    uint32_t tid = 0;
    uint64_t ts_ns = 0;
    ConnKey ctx_conn;
    uint64_t ctx_request_pos = 0;
};

using Event = std::variant<ConnOpen, Data, ConnClose, ProcExec, ProcExit, TraceCtx, Inject,
                           SdkDatagram, GoHandoff>;

}  // namespace passport::events
