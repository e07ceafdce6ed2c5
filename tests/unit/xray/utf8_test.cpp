#include "userspace/xray/utf8.hpp"

#include <gtest/gtest.h>

namespace passport::xray {
namespace {

TEST(XrayUtf8, DecodesValidSequences) {
    const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
    CodePoint cp = decode_utf8(text, 0);
    EXPECT_TRUE(cp.valid);
    EXPECT_EQ(cp.value, U'a');
    cp = decode_utf8(text, 1);
    EXPECT_EQ(cp.value, 0xE9u);
    EXPECT_EQ(cp.length, 2u);
    cp = decode_utf8(text, 3);
    EXPECT_EQ(cp.value, 0x4E2Du);
    EXPECT_EQ(cp.length, 3u);
    cp = decode_utf8(text, 6);
    EXPECT_EQ(cp.value, 0x1F600u);
    EXPECT_EQ(cp.length, 4u);
}

TEST(XrayUtf8, RejectsInvalidSequencesOneByteAtATime) {
    for (const std::string& bad : {std::string("\x80"), std::string("\xC0\xAF"),  // stray, overlong
                                   std::string("\xED\xA0\x80"),                   // surrogate
                                   std::string("\xF4\x90\x80\x80"),               // > U+10FFFF
                                   std::string("\xE4\xB8"),                       // truncated
                                   std::string("\xFF")}) {
        const CodePoint cp = decode_utf8(bad, 0);
        EXPECT_FALSE(cp.valid) << testing::PrintToString(bad);
        EXPECT_EQ(cp.length, 1u);
    }
}

TEST(XrayUtf8, TruncatesOnCodePointBoundaries) {
    const std::string text = "\xC3\xA9\xC3\xA9\xC3\xA9";  // ééé
    EXPECT_EQ(truncate_utf8(text, 2), "\xC3\xA9\xC3\xA9");
    EXPECT_EQ(truncate_utf8(text, 10), text);
    EXPECT_EQ(truncate_utf8(text, 0), "");
    EXPECT_EQ(count_utf8_chars(text), 3u);
    EXPECT_EQ(count_utf8_chars("ab\xFF"), 3u);
}

TEST(XrayUtf8, EncodesAllLengths) {
    std::string out;
    for (char32_t cp : {U'a', char32_t{0xE9}, char32_t{0x4E2D}, char32_t{0x1F600}})
        append_utf8(out, cp);
    EXPECT_EQ(out, "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
}

}  // namespace
}  // namespace passport::xray
