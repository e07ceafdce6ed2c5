#include "userspace/stream/memory_budget.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/event_builder.hpp"
#include "userspace/stream/connection_tracker.hpp"

namespace passport::stream {
namespace {

using events::Role;
using pairing::HttpExchange;
using pairing::Outcome;
using passport::testing::EventBuilder;

TEST(MemoryBudget, ListsHoldersInTheOrderTheyStartedHolding) {
    MemoryBudget budget(100);
    BudgetNode a, b, c;
    budget.update(a, 40);
    budget.update(b, 40);
    budget.update(c, 10);
    EXPECT_EQ(budget.oldest(), &a);
    EXPECT_EQ(budget.charged(), 90u);
    EXPECT_FALSE(budget.over());
    budget.update(a, 70);  // growing keeps its place
    EXPECT_TRUE(budget.over());
    EXPECT_EQ(budget.oldest(), &a);
    budget.update(a, 0);  // emptied: leaves the list
    EXPECT_EQ(budget.oldest(), &b);
    budget.update(a, 5);  // holds again: now the newest
    budget.update(b, 0);
    EXPECT_EQ(budget.oldest(), &c);
    EXPECT_EQ(budget.charged(), 15u);
    EXPECT_EQ(budget.holders(), 2u);
    EXPECT_EQ(budget.peak(), 120u);
    budget.update(c, 0);
    budget.update(a, 0);
    EXPECT_EQ(budget.oldest(), nullptr);
}

// A request head that never ends: `size` bytes of headers, no empty line.
std::string partial_head(size_t size) {
    std::string s = "GET /slow HTTP/1.1\r\nHost: h\r\n";
    while (s.size() < size) s += "X-Pad: " + std::string(64, 'p') + "\r\n";
    return s;
}

events::ConnKey key_for(int i) { return {4242, 100 + i, 1000}; }

TEST(TrackerBudget, OldestPartialHeadsAreShedFirstAndNewTrafficStillPairs) {
    TrackerConfig config;
    config.memory_budget_bytes = size_t{200} * 1024;
    Counters counters;
    std::vector<HttpExchange> out;
    ConnectionTracker tracker(
        counters, [&](HttpExchange&& x) { out.push_back(std::move(x)); }, config);

    // Twenty slow clients, each holding 28 KiB of an unfinished head, oldest first.
    std::vector<EventBuilder> slow;
    for (int i = 0; i < 20; ++i) {
        slow.emplace_back(Role::kServer, key_for(i));
        tracker.on_event(slow.back().open(10 + i));
        const std::string head = partial_head(size_t{28} * 1024);
        for (size_t off = 0; off < head.size(); off += 4096) {
            tracker.on_event(slow.back().read(head.substr(off, 4096), 100 + i, 101 + i));
        }
        EXPECT_LE(tracker.budget().charged(), config.memory_budget_bytes);
    }
    EXPECT_GT(counters.get("stream.budget_dropped_heads"), 0u);
    EXPECT_GE(counters.get("stream.budget_dropped_bytes"), 28u * 1024 * 10);
    // The newest slow clients keep their heads; the oldest lost theirs.
    EXPECT_EQ(tracker.find(key_for(0))->buffered_bytes(), 0u);
    EXPECT_GT(tracker.find(key_for(19))->buffered_bytes(), 20u * 1024);
    EXPECT_LE(counters.get("stream.budget_peak_bytes"),
              0u + config.memory_budget_bytes + size_t{64} * 1024);

    // A normal client arriving now is traced.
    EventBuilder normal(Role::kServer, key_for(99));
    tracker.on_event(normal.open(500));
    tracker.on_event(normal.read("GET /fine HTTP/1.1\r\nHost: h\r\n\r\n", 600, 601));
    tracker.on_event(normal.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 700, 701));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].request.target, "/fine");
    EXPECT_EQ(out[0].response->status, 200);

    // A shed connection resynchronises: its next whole request pairs.
    EventBuilder& first = slow[0];
    tracker.on_event(first.read("\r\n", 800, 801));  // the end of the head it lost
    tracker.on_event(first.read("GET /again HTTP/1.1\r\nHost: h\r\n\r\n", 900, 901));
    tracker.on_event(first.write("HTTP/1.1 204 No Content\r\n\r\n", 950, 951));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].request.target, "/again");
    EXPECT_EQ(out[1].response->status, 204);
}

TEST(TrackerBudget, HeadTrickledOneByteAtATimeIsChargedForItsTimings) {
    TrackerConfig config;
    config.memory_budget_bytes = size_t{64} * 1024;
    Counters counters;
    ConnectionTracker tracker(
        counters, [](HttpExchange&&) {}, config);
    EventBuilder b(Role::kServer);
    tracker.on_event(b.open(1));
    const std::string head = partial_head(size_t{8} * 1024);
    for (size_t i = 0; i < head.size(); ++i)
        tracker.on_event(b.read(head.substr(i, 1), 10 + i, 11 + i));
    // 8 KiB of bytes, but one timing record per byte: far more than 8 KiB of heap.
    EXPECT_GT(counters.get("stream.budget_dropped_heads"), 0u);
    EXPECT_LE(tracker.budget().charged(), config.memory_budget_bytes);
}

TEST(TrackerBudget, ZeroMeansUnlimited) {
    TrackerConfig config;
    config.memory_budget_bytes = 0;
    Counters counters;
    ConnectionTracker tracker(
        counters, [](HttpExchange&&) {}, config);
    for (int i = 0; i < 10; ++i) {
        EventBuilder b(Role::kServer, key_for(i));
        tracker.on_event(b.open(1));
        tracker.on_event(b.read(partial_head(4000), 10, 11));
    }
    EXPECT_EQ(counters.get("stream.budget_dropped_heads"), 0u);
    EXPECT_GE(tracker.budget().charged(), 40000u);
}

}  // namespace
}  // namespace passport::stream

namespace passport::stream {
namespace {

TEST(TrackerBudget, ParsedRequestsWaitingAreChargedAndShedWithoutShiftingResponses) {
    TrackerConfig config;
    config.memory_budget_bytes = size_t{256} * 1024;
    Counters counters;
    std::vector<HttpExchange> out;
    ConnectionTracker tracker(
        counters, [&](HttpExchange&& x) { out.push_back(std::move(x)); }, config);

    // One connection pipelines 40 requests with 4 KiB heads; nothing answers them yet.
    EventBuilder piped(Role::kServer, key_for(0));
    tracker.on_event(piped.open(1));
    const std::string pad = "X-Pad: " + std::string(4000, 'p') + "\r\n";
    for (int i = 0; i < 40; ++i) {
        tracker.on_event(piped.read("GET /p" + std::to_string(i) + " HTTP/1.1\r\n" + pad + "\r\n",
                                    10 + i, 11 + i));
    }
    const size_t held = tracker.budget().charged();
    EXPECT_GT(held, 40u * 4000);
    EXPECT_EQ(tracker.find(key_for(0))->pending_requests(), 40u);

    // Newer slow heads push the total over: the waiting requests are the oldest holders.
    for (int i = 1; i <= 8; ++i) {
        EventBuilder slow(Role::kServer, key_for(i));
        tracker.on_event(slow.open(100 + i));
        const std::string head = partial_head(size_t{16} * 1024);
        for (size_t off = 0; off < head.size(); off += 4096) {
            tracker.on_event(slow.read(head.substr(off, 4096), 200 + i, 201 + i));
        }
    }
    EXPECT_LE(tracker.budget().charged(), config.memory_budget_bytes);
    EXPECT_EQ(tracker.find(key_for(0))->pending_requests(), 0u);
    ASSERT_EQ(out.size(), 40u);
    EXPECT_EQ(out[0].outcome, Outcome::kMemoryBudget);
    EXPECT_EQ(out[39].request.target, "/p39");
    EXPECT_EQ(counters.get("pairing.memory_budget"), 40u);

    // Their 40 responses come: all discarded; the next request pairs with its own response.
    for (int i = 0; i < 40; ++i) {
        tracker.on_event(
            piped.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 300 + i, 301 + i));
    }
    EXPECT_EQ(out.size(), 40u);
    EXPECT_EQ(counters.get("pairing.discarded_responses"), 40u);
    tracker.on_event(piped.read("GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 400, 401));
    tracker.on_event(piped.write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 402, 403));
    ASSERT_EQ(out.size(), 41u);
    EXPECT_EQ(out[40].request.target, "/after");
    EXPECT_EQ(out[40].response->status, 201);
}

}  // namespace
}  // namespace passport::stream
