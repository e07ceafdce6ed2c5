// serialize_documents(): the datagram limit, streaming of subsegments and truncation.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "userspace/xray/document.hpp"
#include "userspace/xray/ids.hpp"

namespace passport::xray {
namespace {

using nlohmann::json;

constexpr const char* kTraceId = "1-6b04d9f3-bd291da1988d76ab96ed1c01";
constexpr const char* kSegmentId = "8ccfde972631dd2b";

Segment segment() {
    Segment s;
    s.name = "frontend";
    s.id = kSegmentId;
    s.trace_id = kTraceId;
    s.start_time = 1795480050.5;
    s.end_time = 1795480051.5;
    return s;
}

Subsegment sub(uint64_t n) {
    Subsegment x;
    x.id = to_hex(n, 16);
    x.name = "db.internal";
    x.namespace_ = "remote";
    x.start_time = 1795480050.6;
    x.end_time = 1795480050.7;
    HttpRequestInfo request;
    request.method = "GET";
    request.url = "http://db.internal/items/" + std::to_string(n);
    x.http = HttpInfo{request, HttpResponseInfo{200, 10}};
    return x;
}

struct Doc {
    json body;
    size_t size;
};

// Checks the framing and the limit of every datagram and parses the bodies.
std::vector<Doc> check(const std::vector<std::string>& datagrams, size_t limit) {
    std::vector<Doc> docs;
    for (const std::string& d : datagrams) {
        EXPECT_LE(d.size(), limit);
        const size_t newline = d.find('\n');
        EXPECT_EQ(d.substr(0, newline), kDatagramHeader);
        const std::string body = d.substr(newline + 1);
        EXPECT_TRUE(body.starts_with("{\"id\":\"")) << body.substr(0, 80);
        EXPECT_TRUE(json::accept(body)) << body.substr(0, 200);
        docs.push_back(Doc{json::parse(body), d.size()});
    }
    return docs;
}

// id -> parent id for every (sub)segment found, embedded or independent.
void collect(const json& node, const std::string& parent, std::map<std::string, std::string>& out) {
    EXPECT_TRUE(out.emplace(node["id"].get<std::string>(), parent).second)
        << "duplicate " << node["id"];
    if (node.contains("subsegments")) {
        for (const json& child : node["subsegments"]) collect(child, node["id"], out);
    }
}

std::map<std::string, std::string> tree(const std::vector<Doc>& docs) {
    std::map<std::string, std::string> out;
    for (const Doc& d : docs) {
        if (d.body.contains("type")) {
            EXPECT_EQ(d.body["type"], "subsegment");
            EXPECT_EQ(d.body["trace_id"], kTraceId);
            collect(d.body, d.body["parent_id"], out);
        } else {
            collect(d.body, "", out);
        }
    }
    return out;
}

TEST(XraySerialize, SmallSegmentIsOneDatagram) {
    Segment s = segment();
    s.subsegments = {sub(1), sub(2)};
    Counters counters;
    const auto datagrams = serialize_documents(s, kMaxDatagramSize, &counters);
    ASSERT_EQ(datagrams.size(), 1u);
    EXPECT_EQ(datagrams[0], std::string(kDatagramHeader) + "\n" + to_json(s));
    EXPECT_TRUE(datagrams[0].starts_with(
        "{\"format\":\"json\",\"version\":1}\n{\"id\":\"8ccfde972631dd2b\""));
    EXPECT_TRUE(counters.all().empty());
}

TEST(XraySerialize, HugeSubsegmentListIsStreamed) {
    Segment s = segment();
    constexpr uint64_t kCount = 5000;
    for (uint64_t i = 1; i <= kCount; ++i) s.subsegments.push_back(sub(i));
    ASSERT_GT(to_json(s).size(), 5 * kMaxDatagramSize);

    Counters counters;
    const auto datagrams = serialize_documents(s, kMaxDatagramSize, &counters);
    const auto docs = check(datagrams, kMaxDatagramSize);
    ASSERT_GE(docs.size(), 2u);
    // The segment comes first and keeps as many subsegments embedded as fit.
    EXPECT_EQ(docs[0].body["id"], kSegmentId);
    EXPECT_FALSE(docs[0].body.contains("type"));
    EXPECT_GT(docs[0].body["subsegments"].size(), 10u);
    EXPECT_GT(docs[0].size, kMaxDatagramSize - 500);  // packed, not one per subsegment

    const auto ids = tree(docs);
    EXPECT_EQ(ids.size(), kCount + 1);
    for (uint64_t i = 1; i <= kCount; ++i) EXPECT_EQ(ids.at(to_hex(i, 16)), kSegmentId);
    EXPECT_EQ(counters.get(kCounterSubsegmentsStreamed), docs.size() - 1);
    EXPECT_EQ(counters.get(kCounterDocumentTruncated), 0u);
    EXPECT_EQ(counters.get(kCounterDocumentDropped), 0u);
}

TEST(XraySerialize, NestedChildrenKeepTheirParent) {
    Segment s = segment();
    Subsegment outer = sub(1);
    for (uint64_t i = 100; i < 3100; ++i) outer.subsegments.push_back(sub(i));
    s.subsegments.push_back(outer);
    s.subsegments.push_back(sub(2));

    const auto docs = check(serialize_documents(s, 20000), 20000);
    const auto ids = tree(docs);
    EXPECT_EQ(ids.size(), 3003u);
    EXPECT_EQ(ids.at(to_hex(1, 16)), kSegmentId);
    EXPECT_EQ(ids.at(to_hex(2, 16)), kSegmentId);
    for (uint64_t i = 100; i < 3100; ++i) EXPECT_EQ(ids.at(to_hex(i, 16)), to_hex(1, 16)) << i;
    // The small sibling after the oversized one still rides in the segment.
    bool embedded = false;
    for (const json& child : docs[0].body["subsegments"]) embedded |= child["id"] == to_hex(2, 16);
    EXPECT_TRUE(embedded);
}

TEST(XraySerialize, HugeMetadataIsDroppedFirst) {
    Segment s = segment();
    Subsegment big = sub(7);
    big.metadata = {{"default", {{"blob", std::string(200000, 'm')}}}};
    big.annotations = {{"tier", "gold"}};
    s.subsegments = {sub(1), big};

    Counters counters;
    const auto docs = check(serialize_documents(s, kMaxDatagramSize, &counters), kMaxDatagramSize);
    ASSERT_EQ(docs.size(), 2u);
    const json& streamed = docs[1].body;
    EXPECT_EQ(streamed["id"], to_hex(7, 16));
    EXPECT_EQ(streamed["parent_id"], kSegmentId);
    EXPECT_FALSE(streamed.contains("metadata"));
    EXPECT_EQ(streamed["annotations"]["tier"], "gold");  // nothing more than needed was cut
    EXPECT_EQ(counters.get(kCounterDocumentTruncated), 1u);
    EXPECT_EQ(tree(docs).size(), 3u);
}

TEST(XraySerialize, HugeStringsInSegmentBlocksAreShortened) {
    Segment s = segment();
    s.annotations = {{"note", std::string(100000, 'a')}, {"n", 1}};
    s.aws = {{"ec2", {{"instance_id", std::string(70000, 'i')}}}, {"list", json::array()}};
    for (int i = 0; i < 10000; ++i) s.aws["list"].push_back(i);

    Counters counters;
    const auto docs = check(serialize_documents(s, kMaxDatagramSize, &counters), kMaxDatagramSize);
    ASSERT_EQ(docs.size(), 1u);
    const json& j = docs[0].body;
    EXPECT_EQ(j["annotations"]["note"], std::string(kMaxStringLength, 'a'));
    EXPECT_EQ(j["annotations"]["n"], 1);
    EXPECT_EQ(j["aws"]["ec2"]["instance_id"].get<std::string>().size(), kMaxStringLength);
    EXPECT_LT(j["aws"]["list"].size(), 10000u);
    EXPECT_EQ(j["aws"]["xray"]["sdk"], "Passport");
    EXPECT_EQ(counters.get(kCounterDocumentTruncated), 1u);
}

TEST(XraySerialize, HugeCauseIsCut) {
    Segment s = segment();
    s.fault = true;
    s.cause = Cause{};
    for (int i = 0; i < 2000; ++i) {
        s.cause->exceptions.push_back(ExceptionInfo{to_hex(static_cast<uint64_t>(i) + 1, 16),
                                                    std::string(240, 'x'), "Error", false});
    }
    Counters counters;
    const auto docs = check(serialize_documents(s, kMaxDatagramSize, &counters), kMaxDatagramSize);
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_EQ(docs[0].body["cause"]["exceptions"].size(), 1u);
    EXPECT_EQ(docs[0].body["fault"], true);
    EXPECT_EQ(counters.get(kCounterDocumentTruncated), 1u);
}

TEST(XraySerialize, ManyLimitsNeverExceeded) {
    Segment s = segment();
    s.metadata = {{"m", std::string(5000, 'z')}};
    for (uint64_t i = 1; i <= 300; ++i) {
        Subsegment x = sub(i);
        if (i % 50 == 0) x.annotations = {{"a", std::string(3000, 'q')}};
        if (i % 70 == 0) x.subsegments = {sub(1000 + i), sub(2000 + i)};
        s.subsegments.push_back(x);
    }
    for (size_t limit : {300u, 600u, 1000u, 2500u, 8000u, 64000u}) {
        Counters counters;
        const auto docs = check(serialize_documents(s, limit, &counters), limit);
        // Nothing is lost silently: every (sub)segment arrives or is counted as dropped.
        EXPECT_EQ(tree(docs).size() + counters.get(kCounterDocumentDropped), 1u + 300u + 8u)
            << limit;
    }
}

TEST(XraySerialize, AbsurdLimitDropsAndCounts) {
    Segment s = segment();
    s.subsegments = {sub(1)};
    Counters counters;
    const auto datagrams = serialize_documents(s, 50, &counters);
    EXPECT_TRUE(datagrams.empty());
    EXPECT_EQ(counters.get(kCounterDocumentDropped), 2u);
    EXPECT_EQ(counters.get(kCounterDocumentTruncated), 2u);
}

TEST(XraySerialize, WorksWithoutCounters) {
    Segment s = segment();
    s.metadata = {{"m", std::string(100000, 'z')}};
    const auto docs = check(serialize_documents(s), kMaxDatagramSize);
    ASSERT_EQ(docs.size(), 1u);
    EXPECT_FALSE(docs[0].body.contains("metadata"));
}

}  // namespace
}  // namespace passport::xray
