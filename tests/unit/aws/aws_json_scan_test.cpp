// The bounded JSON scanner that reads AWS JSON-protocol body prefixes.
#include <string>

#include <gtest/gtest.h>

#include "userspace/aws/json_scan.hpp"

namespace passport::aws {
namespace {

TEST(AwsJsonScan, TopLevelScalarsObjectsAndArrays) {
    const auto m = scan_json_object(
        R"( {"TableName":"orders","Limit":25,"ConsistentRead":true,"X":null,)"
        R"("RequestItems":{"a":[{"PutRequest":{}}],"b\u0031":[]},"Entries":[{"Id":"1"},{"Id":"2"},3]} )");
    ASSERT_EQ(m.size(), 6u);
    EXPECT_EQ(m[0].name, "TableName");
    EXPECT_EQ(m[0].kind, JsonKind::kString);
    EXPECT_EQ(m[0].text, "orders");
    EXPECT_TRUE(m[0].complete);
    EXPECT_EQ(m[1].raw, "25");
    EXPECT_EQ(m[2].kind, JsonKind::kBool);
    EXPECT_EQ(m[3].kind, JsonKind::kNull);
    EXPECT_EQ(m[4].kind, JsonKind::kObject);
    EXPECT_EQ(m[4].keys, (std::vector<std::string>{"a", "b1"}));
    EXPECT_EQ(m[5].kind, JsonKind::kArray);
    EXPECT_EQ(m[5].count, 3u);
    EXPECT_TRUE(m[5].complete);
}

TEST(AwsJsonScan, CutBodyKeepsWhatEndedAndMarksTheRest) {
    const std::string body = R"({"QueueUrl":"http://q/1","MessageBody":"hello wor)";
    const auto m = scan_json_object(body);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_TRUE(m[0].complete);
    EXPECT_EQ(m[0].text, "http://q/1");
    EXPECT_FALSE(m[1].complete);

    // A map cut inside its second value still names its first keys.
    const auto cut = scan_json_object(R"({"RequestItems":{"t1":[{"P":1}],"t2":[{"P":)");
    ASSERT_EQ(cut.size(), 1u);
    EXPECT_FALSE(cut[0].complete);
    EXPECT_EQ(cut[0].keys, (std::vector<std::string>{"t1", "t2"}));

    // A number at the very end may be cut short.
    const auto num = scan_json_object(R"({"Limit":12)");
    ASSERT_EQ(num.size(), 1u);
    EXPECT_FALSE(num[0].complete);
}

TEST(AwsJsonScan, EveryPrefixOfABodyIsSafe) {
    const std::string body =
        R"({"TableName":"t\"x","Key":{"pk":{"S":"\u00e9\ud83d"}},"L":[1,2.5e3,-1],"B":false})";
    for (size_t n = 0; n <= body.size(); ++n) {
        const auto m = scan_json_object(std::string_view(body).substr(0, n));
        for (const auto& member : m) {
            if (member.complete) {
                EXPECT_FALSE(member.raw.empty());
            }
        }
    }
    const auto whole = scan_json_object(body);
    ASSERT_EQ(whole.size(), 4u);
    EXPECT_EQ(whole[0].text, "t\"x");
    EXPECT_TRUE(whole[3].complete);
}

TEST(AwsJsonScan, NotAnObjectOrMalformedGivesLittle) {
    EXPECT_TRUE(scan_json_object("").empty());
    EXPECT_TRUE(scan_json_object("[1,2]").empty());
    EXPECT_TRUE(scan_json_object("Action=SendMessage").empty());
    EXPECT_TRUE(scan_json_object(std::string("\0\xff{", 3)).empty());
    const auto bad = scan_json_object(R"({"A":"ok","B":tru,"C":1})");
    ASSERT_EQ(bad.size(), 2u);
    EXPECT_TRUE(bad[0].complete);
    EXPECT_FALSE(bad[1].complete);
}

TEST(AwsJsonScan, DeepNestingAndHugeInputAreBounded) {
    std::string deep = R"({"A":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
    const auto m = scan_json_object(deep);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_FALSE(m[0].complete);

    std::string many = "{";
    for (int i = 0; i < 1000; ++i) many += "\"k" + std::to_string(i) + "\":1,";
    many += "\"end\":1}";
    EXPECT_EQ(scan_json_object(many).size(), kMaxJsonMembers);

    std::string long_string = R"({"A":")" + std::string(100000, 'x') + "\"}";
    const auto l = scan_json_object(long_string);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].text.size(), kMaxJsonString);
}

// A \u escape decodes to up to 3 bytes: one that does not fit whole is left out, so the text
// stays within kMaxJsonString and never ends in part of a character.
TEST(AwsJsonScan, EscapedCharacterAtTheCapIsLeftOutWhole) {
    const std::string body =
        R"({"s":")" + std::string(kMaxJsonString - 1, 'a') + R"(\u8dd3\u00e9b"})";
    const auto m = scan_json_object(body);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].text, std::string(kMaxJsonString - 1, 'a') + "b");
}

}  // namespace
}  // namespace passport::aws
