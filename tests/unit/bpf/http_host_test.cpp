// The request recognition and head budget of bpf/lib/http.bpf.h (shared by the syscall and TLS
// probes), run on the host through tests/bpf_host.
#include <gtest/gtest.h>

#include <string>

#include "http_host.h"
#include "passport/abi.h"

namespace {

constexpr uint32_t kChunk = PP_MAX_CHUNK;
constexpr uint32_t kBudget = PP_HEAD_BUDGET;

bool starts_request(const std::string& s) {
    return pp_host_starts_with_method(reinterpret_cast<const uint8_t*>(s.data())) != 0;
}

TEST(HttpHost, RecognisesEveryMethodTheProbesCopyWhole) {
    for (const char* m : {"GET / HTTP/1.1", "POST /", "PUT /", "HEAD /", "DELETE /", "PATCH /",
                          "OPTIONS *", "CONNECT a:443", "TRACE /"})
        EXPECT_TRUE(starts_request(m)) << m;
}

TEST(HttpHost, RejectsWhatIsNotARequest) {
    for (const char* m : {"HTTP/1.1 200 OK", "get / HTTP/1.1", "GETX", "PUTS", "\x16\x03\x01\x02",
                          "PRI * HTTP/2.0", "    "})
        EXPECT_FALSE(starts_request(m)) << m;
}

TEST(HttpHost, ARequestOpensABudgetTheNextCallsUseUp) {
    pp_host_budget b{};
    // A request head larger than one chunk, read in 3 calls.
    EXPECT_EQ(pp_host_head_budget_take(&b, 1, 1, 10000, kChunk), 10000u);
    EXPECT_EQ(b.rx, kBudget - 10000u);
    EXPECT_EQ(b.tx, 0u) << "per direction";
    EXPECT_EQ(pp_host_head_budget_take(&b, 1, 0, 20000, kChunk), 20000u);
    EXPECT_EQ(b.rx, kBudget - 30000u);
    // Within the budget left, then past it: the first piece only, and nothing left.
    EXPECT_EQ(pp_host_head_budget_take(&b, 1, 0, 2000, 2000), 2000u);
    EXPECT_EQ(b.rx, kBudget - 32000u);
    EXPECT_EQ(pp_host_head_budget_take(&b, 1, 0, 10000, kChunk), kChunk);
    EXPECT_EQ(b.rx, 0u);
}

TEST(HttpHost, ACallIsCopiedAtMostUpToTheBudget) {
    pp_host_budget b{};
    EXPECT_EQ(pp_host_head_budget_take(&b, 0, 1, 100000, kChunk), kBudget);
    EXPECT_EQ(b.tx, 0u);
    // No request, no budget: the first piece, which may be shorter than a chunk.
    EXPECT_EQ(pp_host_head_budget_take(&b, 0, 0, 100, 100), 100u);
    EXPECT_EQ(pp_host_head_budget_take(&b, 0, 0, 100000, kChunk), kChunk);
}

TEST(HttpHost, ANewRequestRestartsTheBudget) {
    pp_host_budget b{};
    pp_host_head_budget_take(&b, 1, 1, kBudget - 5, kChunk);
    EXPECT_EQ(b.rx, 5u);
    EXPECT_EQ(pp_host_head_budget_take(&b, 1, 1, 100, 100), 100u);
    EXPECT_EQ(b.rx, kBudget - 100u);
}

}  // namespace
