// Which call links are known and which are inferred (userspace/correlate/link_rule.hpp).
#include "userspace/correlate/link_rule.hpp"

#include <gtest/gtest.h>

namespace passport::correlate {
namespace {

TEST(LinkRule, ForwardedHeaderIsAlwaysKnown) {
    EXPECT_FALSE(link_is_inferred(LinkRule::kForwardedHeader, true, 8));
}

TEST(LinkRule, ThreadRulesAreInferredOnThreadsServingMany) {
    for (LinkRule r :
         {LinkRule::kKernelThreadContext, LinkRule::kLastIoOnThread, LinkRule::kLatestOnThread}) {
        EXPECT_FALSE(link_is_inferred(r, false, 1)) << link_rule_name(r);
        EXPECT_TRUE(link_is_inferred(r, false, 2)) << link_rule_name(r);
        EXPECT_TRUE(link_is_inferred(r, true, 1)) << link_rule_name(r) << ": an event loop";
    }
}

TEST(LinkRule, ThreadsServingManyAreRememberedAndBounded) {
    ThreadsServingMany t(2);
    t.saw(1, 1);
    EXPECT_FALSE(t.contains(1));
    t.saw(1, 2);
    t.saw(2, 3);
    EXPECT_TRUE(t.contains(1) && t.contains(2));
    t.saw(3, 2);  // past the bound: starts over
    EXPECT_TRUE(t.contains(3));
    EXPECT_LE(t.size(), 2u);
}

TEST(LinkRule, CountsByKind) {
    Counters c;
    count_link(c, LinkRule::kLastIoOnThread, true);
    count_link(c, LinkRule::kForwardedHeader, false);
    count_link(c, LinkRule::kNone, false);
    EXPECT_EQ(c.get("correlate.links_inferred"), 1u);
    EXPECT_EQ(c.get("correlate.links_exact"), 1u);
}

}  // namespace
}  // namespace passport::correlate
