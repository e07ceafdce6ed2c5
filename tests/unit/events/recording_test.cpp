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
    for (const Event& e : std::vector<Event>{open, data, close, exec, exit}) ss << to_json_line(e) << "\n";
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

TEST(EventsRecording, BadLinesAreErrorsWithLineNumbers) {
    std::stringstream ss("{\"type\":\"exit\",\"tgid\":1,\"ts\":2,\"code\":0,\"comm\":\"x\"}\nnot json\n");
    auto r = read_recording(ss);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().find("line 2"), std::string::npos);
    EXPECT_FALSE(from_json_line(R"({"type":"data","conn":{"tgid":1,"fd":1,"gen":1},"tid":1,"enter":1,"exit":1,"pos":0,"len":1,"dir":"in","role":1,"syscall":0,"bytes":"abab"})").ok())
        << "captured bytes beyond len must be rejected";
    EXPECT_FALSE(from_json_line(R"({"type":"martian"})").ok());
}

}  // namespace
}  // namespace passport::events
