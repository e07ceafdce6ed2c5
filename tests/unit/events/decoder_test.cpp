// Decoder: raw ring-buffer records built byte by byte as the kernel writes them.
#include "userspace/events/decoder.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "passport/abi.h"

namespace passport::events {
namespace {

std::vector<uint8_t> data_record(const std::string& payload, uint32_t len,
                                 uint8_t dir = PP_DIR_INGRESS) {
    pp_data_event ev{};
    ev.hdr.kind = PP_EV_DATA;
    ev.hdr.tgid = 42;
    ev.hdr.tid = 43;
    ev.hdr.ts_ns = 1000;
    ev.conn = {42, 7, 555};
    ev.exit_ns = 2000;
    ev.pos = 10;
    ev.len = len;
    ev.captured = static_cast<uint32_t>(payload.size());
    ev.direction = dir;
    ev.syscall = PP_SYS_RECVFROM;
    ev.role = PP_ROLE_SERVER;
    std::memcpy(ev.msg, payload.data(), payload.size());
    std::vector<uint8_t> out(offsetof(pp_data_event, msg) + payload.size());
    std::memcpy(out.data(), &ev, out.size());
    return out;
}

TEST(EventsDecoder, DataRecordFieldsAndPayload) {
    auto rec = data_record("GET / HTTP/1.1\r\n", 5000);
    auto r = decode(rec);
    ASSERT_TRUE(r.ok()) << r.error();
    const auto& d = std::get<Data>(*r);
    EXPECT_EQ(d.conn, (ConnKey{42, 7, 555}));
    EXPECT_EQ(d.tid, 43u);
    EXPECT_EQ(d.enter_ns, 1000u);
    EXPECT_EQ(d.exit_ns, 2000u);
    EXPECT_EQ(d.pos, 10u);
    EXPECT_EQ(d.len, 5000u);
    EXPECT_EQ(d.bytes, "GET / HTTP/1.1\r\n");
    EXPECT_EQ(d.direction, Direction::kIngress);
    EXPECT_EQ(d.role, Role::kServer);
}

TEST(EventsDecoder, RejectsPayloadShorterThanDeclared) {
    auto rec = data_record("abcdef", 6);
    rec.resize(rec.size() - 2);
    auto r = decode(rec);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), "truncated_payload");
}

TEST(EventsDecoder, RejectsCapturedBeyondLen) {
    auto rec = data_record("abcdef", 3);
    EXPECT_EQ(decode(rec).error(), "bad_capture_len");
}

TEST(EventsDecoder, RejectsBadDirectionAndRole) {
    auto rec = data_record("x", 1, 9);
    EXPECT_EQ(decode(rec).error(), "bad_direction");
    rec = data_record("x", 1);
    rec[offsetof(pp_data_event, role)] = 77;
    EXPECT_EQ(decode(rec).error(), "bad_role");
}

TEST(EventsDecoder, RejectsShortAndUnknownRecords) {
    std::vector<uint8_t> tiny(5, 0);
    EXPECT_EQ(decode(tiny).error(), "short_header");
    std::vector<uint8_t> unknown(sizeof(pp_event_header), 0);
    unknown[0] = 200;
    EXPECT_EQ(decode(unknown).error(), "unknown_kind");
    std::vector<uint8_t> open(sizeof(pp_event_header), 0);
    open[0] = PP_EV_CONN_OPEN;
    EXPECT_EQ(decode(open).error(), "short_conn_open");
}

TEST(EventsDecoder, ConnOpenEndpoints) {
    pp_conn_open_event ev{};
    ev.hdr.kind = PP_EV_CONN_OPEN;
    ev.hdr.tgid = 9;
    ev.conn = {9, 3, 77};
    ev.local = {2, 8080, {127, 0, 0, 1}};
    ev.remote = {2, 51000, {10, 1, 2, 3}};
    ev.netns = 4026531833u;
    ev.role = PP_ROLE_CLIENT;
    std::vector<uint8_t> rec(sizeof ev);
    std::memcpy(rec.data(), &ev, sizeof ev);
    auto r = decode(rec);
    ASSERT_TRUE(r.ok());
    const auto& o = std::get<ConnOpen>(*r);
    EXPECT_EQ(o.local.port, 8080);
    EXPECT_EQ(o.local.ip_string(), "127.0.0.1");
    EXPECT_EQ(o.remote.ip_string(), "10.1.2.3");
    EXPECT_EQ(o.netns, 4026531833u);
    EXPECT_EQ(o.role, Role::kClient);
}

TEST(EventsDecoder, ProcStringsAreBoundedWithoutNul) {
    pp_proc_event ev{};
    ev.hdr.kind = PP_EV_PROC_EXEC;
    ev.hdr.tgid = 5;
    std::memset(ev.comm, 'c', sizeof ev.comm);          // no terminator
    std::memset(ev.filename, 'f', sizeof ev.filename);  // no terminator
    std::vector<uint8_t> rec(sizeof ev);
    std::memcpy(rec.data(), &ev, sizeof ev);
    auto r = decode(rec);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(std::get<ProcExec>(*r).comm.size(), size_t{PP_COMM_LEN});
    EXPECT_EQ(std::get<ProcExec>(*r).filename.size(), size_t{PP_PATH_LEN});
}

TEST(EventsDecoder, CountedDecodeNamesReason) {
    Counters c;
    Event e;
    std::vector<uint8_t> tiny(3, 0);
    EXPECT_FALSE(decode_counted(tiny, c, e));
    EXPECT_EQ(c.get("decode.rejected.short_header"), 1u);
    auto rec = data_record("hi", 2);
    EXPECT_TRUE(decode_counted(rec, c, e));
    EXPECT_EQ(c.get("decode.ok"), 1u);
}

}  // namespace
}  // namespace passport::events

namespace passport::events {
namespace {

TEST(EventsDecoder, InjectRecordCarriesIdsContextAndPosition) {
    pp_inject_event ev{};
    ev.hdr.kind = PP_EV_INJECT;
    ev.hdr.tgid = 42;
    ev.hdr.tid = 44;
    ev.hdr.ts_ns = 123;
    ev.local = {2, 50001, {127, 0, 0, 1}};
    ev.remote = {2, 9000, {127, 0, 0, 1}};
    ev.netns = 4026531833u;
    ev.outcome = PP_INJ_INJECTED;
    ev.ctx_from_thread = 1;
    ev.app_pos = 4194731;
    ev.subsegment_id = 0x53995c3f42cd8ad8ULL;
    ev.ctx.trace_epoch = 0x5759e988;
    const uint8_t rnd[12] = {0xbd, 0x86, 0x2e, 0x3f, 0xe1, 0xbe,
                             0x46, 0xa9, 0x94, 0x27, 0x27, 0x93};
    std::memcpy(ev.ctx.trace_rand, rnd, 12);
    ev.ctx.segment_id = 0x1122334455667788ULL;
    ev.ctx.sampled = PP_SAMPLED_YES;
    ev.ctx.conn = {42, 7, 555};
    ev.ctx.request_pos = 300;
    ev.rule = 3;
    std::vector<uint8_t> rec(sizeof ev);
    std::memcpy(rec.data(), &ev, sizeof ev);
    auto r = decode(rec);
    ASSERT_TRUE(r.ok()) << r.error();
    const auto& i = std::get<Inject>(*r);
    EXPECT_EQ(i.tgid, 42u);
    EXPECT_EQ(i.tid, 44u);
    EXPECT_EQ(i.outcome, InjectOutcome::kInjected);
    EXPECT_EQ(i.trace_id, "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(i.subsegment_id, 0x53995c3f42cd8ad8ULL);
    EXPECT_EQ(i.app_pos, 4194731u);
    EXPECT_TRUE(i.ctx_from_thread);
    EXPECT_EQ(i.ctx_conn, (ConnKey{42, 7, 555}));
    EXPECT_EQ(i.ctx_request_pos, 300u);
    EXPECT_EQ(i.rule, Rule{3});
    EXPECT_EQ(i.sampled, Sampled::kYes);
    EXPECT_EQ(i.local.port, 50001);
    EXPECT_EQ(i.netns, 4026531833u);

    rec[offsetof(pp_inject_event, ctx) + offsetof(pp_trace_ctx, sampled)] = PP_SAMPLED_UNKNOWN + 1;
    EXPECT_EQ(decode(rec).error(), "bad_inject_ctx") << "unknown sampling decision rejected";
    rec[offsetof(pp_inject_event, ctx) + offsetof(pp_trace_ctx, sampled)] = PP_SAMPLED_NO;
    const uint16_t bad_rule = PP_MAX_SAMPLE_RULES + 1;
    std::memcpy(rec.data() + offsetof(pp_inject_event, rule), &bad_rule, sizeof bad_rule);
    EXPECT_EQ(decode(rec).error(), "bad_inject_ctx") << "unknown rule rejected";
    const uint16_t none = PP_RULE_NONE;
    std::memcpy(rec.data() + offsetof(pp_inject_event, rule), &none, sizeof none);
    ASSERT_TRUE(decode(rec).ok());
    EXPECT_EQ(std::get<Inject>(*decode(rec)).rule, Rule::kNone);

    rec[offsetof(pp_inject_event, outcome)] = 9;
    EXPECT_FALSE(decode(rec).ok()) << "unknown outcome rejected";
    rec.resize(sizeof ev - 1);
    EXPECT_FALSE(decode(rec).ok()) << "short record rejected";
}

}  // namespace
}  // namespace passport::events

namespace passport::events {
namespace {

std::vector<uint8_t> sdk_record(uint8_t syscall, uint8_t spaced,
                                size_t size = sizeof(pp_sdk_event)) {
    pp_sdk_event ev{};
    ev.hdr.kind = PP_EV_SDK_DATAGRAM;
    ev.hdr.tgid = 31412;
    ev.hdr.tid = 31413;
    ev.hdr.ts_ns = 987654321;
    ev.syscall = syscall;
    ev.spaced = spaced;
    std::vector<uint8_t> rec(sizeof ev);
    std::memcpy(rec.data(), &ev, sizeof ev);
    rec.resize(size);
    return rec;
}

TEST(EventsDecoder, SdkDatagramRecord) {
    auto r = decode(sdk_record(PP_SYS_SENDMSG, 0));
    ASSERT_TRUE(r.ok()) << r.error();
    const auto& d = std::get<SdkDatagram>(*r);
    EXPECT_EQ(d.tgid, 31412u);
    EXPECT_EQ(d.tid, 31413u);
    EXPECT_EQ(d.ts_ns, 987654321u);
    EXPECT_EQ(d.syscall, PP_SYS_SENDMSG);
    EXPECT_FALSE(d.spaced);
    auto spaced = decode(sdk_record(PP_SYS_SENDMMSG, 1));
    ASSERT_TRUE(spaced.ok()) << spaced.error();
    EXPECT_TRUE(std::get<SdkDatagram>(*spaced).spaced);
    EXPECT_EQ(std::get<SdkDatagram>(*spaced).syscall, PP_SYS_SENDMMSG);
}

TEST(EventsDecoder, SdkDatagramRejectsShortAndBadValues) {
    EXPECT_EQ(decode(sdk_record(PP_SYS_SENDTO, 0, sizeof(pp_sdk_event) - 1)).error(),
              "short_sdk_datagram");
    EXPECT_EQ(decode(sdk_record(PP_SYS_SENDTO, 2)).error(), "bad_sdk_datagram");
    EXPECT_EQ(decode(sdk_record(PP_SYS_READ, 0)).error(), "bad_sdk_datagram") << "not a send";
    EXPECT_EQ(decode(sdk_record(PP_SYS_SENDMMSG + 1, 0)).error(), "bad_sdk_datagram");
}

}  // namespace
}  // namespace passport::events
