#include "userspace/events/recording.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace passport::events {
namespace {

TEST(EventsRecording, RoundTripsEveryKindWithBinaryPayload) {
    ConnOpen open;
    open.conn = {1, 2, 3};
    open.tid = 4;
    open.ts_ns = 5;
    open.local = {2, 80, {127, 0, 0, 1}};
    open.remote = {10, 5555, {0xfe, 0x80}};
    open.netns = 99;
    open.role = Role::kServer;
    Data data;
    data.conn = {1, 2, 3};
    data.tid = 4;
    data.enter_ns = 6;
    data.exit_ns = 7;
    data.pos = 8;
    data.len = 300;
    data.direction = Direction::kEgress;
    data.role = Role::kServer;
    data.syscall = 5;
    data.bytes = std::string("\x00\xff\r\n\"\\", 6);
    ConnClose close{{1, 2, 3}, 4, 9, 10, 11};
    ProcExec exec{1, 0, 12, "python3", "/usr/bin/python3"};
    ProcExit exit{1, 13, 3, "python3"};

    std::stringstream ss;
    for (const Event& e : std::vector<Event>{open, data, close, exec, exit})
        ss << to_json_line(e) << "\n";
    auto back = read_recording(ss);
    ASSERT_TRUE(back.ok()) << back.error();
    ASSERT_EQ(back->size(), 5u);
    const auto& o = std::get<ConnOpen>((*back)[0]);
    EXPECT_EQ(o.conn, open.conn);
    EXPECT_EQ(o.local, open.local);
    EXPECT_EQ(o.remote, open.remote);
    EXPECT_EQ(o.role, Role::kServer);
    const auto& d = std::get<Data>((*back)[1]);
    EXPECT_EQ(d.bytes, data.bytes);
    EXPECT_EQ(d.len, 300u);
    EXPECT_EQ(d.direction, Direction::kEgress);
    EXPECT_EQ(std::get<ConnClose>((*back)[2]).tx_bytes, 11u);
    EXPECT_EQ(std::get<ProcExec>((*back)[3]).filename, "/usr/bin/python3");
    EXPECT_EQ(std::get<ProcExit>((*back)[4]).exit_code, 3);
}

TEST(EventsRecording, InjectRoundTrips) {
    Inject in;
    in.tgid = 7;
    in.tid = 8;
    in.ts_ns = 9;
    in.local = {2, 50001, {127, 0, 0, 1}};
    in.remote = {10, 9000, {0xfd}};
    in.netns = 4026531833u;
    in.outcome = InjectOutcome::kAppHeader;
    in.app_pos = 4194731;
    in.subsegment_id = 0xfedcba9876543210ULL;
    in.socket_cookie = 77;
    in.ctx_from_thread = true;
    in.trace_id = "1-5759e988-bd862e3fe1be46a994272793";
    in.segment_id = 0x1122334455667788ULL;
    in.sampled = Sampled::kYes;
    in.ctx_conn = {7, 5, 42};
    in.ctx_request_pos = 300;
    in.rule = Rule::kDefault;
    auto back = from_json_line(to_json_line(Event{in}));
    ASSERT_TRUE(back.ok()) << back.error();
    const auto& out = std::get<Inject>(*back);
    EXPECT_EQ(out.tgid, 7u);
    EXPECT_EQ(out.tid, 8u);
    EXPECT_EQ(out.local, in.local);
    EXPECT_EQ(out.remote, in.remote);
    EXPECT_EQ(out.netns, in.netns);
    EXPECT_EQ(out.outcome, InjectOutcome::kAppHeader);
    EXPECT_EQ(out.app_pos, in.app_pos);
    EXPECT_EQ(out.rule, Rule::kDefault);
    EXPECT_EQ(out.subsegment_id, in.subsegment_id);
    EXPECT_EQ(out.socket_cookie, 77u);
    EXPECT_TRUE(out.ctx_from_thread);
    EXPECT_EQ(out.trace_id, in.trace_id);
    EXPECT_EQ(out.segment_id, in.segment_id);
    EXPECT_EQ(out.sampled, Sampled::kYes);
    EXPECT_EQ(out.ctx_conn, in.ctx_conn);
    EXPECT_EQ(out.ctx_request_pos, 300u);
}

TEST(EventsRecording, SdkDatagramRoundTrips) {
    SdkDatagram in;
    in.tgid = 31412;
    in.tid = 31413;
    in.ts_ns = 555;
    in.syscall = 7;
    in.spaced = true;
    auto back = from_json_line(to_json_line(Event{in}));
    ASSERT_TRUE(back.ok()) << back.error();
    const auto& out = std::get<SdkDatagram>(*back);
    EXPECT_EQ(out.tgid, 31412u);
    EXPECT_EQ(out.tid, 31413u);
    EXPECT_EQ(out.ts_ns, 555u);
    EXPECT_EQ(out.syscall, 7);
    EXPECT_TRUE(out.spaced);
}

TEST(EventsRecording, BadLinesAreErrorsWithLineNumbers) {
    std::stringstream ss(
        "{\"type\":\"exit\",\"tgid\":1,\"ts\":2,\"code\":0,\"comm\":\"x\"}\nnot json\n");
    auto r = read_recording(ss);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("line 2"), std::string::npos);
    EXPECT_FALSE(
        from_json_line(
            R"({"type":"data","conn":{"tgid":1,"fd":1,"gen":1},"tid":1,"enter":1,"exit":1,"pos":0,"len":1,"dir":"in","role":1,"syscall":0,"bytes":"abab"})")
            .ok())
        << "captured bytes beyond len must be rejected";
    EXPECT_FALSE(from_json_line(R"({"type":"martian"})").ok());
}

}  // namespace
}  // namespace passport::events
