#include "userspace/sample/wildcard.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace passport::sample {
namespace {

TEST(SamplingWildcard, EmptyPatternMatchesOnlyEmptyText) {
    EXPECT_TRUE(wildcard_match("", ""));
    EXPECT_FALSE(wildcard_match("", "a"));
}

TEST(SamplingWildcard, Star) {
    EXPECT_TRUE(wildcard_match("*", ""));
    EXPECT_TRUE(wildcard_match("*", "anything/at/all"));
    EXPECT_TRUE(wildcard_match("**", "x"));
    EXPECT_TRUE(wildcard_match("/api/*", "/api/items"));
    EXPECT_TRUE(wildcard_match("/api/*", "/api/"));
    EXPECT_FALSE(wildcard_match("/api/*", "/ap"));
    EXPECT_TRUE(wildcard_match("*a", "bbba"));
    EXPECT_FALSE(wildcard_match("*a", "bbbab"));
    EXPECT_TRUE(wildcard_match("a*b*c", "aXXbYYc"));
    EXPECT_FALSE(wildcard_match("a*b*c", "aXXbYY"));
    EXPECT_TRUE(wildcard_match("a*b*c", "abcbc"));  // needs backtracking
}

TEST(SamplingWildcard, QuestionMarkIsExactlyOne) {
    EXPECT_FALSE(wildcard_match("?", ""));
    EXPECT_TRUE(wildcard_match("?", "a"));
    EXPECT_FALSE(wildcard_match("?", "ab"));
    EXPECT_TRUE(wildcard_match("a?c", "abc"));
    EXPECT_FALSE(wildcard_match("a?c", "ac"));
    EXPECT_FALSE(wildcard_match("*?", ""));
    EXPECT_TRUE(wildcard_match("*?", "x"));
    EXPECT_TRUE(wildcard_match("GE?", "get"));
}

TEST(SamplingWildcard, CaseInsensitive) {
    EXPECT_TRUE(wildcard_match("/API/*", "/api/Items"));
    EXPECT_TRUE(wildcard_match("*.example.com", "www.EXAMPLE.com"));
    EXPECT_TRUE(wildcard_match("post", "POST"));
    EXPECT_FALSE(wildcard_match("post", "PUT"));
}

TEST(SamplingWildcard, PathologicalInputIsFast) {
    const std::string text(20000, 'a');
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(wildcard_match("*a*a*a*a*a*a*a*a*b", text));
    EXPECT_TRUE(wildcard_match("*a*a*a*a*a*a*a*a*", text));
    // A backtracking recursive matcher takes astronomically long here; generous bound for
    // sanitizer builds.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(SamplingWildcard, EmptyAttributeMatchesAnyPattern) {
    EXPECT_TRUE(attribute_matches("/checkout", ""));
    EXPECT_TRUE(attribute_matches("", ""));
    EXPECT_FALSE(attribute_matches("", "x"));
    EXPECT_TRUE(attribute_matches("/check*", "/checkout"));
    EXPECT_FALSE(attribute_matches("/check*", "/cart"));
}

}  // namespace
}  // namespace passport::sample
