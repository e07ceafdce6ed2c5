#include "userspace/common/counters.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace passport {
namespace {

TEST(Counters, NamesAtTheSameAddressStayApart) {
    // Counters remembers recently used names by address; a buffer reused for another name must
    // still count under its own name.
    Counters c;
    std::string name = "stage.first";
    c.add(name);
    name = "stage.other";  // same buffer (short string), other text
    c.add(name, 2);
    name = "stage.first";
    c.add(name);
    EXPECT_EQ(c.get("stage.first"), 2u);
    EXPECT_EQ(c.get("stage.other"), 2u);
    EXPECT_EQ(c.all().size(), 2u);
}

TEST(Counters, CopiesAndMovesCountOnTheirOwn) {
    Counters a;
    a.add("x.y", 3);
    Counters b = a;
    b.add("x.y");
    EXPECT_EQ(a.get("x.y"), 3u);
    EXPECT_EQ(b.get("x.y"), 4u);
    Counters c = std::move(b);
    c.add("x.y");
    EXPECT_EQ(c.get("x.y"), 5u);
    // A moved-from Counters is empty and usable: the use after the move is the point.
    b.add("x.y");  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(b.get("x.y"), 1u);
    a = c;
    a.add("x.y");
    EXPECT_EQ(a.get("x.y"), 6u);
    EXPECT_EQ(c.get("x.y"), 5u);
}

}  // namespace
}  // namespace passport
