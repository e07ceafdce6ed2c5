#include "tests/support/event_builder.hpp"

#include <algorithm>

namespace passport::testing {

events::Endpoint ipv4_endpoint(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
    events::Endpoint e;
    e.family = 2;  // AF_INET
    e.port = port;
    e.addr[0] = a;
    e.addr[1] = b;
    e.addr[2] = c;
    e.addr[3] = d;
    return e;
}

EventBuilder::EventBuilder(events::Role role, events::ConnKey key)
    : key_(key),
      role_(role),
      local_(ipv4_endpoint(10, 0, 0, 1, 8080)),
      remote_(ipv4_endpoint(10, 0, 0, 2, 43210)) {}

void EventBuilder::set_endpoints(const events::Endpoint& local, const events::Endpoint& remote) {
    local_ = local;
    remote_ = remote;
}

uint64_t EventBuilder::position(events::Direction dir) const {
    return pos_[static_cast<size_t>(dir)];
}

void EventBuilder::set_position(events::Direction dir, uint64_t pos) {
    pos_[static_cast<size_t>(dir)] = pos;
}

events::ConnOpen EventBuilder::open(uint64_t ts_ns, uint32_t tid) const {
    events::ConnOpen o;
    o.conn = key_;
    o.tid = tid != 0 ? tid : tid_;
    o.ts_ns = ts_ns;
    o.local = local_;
    o.remote = remote_;
    o.netns = 4026531840U;
    o.role = role_;
    return o;
}

events::Data EventBuilder::data(events::Direction dir, std::string_view captured, uint64_t len,
                                uint64_t enter_ns, uint64_t exit_ns, uint32_t tid) {
    events::Data d;
    d.conn = key_;
    d.tid = tid != 0 ? tid : tid_;
    d.enter_ns = enter_ns;
    d.exit_ns = exit_ns;
    d.pos = pos_[static_cast<size_t>(dir)];
    d.len = static_cast<uint32_t>(len);
    d.direction = dir;
    d.role = role_;
    d.syscall = dir == events::Direction::kIngress ? 0 : 1;  // PP_SYS_READ / PP_SYS_WRITE
    d.bytes.assign(captured);
    pos_[static_cast<size_t>(dir)] += len;
    return d;
}

events::Data EventBuilder::read(std::string_view bytes, uint64_t enter_ns, uint64_t exit_ns,
                                uint32_t tid) {
    return data(events::Direction::kIngress, bytes.substr(0, kCaptureLimit), bytes.size(), enter_ns,
                exit_ns, tid);
}

events::Data EventBuilder::write(std::string_view bytes, uint64_t enter_ns, uint64_t exit_ns,
                                 uint32_t tid) {
    return data(events::Direction::kEgress, bytes.substr(0, kCaptureLimit), bytes.size(), enter_ns,
                exit_ns, tid);
}

events::Data EventBuilder::read_partial(std::string_view captured, uint32_t len, uint64_t enter_ns,
                                        uint64_t exit_ns, uint32_t tid) {
    return data(events::Direction::kIngress, captured, std::max<uint64_t>(len, captured.size()),
                enter_ns, exit_ns, tid);
}

events::Data EventBuilder::write_partial(std::string_view captured, uint32_t len, uint64_t enter_ns,
                                         uint64_t exit_ns, uint32_t tid) {
    return data(events::Direction::kEgress, captured, std::max<uint64_t>(len, captured.size()),
                enter_ns, exit_ns, tid);
}

std::vector<events::Data> EventBuilder::split(events::Direction dir, std::string_view bytes,
                                              const std::vector<size_t>& splits, uint64_t start_ns,
                                              uint64_t step_ns, uint32_t tid) {
    std::vector<events::Data> out;
    size_t from = 0;
    uint64_t t = start_ns;
    auto piece = [&](size_t to) {
        const std::string_view part = bytes.substr(from, to - from);
        out.push_back(
            data(dir, part.substr(0, kCaptureLimit), part.size(), t, t + step_ns / 2, tid));
        t += step_ns;
        from = to;
    };
    for (size_t at : splits) {
        at = std::min(at, bytes.size());
        if (at > from) piece(at);
    }
    if (from < bytes.size()) piece(bytes.size());
    return out;
}

std::vector<events::Data> EventBuilder::reads(std::string_view bytes,
                                              const std::vector<size_t>& splits, uint64_t start_ns,
                                              uint64_t step_ns, uint32_t tid) {
    return split(events::Direction::kIngress, bytes, splits, start_ns, step_ns, tid);
}

std::vector<events::Data> EventBuilder::writes(std::string_view bytes,
                                               const std::vector<size_t>& splits, uint64_t start_ns,
                                               uint64_t step_ns, uint32_t tid) {
    return split(events::Direction::kEgress, bytes, splits, start_ns, step_ns, tid);
}

events::ConnClose EventBuilder::close(uint64_t ts_ns, uint32_t tid) const {
    events::ConnClose c;
    c.conn = key_;
    c.tid = tid != 0 ? tid : tid_;
    c.ts_ns = ts_ns;
    c.rx_bytes = pos_[static_cast<size_t>(events::Direction::kIngress)];
    c.tx_bytes = pos_[static_cast<size_t>(events::Direction::kEgress)];
    return c;
}

events::ProcExit EventBuilder::exit(uint64_t ts_ns, int32_t exit_code) const {
    events::ProcExit e;
    e.tgid = key_.tgid;
    e.ts_ns = ts_ns;
    e.exit_code = exit_code;
    e.comm = "test";
    return e;
}

}  // namespace passport::testing
