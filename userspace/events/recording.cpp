#include "userspace/events/recording.hpp"

#include <nlohmann/json.hpp>

#include "userspace/common/text.hpp"

namespace passport::events {
namespace {

using nlohmann::json;

std::string to_hex(const std::string& bytes) {
    static const char* kDigits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 15]);
    }
    return out;
}

Result<std::string> from_hex(const std::string& hex) {
    if (hex.size() % 2) return make_error("odd hex length");
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
        int hi = text::hex_value(hex[i]), lo = text::hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) return make_error("bad hex digit");
        out.push_back(static_cast<char>(hi << 4 | lo));
    }
    return out;
}

json key_json(const ConnKey& k) { return {{"tgid", k.tgid}, {"fd", k.fd}, {"gen", k.gen}}; }
ConnKey key_from(const json& j) {
    return ConnKey{j.at("tgid").get<uint32_t>(), j.at("fd").get<int32_t>(),
                   j.at("gen").get<uint64_t>()};
}

json ep_json(const Endpoint& e) {
    std::string addr(reinterpret_cast<const char*>(e.addr.data()), e.addr.size());
    return {{"family", e.family}, {"port", e.port}, {"addr", to_hex(addr)}};
}
Endpoint ep_from(const json& j) {
    Endpoint e;
    e.family = j.at("family").get<uint16_t>();
    e.port = j.at("port").get<uint16_t>();
    auto raw = from_hex(j.at("addr").get<std::string>());
    if (raw && raw->size() == e.addr.size()) std::copy(raw->begin(), raw->end(), e.addr.begin());
    return e;
}

void put_addrs(json& j, const SocketAddrs& a) {
    j["local"] = ep_json(a.local);
    j["remote"] = ep_json(a.remote);
    j["netns"] = a.netns;
}
SocketAddrs addrs_from(const json& j) {
    return {ep_from(j.at("local")), ep_from(j.at("remote")), j.at("netns").get<uint32_t>()};
}

}  // namespace

std::string to_json_line(const Event& ev) {
    json j;
    std::visit(
        [&](const auto& e) {
            using T = std::decay_t<decltype(e)>;
            if constexpr (std::is_same_v<T, ConnOpen>) {
                j = {{"type", "open"},
                     {"conn", key_json(e.conn)},
                     {"tid", e.tid},
                     {"ts", e.ts_ns},
                     {"role", static_cast<int>(e.role)}};
                put_addrs(j, e);
            } else if constexpr (std::is_same_v<T, Data>) {
                j = {{"type", "data"},
                     {"conn", key_json(e.conn)},
                     {"tid", e.tid},
                     {"enter", e.enter_ns},
                     {"exit", e.exit_ns},
                     {"pos", e.pos},
                     {"len", e.len},
                     {"dir", e.direction == Direction::kIngress ? "in" : "out"},
                     {"role", static_cast<int>(e.role)},
                     {"syscall", e.syscall},
                     {"bytes", to_hex(e.bytes)}};
                if (e.source != DataSource::kSocket) j["source"] = e.source;
            } else if constexpr (std::is_same_v<T, ConnClose>) {
                j = {{"type", "close"}, {"conn", key_json(e.conn)}, {"tid", e.tid},
                     {"ts", e.ts_ns},   {"rx", e.rx_bytes},         {"tx", e.tx_bytes}};
            } else if constexpr (std::is_same_v<T, ProcExec>) {
                j = {{"type", "exec"}, {"tgid", e.tgid}, {"ppid", e.ppid},
                     {"ts", e.ts_ns},  {"comm", e.comm}, {"filename", e.filename}};
            } else if constexpr (std::is_same_v<T, TraceCtx>) {
                j = {{"type", "trace_ctx"},
                     {"conn", key_json(e.conn)},
                     {"tid", e.tid},
                     {"ts", e.ts_ns},
                     {"pos", e.request_pos},
                     {"trace_id", e.trace_id},
                     {"segment_id", e.segment_id},
                     {"parent_id", e.parent_id},
                     {"sampled", e.sampled},
                     {"source", e.source},
                     {"rule", e.rule},
                     {"rejected", e.rejected}};
                if (e.unsampled_before) {
                    j["unsampled_rx_pos"] = e.unsampled_rx_pos;
                    j["unsampled_tx_pos"] = e.unsampled_tx_pos;
                }
            } else if constexpr (std::is_same_v<T, Inject>) {
                j = {{"type", "inject"},
                     {"tgid", e.tgid},
                     {"tid", e.tid},
                     {"ts", e.ts_ns},
                     {"outcome", static_cast<int>(e.outcome)},
                     {"app_pos", e.app_pos},
                     {"subsegment_id", e.subsegment_id},
                     {"cookie", e.socket_cookie},
                     {"ctx_from_thread", e.ctx_from_thread},
                     {"trace_id", e.trace_id},
                     {"segment_id", e.segment_id},
                     {"sampled", e.sampled},
                     {"rule", e.rule},
                     {"ctx_conn", key_json(e.ctx_conn)},
                     {"ctx_request_pos", e.ctx_request_pos}};
                put_addrs(j, e);
            } else if constexpr (std::is_same_v<T, SdkDatagram>) {
                j = {{"type", "sdk_datagram"}, {"tgid", e.tgid},       {"tid", e.tid},
                     {"ts", e.ts_ns},          {"syscall", e.syscall}, {"spaced", e.spaced}};
            } else if constexpr (std::is_same_v<T, GoHandoff>) {
                j = {{"type", "go_handoff"},
                     {"tgid", e.tgid},
                     {"tid", e.tid},
                     {"ts", e.ts_ns},
                     {"ctx_conn", key_json(e.ctx_conn)},
                     {"ctx_request_pos", e.ctx_request_pos}};
            } else {
                j = {{"type", "exit"},
                     {"tgid", e.tgid},
                     {"ts", e.ts_ns},
                     {"code", e.exit_code},
                     {"comm", e.comm}};
            }
        },
        ev);
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Event> from_json_line(const std::string& line) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return make_error("not a JSON object");
    try {
        std::string type = j.at("type").get<std::string>();
        auto role = [&]() {
            int r = j.at("role").get<int>();
            return r == 1 ? Role::kServer : r == 2 ? Role::kClient : Role::kUnknown;
        };
        if (type == "open") {
            ConnOpen e;
            e.conn = key_from(j.at("conn"));
            e.tid = j.at("tid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            static_cast<SocketAddrs&>(e) = addrs_from(j);
            e.role = role();
            return Event{e};
        }
        if (type == "data") {
            Data e;
            e.conn = key_from(j.at("conn"));
            e.tid = j.at("tid").get<uint32_t>();
            e.enter_ns = j.at("enter").get<uint64_t>();
            e.exit_ns = j.at("exit").get<uint64_t>();
            e.pos = j.at("pos").get<uint64_t>();
            e.len = j.at("len").get<uint32_t>();
            e.direction =
                j.at("dir").get<std::string>() == "in" ? Direction::kIngress : Direction::kEgress;
            e.role = role();
            e.syscall = j.at("syscall").get<uint8_t>();
            e.source = j.value("source", DataSource::kSocket);
            auto bytes = from_hex(j.at("bytes").get<std::string>());
            if (!bytes) return make_error(bytes.error());
            e.bytes = std::move(*bytes);
            if (e.bytes.size() > e.len) return make_error("captured bytes exceed len");
            return Event{std::move(e)};
        }
        if (type == "close") {
            ConnClose e;
            e.conn = key_from(j.at("conn"));
            e.tid = j.at("tid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            e.rx_bytes = j.at("rx").get<uint64_t>();
            e.tx_bytes = j.at("tx").get<uint64_t>();
            return Event{e};
        }
        if (type == "exec") {
            ProcExec e;
            e.tgid = j.at("tgid").get<uint32_t>();
            e.ppid = j.at("ppid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            e.comm = j.at("comm").get<std::string>();
            e.filename = j.at("filename").get<std::string>();
            return Event{std::move(e)};
        }
        if (type == "exit") {
            ProcExit e;
            e.tgid = j.at("tgid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            e.exit_code = j.at("code").get<int32_t>();
            e.comm = j.at("comm").get<std::string>();
            return Event{std::move(e)};
        }
        if (type == "trace_ctx") {
            TraceCtx e;
            e.conn = key_from(j.at("conn"));
            e.tid = j.at("tid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            e.request_pos = j.at("pos").get<uint64_t>();
            e.trace_id = j.at("trace_id").get<std::string>();
            e.segment_id = j.at("segment_id").get<std::string>();
            e.parent_id = j.at("parent_id").get<std::string>();
            e.sampled = j.at("sampled").get<Sampled>();
            e.source = j.at("source").get<CtxSource>();
            e.rule = j.at("rule").get<Rule>();
            e.rejected = j.value("rejected", uint8_t{0});
            e.unsampled_before = j.contains("unsampled_rx_pos");
            e.unsampled_rx_pos = j.value("unsampled_rx_pos", uint64_t{0});
            e.unsampled_tx_pos = j.value("unsampled_tx_pos", uint64_t{0});
            return Event{std::move(e)};
        }
        if (type == "inject") {
            Inject e;
            e.tgid = j.at("tgid").get<uint32_t>();
            e.tid = j.at("tid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            static_cast<SocketAddrs&>(e) = addrs_from(j);
            int outcome = j.at("outcome").get<int>();
            if (outcome < 1 || outcome > 4) return make_error("bad inject outcome");
            e.outcome = static_cast<InjectOutcome>(outcome);
            e.app_pos = j.at("app_pos").get<uint64_t>();
            e.subsegment_id = j.at("subsegment_id").get<uint64_t>();
            e.socket_cookie = j.at("cookie").get<uint64_t>();
            e.ctx_from_thread = j.at("ctx_from_thread").get<bool>();
            e.trace_id = j.at("trace_id").get<std::string>();
            e.segment_id = j.at("segment_id").get<uint64_t>();
            e.sampled = j.at("sampled").get<Sampled>();
            e.rule = j.value("rule", Rule::kNone);
            e.ctx_conn = key_from(j.at("ctx_conn"));
            e.ctx_request_pos = j.at("ctx_request_pos").get<uint64_t>();
            return Event{std::move(e)};
        }
        if (type == "sdk_datagram") {
            SdkDatagram e;
            e.tgid = j.at("tgid").get<uint32_t>();
            e.tid = j.at("tid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            e.syscall = j.at("syscall").get<uint8_t>();
            e.spaced = j.value("spaced", false);
            return Event{e};
        }
        if (type == "go_handoff") {
            GoHandoff e;
            e.tgid = j.at("tgid").get<uint32_t>();
            e.tid = j.at("tid").get<uint32_t>();
            e.ts_ns = j.at("ts").get<uint64_t>();
            e.ctx_conn = key_from(j.at("ctx_conn"));
            e.ctx_request_pos = j.at("ctx_request_pos").get<uint64_t>();
            return Event{e};
        }
        return make_error("unknown event type '" + type + "'");
    } catch (const json::exception& e) {
        return make_error(std::string("bad event: ") + e.what());
    }
}

Result<std::vector<Event>> read_recording(std::istream& in) {
    std::vector<Event> out;
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
        n++;
        if (line.empty()) continue;
        auto e = from_json_line(line);
        if (!e) return make_error("line " + std::to_string(n) + ": " + e.error());
        out.push_back(std::move(*e));
    }
    return out;
}

}  // namespace passport::events
