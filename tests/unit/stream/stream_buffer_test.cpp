#include "userspace/stream/stream_buffer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace passport::stream {
namespace {

ChunkTiming at(uint64_t enter, uint64_t exit, uint32_t tid = 1) { return {enter, exit, tid}; }

TEST(StreamBuffer, ContiguousChunksFormTheHead) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "GET / ", 6, at(10, 11));
    buf.add(6, "HTTP/1.1", 8, at(20, 21));
    EXPECT_EQ(buf.head(), "GET / HTTP/1.1");
    EXPECT_EQ(buf.position(), 0u);
    buf.consume(4);
    EXPECT_EQ(buf.head(), "/ HTTP/1.1");
    EXPECT_EQ(buf.position(), 4u);
    EXPECT_EQ(buf.buffered_bytes(), 10u);
    EXPECT_EQ(buf.gap_ahead(), 0u);
}

TEST(StreamBuffer, UnsampledPositionsArePassedOverAtAMessageStart) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "GET /a ", 7, at(10, 11));
    buf.consume(7);
    buf.unsampled_from(7);  // a gated request from 7 on; the next one shipped starts at 40
    buf.add(40, "GET /b ", 7, at(30, 31));
    EXPECT_EQ(buf.head(), "GET /b ");
    EXPECT_EQ(buf.position(), 40u);
    EXPECT_FALSE(buf.has_hole());
    EXPECT_EQ(counters.get("stream.unsampled_bytes"), 33u);
    EXPECT_EQ(counters.get("stream.gap_bytes"), 0u);
    EXPECT_EQ(counters.get("stream.lost_bytes"), 0u);
}

TEST(StreamBuffer, UnsampledPositionsWaitForTheMessageBeforeThem) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.unsampled_from(10);
    buf.add(20, "next", 4, at(30, 31));      // after the span
    buf.add(0, "earlier...", 10, at(5, 6));  // the message before it, reported late
    EXPECT_EQ(buf.head(), "earlier...");
    buf.consume(4);
    EXPECT_EQ(buf.gap_ahead(), 10u);  // to a message still being read, a known gap
    buf.consume(6);  // the message before the span is done: the span is passed over
    EXPECT_EQ(buf.head(), "next");
    EXPECT_EQ(buf.position(), 20u);
}

TEST(StreamBuffer, UnsampledNoticeAfterTheBytesThatFollowItClosesAtThem) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "GET /a ", 7, at(1, 2));
    buf.consume(7);
    buf.add(30, "GET /c ", 7, at(5, 6));  // shipped before the notice reached the buffer
    EXPECT_TRUE(buf.has_hole());
    buf.unsampled_from(7);
    EXPECT_FALSE(buf.has_hole());
    EXPECT_EQ(buf.head(), "GET /c ");
    EXPECT_EQ(counters.get("stream.unsampled_bytes"), 23u);
}

TEST(StreamBuffer, UnsampledNoticeAfterItsBytesIsIgnored) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "abcdef", 6, at(1, 2));
    buf.unsampled_from(3);
    EXPECT_EQ(counters.get("stream.unsampled_late"), 1u);
    buf.add(6, "gh", 2, at(3, 4));
    EXPECT_EQ(buf.head(), "abcdefgh");
}

TEST(StreamBuffer, OutOfOrderChunksJoinWhenTheHoleFills) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(5, "world", 5, at(20, 21));
    EXPECT_EQ(buf.head(), "");
    EXPECT_EQ(buf.gap_ahead(), 0u);  // a hole, not a known gap: it may still arrive
    EXPECT_EQ(buf.buffered_bytes(), 5u);
    buf.add(0, "hello", 5, at(10, 11));
    EXPECT_EQ(buf.head(), "helloworld");
    EXPECT_EQ(counters.get("stream.duplicate_bytes"), 0u);
}

TEST(StreamBuffer, OverlapKeepsTheFirstCopyAndCountsTheRest) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "abcdef", 6, at(1, 2));
    buf.add(3, "XYZghi", 6, at(3, 4));  // positions 3..5 already present
    EXPECT_EQ(buf.head(), "abcdefghi");
    EXPECT_EQ(counters.get("stream.duplicate_bytes"), 3u);
    buf.consume(9);
    buf.add(2, "cd", 2, at(5, 6));  // already consumed
    EXPECT_EQ(buf.head(), "");
    EXPECT_EQ(counters.get("stream.duplicate_bytes"), 5u);
}

TEST(StreamBuffer, OverlapBetweenWaitingPiecesIsTrimmed) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(10, "KLMNO", 5, at(1, 2));
    buf.add(13, "nopqr", 5, at(3, 4));  // 13,14 overlap the first piece
    buf.add(8, "ijklm", 5, at(5, 6));   // 10..12 overlap
    buf.add(0, "abcdefgh", 8, at(7, 8));
    EXPECT_EQ(buf.head(), "abcdefghijKLMNOpqr");
    EXPECT_EQ(counters.get("stream.duplicate_bytes"), 5u);
}

TEST(StreamBuffer, UncapturedTailIsAKnownGapThatSkipCrosses) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "abc", 10, at(1, 2));  // moved 10, copied 3
    buf.add(10, "next", 4, at(3, 4));
    EXPECT_EQ(buf.head(), "abc");
    EXPECT_EQ(buf.gap_ahead(), 7u);
    EXPECT_EQ(counters.get("stream.gap_bytes"), 7u);
    buf.consume(3);
    EXPECT_TRUE(buf.at_gap());
    EXPECT_EQ(buf.skip(5), 5u);  // part of the gap
    EXPECT_EQ(buf.position(), 8u);
    EXPECT_EQ(buf.gap_ahead(), 2u);
    EXPECT_EQ(buf.skip(4), 4u);  // rest of the gap, then 2 captured bytes
    EXPECT_EQ(buf.head(), "xt");
    EXPECT_EQ(buf.position(), 12u);
}

TEST(StreamBuffer, SkipStopsWhereNothingWasDelivered) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "abcd", 4, at(1, 2));
    EXPECT_EQ(buf.skip(100), 4u);
    EXPECT_EQ(buf.position(), 4u);
    buf.add(4, "ef", 2, at(3, 4));
    EXPECT_EQ(buf.head(), "ef");
}

TEST(StreamBuffer, HolesDeclaredLostBecomeGaps) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "ab", 2, at(1, 2));
    buf.add(6, "gh", 2, at(3, 4));
    buf.add(10, "kl", 2, at(5, 6));
    buf.consume(2);
    EXPECT_FALSE(buf.at_gap());
    buf.declare_holes_lost();
    EXPECT_EQ(counters.get("stream.lost_bytes"), 6u);  // 2..5 and 8..9
    EXPECT_EQ(buf.gap_ahead(), 4u);
    EXPECT_EQ(buf.skip(4), 4u);
    EXPECT_EQ(buf.head(), "gh");
    buf.consume(2);
    EXPECT_EQ(buf.gap_ahead(), 2u);
}

TEST(StreamBuffer, TimingCoversCapturedAndUncapturedPositions) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "abc", 3, at(100, 110, 7));
    buf.add(3, "de", 5000, at(200, 210, 8));  // 3..5002, only 2 captured
    ASSERT_TRUE(buf.timing_at(2).has_value());
    EXPECT_EQ(*buf.timing_at(2), at(100, 110, 7));
    EXPECT_EQ(*buf.timing_at(3), at(200, 210, 8));
    EXPECT_EQ(*buf.timing_at(5002), at(200, 210, 8));
    EXPECT_FALSE(buf.timing_at(5003).has_value());
    buf.consume(3);
    EXPECT_FALSE(buf.timing_at(2).has_value());  // forgotten once consumed
    EXPECT_TRUE(buf.timing_at(3).has_value());
}

TEST(StreamBuffer, OverlongHeadIsDroppedAndFlagged) {
    Counters counters;
    StreamLimits limits;
    limits.max_head_bytes = 100;
    StreamBuffer buf(counters, limits);
    const uint64_t before = buf.discontinuities();
    buf.add(0, std::string(60, 'a'), 60, at(1, 2));
    EXPECT_EQ(buf.discontinuities(), before);
    buf.add(60, std::string(60, 'b'), 60, at(3, 4));
    EXPECT_NE(buf.discontinuities(), before);
    EXPECT_EQ(buf.buffered_bytes(), 0u);
    EXPECT_EQ(counters.get("stream.overflow_bytes"), 120u);
    EXPECT_EQ(buf.position(), 120u);
    buf.add(120, "ok", 2, at(5, 6));
    EXPECT_EQ(buf.head(), "ok");
}

TEST(StreamBuffer, TooMuchWaitingBehindAHoleGivesTheHoleUp) {
    Counters counters;
    StreamLimits limits;
    limits.max_ahead_bytes = 50;
    StreamBuffer buf(counters, limits);
    buf.add(10, std::string(30, 'x'), 30, at(1, 2));
    EXPECT_EQ(buf.gap_ahead(), 0u);
    buf.add(40, std::string(30, 'y'), 30, at(3, 4));
    EXPECT_EQ(counters.get("stream.reorder_overflow"), 1u);
    EXPECT_EQ(counters.get("stream.lost_bytes"), 10u);
    EXPECT_EQ(buf.gap_ahead(), 10u);
    EXPECT_EQ(buf.skip(10), 10u);
    EXPECT_EQ(buf.head(), std::string(30, 'x') + std::string(30, 'y'));
}

TEST(StreamBuffer, ClearForgetsEverythingAndIgnoresOlderPositions) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "abc", 3, at(1, 2));
    buf.add(10, "xyz", 3, at(3, 4));
    buf.clear();
    EXPECT_EQ(buf.buffered_bytes(), 0u);
    EXPECT_EQ(buf.position(), 13u);
    buf.add(3, "defg", 4, at(5, 6));
    EXPECT_EQ(buf.head(), "");
    EXPECT_EQ(buf.buffered_bytes(), 0u);
}

TEST(StreamBuffer, ZeroLengthChunksAreIgnored) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(0, "", 0, at(1, 2));
    EXPECT_EQ(buf.delivered_end(), 0u);
    EXPECT_FALSE(buf.timing_at(0).has_value());
}

TEST(StreamBuffer, ManySmallHolesAreGivenUpWithoutDroppingData) {
    Counters counters;
    StreamLimits limits;
    limits.max_ahead_chunks = 8;
    StreamBuffer buf(counters, limits);
    // Every other one-byte chunk missing: more waiting pieces than allowed.
    for (uint64_t p = 1; p < 20; p += 2) buf.add(p, "x", 1, at(p, p));
    EXPECT_GE(counters.get("stream.reorder_overflow"), 1u);
    EXPECT_EQ(counters.get("stream.overflow_bytes"), 0u);
    uint64_t seen = 0;
    while (buf.skip(1) == 1) seen += 1;
    EXPECT_EQ(seen, 20u);
}

TEST(StreamBuffer, WrappingPositionsAreRejected) {
    Counters counters;
    StreamBuffer buf(counters);
    buf.add(~uint64_t{0} - 2, "abcdef", 6, at(1, 2));
    EXPECT_EQ(counters.get("stream.bad_chunks"), 1u);
    EXPECT_EQ(buf.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace passport::stream
