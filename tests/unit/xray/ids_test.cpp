#include "userspace/xray/ids.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <set>

#include "userspace/xray/trace_header.hpp"

namespace passport::xray {
namespace {

// Returns the queued values in order, then `fill` forever.
RandomSource sequence(std::deque<uint64_t> values, uint64_t fill = 0x1111111111111111) {
    auto queue = std::make_shared<std::deque<uint64_t>>(std::move(values));
    return [queue, fill] {
        if (queue->empty()) return fill;
        const uint64_t v = queue->front();
        queue->pop_front();
        return v;
    };
}

TEST(XrayIds, SegmentIdIsSixteenLowercaseHex) {
    IdGenerator ids(sequence({0x0123456789ABCDEFull, 0xFull}));
    EXPECT_EQ(ids.new_segment_id(), "0123456789abcdef");
    EXPECT_EQ(ids.new_segment_id(), "000000000000000f");
}

TEST(XrayIds, SegmentIdSkipsZero) {
    IdGenerator ids(sequence({0, 0, 5}));
    EXPECT_EQ(ids.new_segment_id(), "0000000000000005");
}

TEST(XrayIds, BrokenSourceStillGivesNonZeroId) {
    IdGenerator ids([] { return uint64_t{0}; });
    EXPECT_EQ(ids.new_segment_id(), "0000000000000001");
    EXPECT_TRUE(is_valid_trace_id(ids.new_trace_id(0x6b04d9f3)));
}

TEST(XrayIds, TraceIdLayout) {
    // 64 bits from the first draw, the low 32 bits of the second.
    IdGenerator ids(sequence({0xbd291da1988d76abull, 0xFFFFFFFF96ed1c01ull}));
    EXPECT_EQ(ids.new_trace_id(0x6b04d9f3), "1-6b04d9f3-bd291da1988d76ab96ed1c01");
}

TEST(XrayIds, TraceIdEpochIsNow) {
    IdGenerator ids;
    const auto seconds = [] {
        return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
    };
    const uint64_t before = seconds();
    const std::string id = ids.new_trace_id();
    const uint64_t after = seconds();
    ASSERT_TRUE(is_valid_trace_id(id)) << id;
    const uint64_t epoch = std::stoull(id.substr(2, 8), nullptr, 16);
    EXPECT_GE(epoch, before);
    EXPECT_LE(epoch, after);
}

TEST(XrayIds, SystemSourceGivesDistinctValidIds) {
    IdGenerator ids;
    std::set<std::string> segment_ids;
    std::set<std::string> trace_ids;
    for (int i = 0; i < 2000; ++i) {  // crosses several refills of the 512-byte buffer
        const std::string s = ids.new_segment_id();
        EXPECT_TRUE(is_valid_segment_id(s)) << s;
        segment_ids.insert(s);
        trace_ids.insert(ids.new_trace_id(1));
    }
    EXPECT_EQ(segment_ids.size(), 2000u);
    EXPECT_EQ(trace_ids.size(), 2000u);
}

TEST(XrayIds, ToHexPadsAndMasks) {
    EXPECT_EQ(to_hex(0xAB, 4), "00ab");
    EXPECT_EQ(to_hex(0x123456789ull, 8), "23456789");
}

}  // namespace
}  // namespace passport::xray
