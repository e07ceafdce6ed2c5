#include "userspace/sample/centralized_reservoir.hpp"

#include <gtest/gtest.h>

namespace passport::sample {
namespace {

constexpr int64_t kNow = 1795480050;
constexpr double kNever = 0.999;  // a random draw above any fixed rate used here

TEST(SamplingCentralizedReservoir, OneBorrowPerSecondBeforeQuotaThenFixedRate) {
    CentralizedReservoir r(/*capacity=*/10, /*fixed_rate=*/0.1);
    EXPECT_TRUE(r.sample(kNow, kNever));      // borrow
    EXPECT_FALSE(r.sample(kNow, kNever));     // one borrow per second only
    EXPECT_TRUE(r.sample(kNow, 0.05));        // fixed rate
    EXPECT_TRUE(r.sample(kNow + 1, kNever));  // new second: borrow again
    EXPECT_FALSE(r.sample(kNow + 1, kNever));

    const RuleStatistics s = r.statistics();
    EXPECT_EQ(s.requests, 5u);
    EXPECT_EQ(s.borrows, 2u);
    EXPECT_EQ(s.sampled, 1u);  // borrows are not counted as sampled
}

TEST(SamplingCentralizedReservoir, NoBorrowWithZeroCapacity) {
    CentralizedReservoir r(0, 0);
    EXPECT_FALSE(r.sample(kNow, kNever));
    EXPECT_EQ(r.statistics().borrows, 0u);
}

TEST(SamplingCentralizedReservoir, QuotaPerSecond) {
    CentralizedReservoir r(10, 0);
    r.apply_target(SamplingTarget{0, 3, kNow + 60, 10}, kNow);
    for (int64_t second : {kNow, kNow + 1}) {
        for (int i = 0; i < 3; ++i) EXPECT_TRUE(r.sample(second, kNever)) << second << " " << i;
        EXPECT_FALSE(r.sample(second, kNever)) << second;
    }
    EXPECT_EQ(r.statistics().sampled, 6u);
    EXPECT_EQ(r.statistics().borrows, 0u);
    EXPECT_EQ(r.statistics().requests, 8u);
}

TEST(SamplingCentralizedReservoir, QuotaValidThroughItsTtlThenBorrowAgain) {
    CentralizedReservoir r(10, 0);
    r.apply_target(SamplingTarget{0, 2, kNow + 5, std::nullopt}, kNow);
    EXPECT_TRUE(r.sample(kNow + 5, kNever));
    EXPECT_TRUE(r.sample(kNow + 5, kNever));
    EXPECT_FALSE(r.sample(kNow + 5, kNever));
    // Past the TTL: back to one borrow per second.
    EXPECT_TRUE(r.sample(kNow + 6, kNever));
    EXPECT_FALSE(r.sample(kNow + 6, kNever));
    EXPECT_EQ(r.statistics().borrows, 1u);
}

TEST(SamplingCentralizedReservoir, TargetUpdatesRate) {
    CentralizedReservoir r(0, 0);
    EXPECT_FALSE(r.sample(kNow, 0.5));
    r.apply_target(SamplingTarget{0.6, std::nullopt, std::nullopt, std::nullopt}, kNow);
    EXPECT_DOUBLE_EQ(r.fixed_rate(), 0.6);
    EXPECT_TRUE(r.sample(kNow, 0.5));
}

TEST(SamplingCentralizedReservoir, ReportsOnlyWithRequestsAfterInterval) {
    CentralizedReservoir r(1, 0);
    EXPECT_FALSE(r.needs_report(kNow));  // no requests yet
    r.apply_target(SamplingTarget{0, 1, kNow + 60, 10}, kNow);
    EXPECT_FALSE(r.needs_report(kNow + 20));  // still no requests
    r.sample(kNow + 1, kNever);
    r.sample(kNow + 1, kNever);
    EXPECT_FALSE(r.needs_report(kNow + 9));
    EXPECT_TRUE(r.needs_report(kNow + 10));

    const RuleStatistics s = r.take_statistics();
    EXPECT_EQ(s.requests, 2u);
    EXPECT_EQ(s.sampled, 1u);
    EXPECT_EQ(r.statistics().requests, 0u);  // reset
    EXPECT_FALSE(r.needs_report(kNow + 10));
}

}  // namespace
}  // namespace passport::sample
