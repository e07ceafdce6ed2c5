#include "userspace/events/decoder.hpp"

#include <cstring>
#include <string>

#include "passport/abi.h"

namespace passport::events {
namespace {

template <typename T>
bool read_struct(std::span<const uint8_t> rec, T& out) {
    if (rec.size() < sizeof(T)) return false;
    std::memcpy(&out, rec.data(), sizeof(T));
    return true;
}

std::string bounded_string(const char* s, size_t cap) { return {s, strnlen(s, cap)}; }

Endpoint to_endpoint(const pp_endpoint& e) {
    Endpoint out;
    out.family = e.family;
    out.port = e.port;
    std::memcpy(out.addr.data(), e.addr, sizeof(e.addr));
    return out;
}

// pp_conn_open_event and pp_inject_event carry the socket's ends and namespace alike.
template <typename KernelEvent>
SocketAddrs addrs_of(const KernelEvent& ev) {
    return {to_endpoint(ev.local), to_endpoint(ev.remote), ev.netns};
}

ConnKey to_key(const pp_conn_id& c) { return ConnKey{c.tgid, c.fd, c.gen}; }

void put_hex(std::string& out, uint64_t v, int digits) {
    static const char* kDigits = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) out.push_back(kDigits[(v >> (4 * i)) & 15]);
}

std::string hex64(uint64_t v) {
    std::string s;
    put_hex(s, v, 16);
    return s;
}

Result<Role> to_role(uint8_t r) {
    switch (r) {
        case PP_ROLE_UNKNOWN:
            return Role::kUnknown;
        case PP_ROLE_SERVER:
            return Role::kServer;
        case PP_ROLE_CLIENT:
            return Role::kClient;
    }
    return make_error("bad_role");
}

std::string trace_id_string(const pp_trace_ctx& c) {
    static const char* kDigits = "0123456789abcdef";
    std::string out = "1-";
    for (int shift = 28; shift >= 0; shift -= 4)
        out.push_back(kDigits[(c.trace_epoch >> shift) & 15]);
    out.push_back('-');
    for (uint8_t b : c.trace_rand) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 15]);
    }
    return out;
}

// Fills `out` from a PP_EV_DATA record, reusing out.bytes' storage; the rejection reason, or
// empty when the record is good (then every field of `out` is set).
std::string_view decode_data(std::span<const uint8_t> rec, Data& out) {
    constexpr size_t kFixed = offsetof(pp_data_event, msg);
    if (rec.size() < kFixed) return "short_data";
    pp_data_event ev;
    std::memcpy(&ev, rec.data(), kFixed);
    if (ev.captured > PP_MAX_CHUNK || ev.captured > ev.len) return "bad_capture_len";
    if (rec.size() < kFixed + ev.captured) return "truncated_payload";
    if (ev.direction > PP_DIR_EGRESS) return "bad_direction";
    auto role = to_role(ev.role);
    if (!role) return "bad_role";
    if (ev.source > PP_SRC_TLS) return "bad_source";
    out.conn = to_key(ev.conn);
    out.tid = ev.hdr.tid;
    out.enter_ns = ev.hdr.ts_ns;
    out.exit_ns = ev.exit_ns;
    out.pos = ev.pos;
    out.len = ev.len;
    out.direction = ev.direction == PP_DIR_INGRESS ? Direction::kIngress : Direction::kEgress;
    out.role = *role;
    out.syscall = ev.syscall;
    out.source = static_cast<DataSource>(ev.source);
    out.bytes.assign(reinterpret_cast<const char*>(rec.data() + kFixed), ev.captured);
    return {};
}

Result<Event> decode_sdk_datagram(std::span<const uint8_t> rec) {
    pp_sdk_event ev;
    if (!read_struct(rec, ev)) return make_error("short_sdk_datagram");
    if (ev.spaced > 1 || ev.syscall < PP_SYS_WRITE || ev.syscall > PP_SYS_SENDMMSG)
        return make_error("bad_sdk_datagram");
    SdkDatagram out;
    out.tgid = ev.hdr.tgid;
    out.tid = ev.hdr.tid;
    out.ts_ns = ev.hdr.ts_ns;
    out.syscall = ev.syscall;
    out.spaced = ev.spaced != 0;
    return Event{out};
}

}  // namespace

Result<Event> decode(std::span<const uint8_t> rec) {
    if (rec.size() < sizeof(pp_event_header)) return make_error("short_header");
    switch (rec[0]) {
        case PP_EV_CONN_OPEN: {
            pp_conn_open_event ev;
            if (!read_struct(rec, ev)) return make_error("short_conn_open");
            auto role = to_role(ev.role);
            if (!role) return make_error(role.error());
            ConnOpen out;
            out.conn = to_key(ev.conn);
            out.tid = ev.hdr.tid;
            out.ts_ns = ev.hdr.ts_ns;
            static_cast<SocketAddrs&>(out) = addrs_of(ev);
            out.role = *role;
            return Event{out};
        }
        case PP_EV_DATA: {
            Data out;
            if (const std::string_view reason = decode_data(rec, out); !reason.empty()) {
                return make_error(std::string(reason));
            }
            return Event{std::move(out)};
        }
        case PP_EV_CONN_CLOSE: {
            pp_conn_close_event ev;
            if (!read_struct(rec, ev)) return make_error("short_conn_close");
            ConnClose out;
            out.conn = to_key(ev.conn);
            out.tid = ev.hdr.tid;
            out.ts_ns = ev.hdr.ts_ns;
            out.rx_bytes = ev.rx_bytes;
            out.tx_bytes = ev.tx_bytes;
            return Event{out};
        }
        case PP_EV_PROC_EXEC: {
            pp_proc_event ev;
            if (!read_struct(rec, ev)) return make_error("short_proc");
            ProcExec out;
            out.tgid = ev.hdr.tgid;
            out.ppid = ev.ppid;
            out.ts_ns = ev.hdr.ts_ns;
            out.comm = bounded_string(ev.comm, sizeof(ev.comm));
            out.filename = bounded_string(ev.filename, sizeof(ev.filename));
            return Event{std::move(out)};
        }
        case PP_EV_PROC_EXIT: {
            pp_proc_event ev;
            if (!read_struct(rec, ev)) return make_error("short_proc");
            ProcExit out;
            out.tgid = ev.hdr.tgid;
            out.ts_ns = ev.hdr.ts_ns;
            out.exit_code = ev.exit_code;
            out.comm = bounded_string(ev.comm, sizeof(ev.comm));
            return Event{std::move(out)};
        }
        case PP_EV_TRACE_CTX: {
            pp_trace_ctx_event ev;
            if (!read_struct(rec, ev)) return make_error("short_trace_ctx");
            const pp_trace_ctx& c = ev.ctx;
            if (c.sampled > PP_SAMPLED_UNKNOWN || c.source == PP_CTX_NONE ||
                c.source > PP_CTX_MINTED || c.segment_id == 0 || !rule_valid(ev.rule))
                return make_error("bad_trace_ctx");
            TraceCtx out;
            out.conn = to_key(c.conn);
            out.tid = ev.hdr.tid;
            out.ts_ns = ev.hdr.ts_ns;
            out.request_pos = c.request_pos;
            out.trace_id = "1-";
            put_hex(out.trace_id, c.trace_epoch, 8);
            out.trace_id.push_back('-');
            for (uint8_t b : c.trace_rand) put_hex(out.trace_id, b, 2);
            out.segment_id = hex64(c.segment_id);
            if (c.parent_id != 0) out.parent_id = hex64(c.parent_id);
            out.sampled = static_cast<Sampled>(c.sampled);
            out.source = static_cast<CtxSource>(c.source);
            out.rule = static_cast<Rule>(ev.rule);
            out.rejected = ev.rejected;
            if (ev.unsampled > 1) return make_error("bad_trace_ctx");
            out.unsampled_before = ev.unsampled != 0;
            out.unsampled_rx_pos = ev.unsampled_rx_pos;
            out.unsampled_tx_pos = ev.unsampled_tx_pos;
            return Event{std::move(out)};
        }
        case PP_EV_INJECT: {
            pp_inject_event ev;
            if (!read_struct(rec, ev)) return make_error("short_inject");
            if (ev.outcome < PP_INJ_INJECTED || ev.outcome > PP_INJ_REWRITTEN)
                return make_error("bad_inject_outcome");
            // PP_INJ_LEAVE carries its enum pp_inject_leave reason (1..3) in `rule`.
            if (ev.ctx.sampled > PP_SAMPLED_UNKNOWN || !rule_valid(ev.rule))
                return make_error("bad_inject_ctx");
            Inject out;
            out.tgid = ev.hdr.tgid;
            out.tid = ev.hdr.tid;
            out.ts_ns = ev.hdr.ts_ns;
            static_cast<SocketAddrs&>(out) = addrs_of(ev);
            out.outcome = static_cast<InjectOutcome>(ev.outcome);
            out.app_pos = ev.app_pos;
            out.subsegment_id = ev.subsegment_id;
            out.socket_cookie = ev.socket_cookie;
            out.ctx_from_thread = ev.ctx_from_thread != 0;
            if (ev.outcome == PP_INJ_INJECTED || ev.outcome == PP_INJ_REWRITTEN)
                out.trace_id = trace_id_string(ev.ctx);
            out.segment_id = ev.ctx.segment_id;
            out.sampled = static_cast<Sampled>(ev.ctx.sampled);
            out.rule = static_cast<Rule>(ev.rule);
            out.ctx_conn = to_key(ev.ctx.conn);
            out.ctx_request_pos = ev.ctx.request_pos;
            return Event{std::move(out)};
        }
        case PP_EV_SDK_DATAGRAM:
            return decode_sdk_datagram(rec);
        case PP_EV_GO_HANDOFF: {
            pp_go_handoff_event ev;
            if (!read_struct(rec, ev)) return make_error("short_go_handoff");
            if (ev.ctx_conn.tgid != ev.hdr.tgid && ev.ctx_conn.tgid != 0)
                return make_error("bad_go_handoff");
            GoHandoff out;
            out.tgid = ev.hdr.tgid;
            out.tid = ev.hdr.tid;
            out.ts_ns = ev.hdr.ts_ns;
            out.ctx_conn = to_key(ev.ctx_conn);
            out.ctx_request_pos = ev.request_pos;
            return Event{out};
        }
    }
    return make_error("unknown_kind");
}

bool decode_counted(std::span<const uint8_t> record, Counters& counters, Event& out) {
    if (record.size() >= sizeof(pp_event_header) && record[0] == PP_EV_DATA) {
        // Most records: decoded in place, so a caller that keeps `out` from one record to the
        // next reuses its payload buffer instead of allocating one per record.
        Data* data = std::get_if<Data>(&out);
        if (data == nullptr) data = &out.emplace<Data>();
        if (const std::string_view reason = decode_data(record, *data); !reason.empty()) {
            counters.add("decode.rejected." + std::string(reason));
            return false;
        }
        counters.add("decode.ok");
        return true;
    }
    auto r = decode(record);
    if (!r) {
        counters.add("decode.rejected." + r.error());
        return false;
    }
    counters.add("decode.ok");
    out = std::move(r).value();
    return true;
}

}  // namespace passport::events
