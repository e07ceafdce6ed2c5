#include "userspace/common/text.hpp"

#include <gtest/gtest.h>

namespace passport::text {
namespace {

TEST(Text, LowerChangesOnlyAsciiCapitals) {
    EXPECT_EQ(lower('A'), 'a');
    EXPECT_EQ(lower('Z'), 'z');
    EXPECT_EQ(lower('a'), 'a');
    EXPECT_EQ(lower('@'), '@');        // just below 'A'
    EXPECT_EQ(lower('['), '[');        // just above 'Z'
    EXPECT_EQ(lower('\xC4'), '\xC4');  // non-ASCII bytes are left alone
}

TEST(Text, ToLower) {
    EXPECT_EQ(to_lower("Content-Type"), "content-type");
    EXPECT_EQ(to_lower("X-AMZN-1"), "x-amzn-1");
    EXPECT_EQ(to_lower(""), "");
}

TEST(Text, IequalsIgnoresCaseButNotLength) {
    EXPECT_TRUE(iequals("Transfer-Encoding", "transfer-encoding"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("chunked", "chunke"));
    EXPECT_FALSE(iequals("root", "rooT "));
    EXPECT_FALSE(iequals("@", "`"));  // 0x40 and 0x60 differ by the case bit but are not letters
}

TEST(Text, TrimRemovesSpacesAndTabsOnly) {
    EXPECT_EQ(trim("  a b\t"), "a b");
    EXPECT_EQ(trim("\t \t"), "");
    EXPECT_EQ(trim(""), "");
    EXPECT_EQ(trim("\r\nx\r\n"), "\r\nx\r\n");  // line ends are the parser's business
}

TEST(Text, HexValue) {
    EXPECT_EQ(hex_value('0'), 0);
    EXPECT_EQ(hex_value('9'), 9);
    EXPECT_EQ(hex_value('a'), 10);
    EXPECT_EQ(hex_value('F'), 15);
    EXPECT_EQ(hex_value('g'), -1);
    EXPECT_EQ(hex_value('/'), -1);
}

TEST(Text, PercentDecode) {
    EXPECT_EQ(percent_decode("a%20b%2fc", false), "a b/c");
    EXPECT_EQ(percent_decode("a+b", false), "a+b");
    EXPECT_EQ(percent_decode("a+b", true), "a b");
    // Invalid or cut escapes stay as they are.
    EXPECT_EQ(percent_decode("%zz%4", true), "%zz%4");
    EXPECT_EQ(percent_decode("%41", true), "A");
}

TEST(Text, PercentDecodeStopsAtTheLimit) {
    EXPECT_EQ(percent_decode("abcdef", false, 3), "abc");
    EXPECT_EQ(percent_decode("%41%42%43", false, 2), "AB");
    EXPECT_EQ(percent_decode("ab", false, 0), "");
}

}  // namespace
}  // namespace passport::text
