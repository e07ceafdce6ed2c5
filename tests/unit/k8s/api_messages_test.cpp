// The API server's LIST and WATCH answers
// (https://kubernetes.io/docs/reference/using-api/api-concepts/): PodList pages, watch lines split
// anywhere by the transport, bookmarks, 410 Gone, and input that is malformed or too large (a clear
// error, never unbounded memory).
#include "userspace/k8s/api_messages.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/k8s/fake_api.hpp"

namespace passport::k8s {
namespace {

using passport::testing::make_pod;

constexpr const char* kUid = "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708";

std::string event_line(const std::string& type, const nlohmann::json& obj) {
    return nlohmann::json{{"type", type}, {"object", obj}}.dump() + "\n";
}

TEST(PodList, ItemsResourceVersionAndContinue) {
    nlohmann::json list = {
        {"kind", "PodList"},
        {"apiVersion", "v1"},
        {"metadata", {{"resourceVersion", "4711"}, {"continue", "eyJ2Ijo"}}},
        {"items",
         {make_pod(kUid, "web-7d4b9c8f6-x2k4p", "shop", "node-a", {{"app", "web"}}),
          {{"metadata", {{"name", "no-uid"}}}}}}};
    auto parsed = parse_pod_list(list.dump());
    ASSERT_TRUE(parsed) << parsed.error();
    EXPECT_EQ(parsed->resource_version, "4711");
    EXPECT_EQ(parsed->continue_token, "eyJ2Ijo");
    ASSERT_EQ(parsed->pods.size(), 1u);
    EXPECT_EQ(parsed->rejected_items, 1u);
    EXPECT_EQ(parsed->pods[0].uid, kUid);
    EXPECT_EQ(parsed->pods[0].namespace_name, "shop");
    EXPECT_EQ(parsed->pods[0].node_name, "node-a");
    EXPECT_EQ(parsed->pods[0].labels.at("app"), "web");
}

TEST(PodList, RefusesWhatIsNotAPodList) {
    EXPECT_FALSE(parse_pod_list("not json"));
    EXPECT_FALSE(parse_pod_list("[]"));
    EXPECT_FALSE(parse_pod_list(R"({"kind":"Status","code":403})"));
    EXPECT_FALSE(parse_pod_list(R"({"kind":"PodList","metadata":{},"items":[]})"))
        << "no resourceVersion: a watch could not start from it";
    auto empty =
        parse_pod_list(R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":null})");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->pods.empty());
}

TEST(WatchStream, EventsSplitAtEveryByteBoundary) {
    const std::string stream =
        event_line("ADDED", make_pod(kUid, "a", "shop", "n")) +
        event_line(
            "BOOKMARK",
            {{"kind", "Pod"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", "12"}}}}) +
        event_line("MODIFIED", make_pod(kUid, "a", "shop", "n", {{"tier", "web"}})) +
        event_line("DELETED", make_pod(kUid, "a", "shop", "n"));
    for (size_t cut = 0; cut <= stream.size(); cut++) {
        WatchStreamParser parser;
        std::vector<WatchEvent> events;
        ASSERT_TRUE(parser.feed(std::string_view(stream).substr(0, cut), events));
        ASSERT_TRUE(parser.feed(std::string_view(stream).substr(cut), events));
        ASSERT_EQ(events.size(), 4u) << "cut at " << cut;
        EXPECT_EQ(events[0].type, WatchEventType::kAdded);
        EXPECT_EQ(events[1].type, WatchEventType::kBookmark);
        EXPECT_EQ(events[1].resource_version, "12");
        EXPECT_EQ(events[2].type, WatchEventType::kModified);
        EXPECT_EQ(events[2].pod.labels.at("tier"), "web");
        EXPECT_EQ(events[3].type, WatchEventType::kDeleted);
        EXPECT_EQ(parser.buffered(), 0u);
    }
}

TEST(WatchStream, ByteByByteAndBlankLines) {
    const std::string stream =
        "\r\n" + event_line("ADDED", make_pod(kUid, "a", "shop", "n")) + "\n";
    WatchStreamParser parser;
    std::vector<WatchEvent> events;
    for (char c : stream) ASSERT_TRUE(parser.feed(std::string_view(&c, 1), events));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].pod.name, "a");
}

TEST(WatchStream, GoneIsAnErrorEventWithCode410) {
    const nlohmann::json status = {{"kind", "Status"},
                                   {"apiVersion", "v1"},
                                   {"status", "Failure"},
                                   {"reason", "Expired"},
                                   {"message", "too old resource version: 5 (90)"},
                                   {"code", 410}};
    WatchStreamParser parser;
    std::vector<WatchEvent> events;
    ASSERT_TRUE(parser.feed(event_line("ERROR", status), events));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, WatchEventType::kError);
    EXPECT_EQ(events[0].status_code, 410);
    EXPECT_NE(events[0].message.find("too old"), std::string::npos);
}

TEST(WatchStream, MalformedLinesAreClearErrors) {
    for (const std::string& bad : {std::string("{not json}\n"),
                                   std::string(R"({"type":"ADDED"})"
                                               "\n"),
                                   std::string(R"({"type":"EXPLODED","object":{}})"
                                               "\n"),
                                   std::string(R"({"type":"ADDED","object":{"metadata":{"uid":7}}})"
                                               "\n"),
                                   std::string(R"({"type":"BOOKMARK","object":{"metadata":{}}})"
                                               "\n"),
                                   std::string("[1,2]\n")}) {
        WatchStreamParser parser;
        std::vector<WatchEvent> events;
        auto r = parser.feed(bad, events);
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_FALSE(r.error().empty());
        }
        EXPECT_TRUE(events.empty());
    }
}

TEST(WatchStream, HugeLineIsRefusedWithoutBuffering) {
    WatchStreamParser parser(1024);
    std::vector<WatchEvent> events;
    const std::string piece(600, 'x');
    ASSERT_TRUE(parser.feed(piece, events));
    auto r = parser.feed(piece, events);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("longer than 1024"), std::string::npos) << r.error();
    EXPECT_LE(parser.buffered(), 1024u);
}

TEST(WatchStream, LabelOfTheWrongTypeIsRefused) {
    auto pod = make_pod(kUid, "a", "shop", "n");
    pod["metadata"]["labels"]["app"] = 3;
    auto r = parse_watch_event(event_line("ADDED", pod));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("metadata.labels.app"), std::string::npos) << r.error();
}

}  // namespace
}  // namespace passport::k8s
