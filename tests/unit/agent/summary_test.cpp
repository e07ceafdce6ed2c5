// The periodic summary line: what happened since the previous line, drops summed with their
// largest reasons first.
#include "agent/summary.hpp"

#include <gtest/gtest.h>

namespace passport::agent {
namespace {

TEST(SummaryLine, CountsSinceThePreviousLine) {
    const CounterSnapshot before = {{"http.requests", 100},
                                    {"export.documents_sent", 90},
                                    {"kernel.ringbuf_full", 5},
                                    {"decode.rejected.short", 1}};
    const CounterSnapshot now = {{"http.requests", 160},
                                 {"export.documents_sent", 140},
                                 {"export.file_documents_written", 3},
                                 {"export.udp_send_failed", 2},
                                 {"xray.document_dropped", 1},
                                 {"kernel.ringbuf_full", 15},
                                 {"kernel.args_map_full", 2},
                                 {"kernel.sampling_rules_deferred", 4},
                                 {"pairing.lost_requests", 3},
                                 {"stream.reorder_overflow", 1},
                                 {"decode.rejected.short", 1}};
    EXPECT_EQ(summary_line(before, now, 60),
              "summary: 60 s: 60 requests, 53 documents sent, 3 failed, 16 dropped "
              "(kernel.ringbuf_full 10, pairing.lost_requests 3, kernel.args_map_full 2)");
}

TEST(SummaryLine, QuietIntervalAndCountersThatAreNotDrops) {
    const CounterSnapshot same = {{"http.requests", 7}, {"kernel.ringbuf_full", 2}};
    EXPECT_EQ(summary_line(same, same, 0.5),
              "summary: 0.5 s: 0 requests, 0 documents sent, 0 failed, 0 dropped");
    EXPECT_TRUE(is_drop_counter("kernel.ringbuf_full"));
    EXPECT_TRUE(is_drop_counter("decode.rejected.bad_kind"));
    EXPECT_FALSE(is_drop_counter("kernel.sampling_rules_deferred"));
    EXPECT_FALSE(is_drop_counter("kernel.ctx_minted"));
    EXPECT_FALSE(is_drop_counter("export.documents_sent"));
}

}  // namespace
}  // namespace passport::agent
