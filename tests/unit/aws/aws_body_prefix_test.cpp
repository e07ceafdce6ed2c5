// The HTTP/1 parser's bounded body prefix, kept only for requests the predicate picks (AWS calls)
// and for the responses the session marks: whole, chunked, split across syscalls, over the limit,
// and across capture gaps.
#include <string>

#include <gtest/gtest.h>

#include "tests/unit/protocol/http1_test_support.hpp"
#include "userspace/aws/aws_call.hpp"
#include "userspace/pairing/http_pairer.hpp"

namespace passport::protocol::http1 {
namespace {

using testing::ParserHarness;

BodyInterest keep_if_marked(const Request& head) {
    if (find_header(head.headers, "X-Keep") == nullptr) return {};
    return {true, KeepBody::kYes};
}

ParserLimits limits(size_t n) {
    ParserLimits l;
    l.body_prefix_bytes = n;
    l.body_interest = &keep_if_marked;
    return l;
}

TEST(AwsBodyPrefix, KeptOnlyWhenThePredicateSaysSo) {
    ParserHarness h(MessageKind::kRequest, false, limits(16));
    h.feed(
        "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        "POST /b HTTP/1.1\r\nX-Keep: 1\r\nContent-Length: 5\r\n\r\nworld");
    ASSERT_EQ(h.frames.size(), 2u);
    EXPECT_FALSE(h.frames[0].request.body_prefix_kept);
    EXPECT_EQ(h.frames[0].request.body_prefix, "");
    EXPECT_TRUE(h.frames[1].request.body_prefix_kept);
    EXPECT_EQ(h.frames[1].request.body_prefix, "world");
    EXPECT_EQ(h.frames[1].request.body_bytes, 5u);
}

TEST(AwsBodyPrefix, OffByDefault) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("POST /b HTTP/1.1\r\nX-Keep: 1\r\nContent-Length: 5\r\n\r\nworld");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_FALSE(h.frames[0].request.body_prefix_kept);
    EXPECT_EQ(h.frames[0].request.body_prefix, "");
}

TEST(AwsBodyPrefix, BoundedAndIdenticalAtEverySplit) {
    const std::string body(100, 'x');
    const std::string msg = "PUT /k HTTP/1.1\r\nX-Keep: y\r\nContent-Length: 100\r\n\r\n" + body +
                            "GET /next HTTP/1.1\r\n\r\n";
    for (size_t i = 1; i < msg.size(); ++i) {
        ParserHarness h(MessageKind::kRequest, false, limits(40));
        h.feed_split(msg, {i});
        ASSERT_EQ(h.frames.size(), 2u) << i;
        EXPECT_EQ(h.frames[0].request.body_prefix, body.substr(0, 40)) << i;
        EXPECT_EQ(h.frames[0].request.body_bytes, 100u);
        EXPECT_EQ(h.frames[1].request.target, "/next");
        EXPECT_FALSE(h.frames[1].request.body_prefix_kept);
    }
}

TEST(AwsBodyPrefix, ChunkedBodiesAreDechunked) {
    const std::string msg =
        "POST / HTTP/1.1\r\nX-Keep: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\n{\"Tab\r\n6;ext=1\r\nleName\r\n3\r\n\":1\r\n1\r\n}\r\n0\r\nTrailer: x\r\n\r\n";
    for (size_t i = 1; i < msg.size(); ++i) {
        for (size_t j = i + 1; j < msg.size(); j += 7) {
            ParserHarness h(MessageKind::kRequest, false, limits(1024));
            h.feed_split(msg, {i, j});
            ASSERT_EQ(h.frames.size(), 1u);
            EXPECT_EQ(h.frames[0].request.body_prefix, "{\"TableName\":1}") << i << "," << j;
        }
    }
}

TEST(AwsBodyPrefix, StopsAtACaptureGap) {
    ParserHarness h(MessageKind::kRequest, false, limits(1024));
    // 10 body bytes arrive, then a syscall of 20 of which only 4 were copied.
    h.feed("POST / HTTP/1.1\r\nX-Keep: 1\r\nContent-Length: 40\r\n\r\n0123456789");
    h.feed("abcd", 20);
    h.feed("0123456789");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.body_prefix, "0123456789abcd");
    EXPECT_EQ(h.frames[0].request.body_bytes, 40u);
}

TEST(AwsBodyPrefix, ResponsesKeepOneWhenTold) {
    ParserHarness h(MessageKind::kResponse, false, limits(8));
    h.parser.set_keep_response_body(KeepBody::kYes);
    h.feed("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"Count\":12}");
    h.parser.set_keep_response_body(KeepBody::kNo);
    h.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    h.parser.set_keep_response_body(KeepBody::kIfError);
    h.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nobjct");
    h.feed("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n<Code>No");
    h.feed("!");
    h.parser.set_keep_response_body(KeepBody::kYes);
    h.feed("HTTP/1.1 200 OK\r\n\r\nuntil close");
    ASSERT_TRUE(h.finish());
    ASSERT_EQ(h.frames.size(), 5u);
    EXPECT_EQ(h.frames[0].response.body_prefix, "{\"Count\"");
    EXPECT_EQ(h.frames[1].response.body_prefix, "");
    EXPECT_EQ(h.frames[2].response.body_prefix, "")
        << "a success answer to a REST call is user data";
    EXPECT_EQ(h.frames[3].response.body_prefix, "<Code>No");
    EXPECT_EQ(h.frames[4].response.body_prefix, "until cl");
}

TEST(AwsBodyPrefix, AwsInterestFollowsTheProtocol) {
    Request plain;
    plain.headers = {{"Host", "example.com"}, {"Content-Type", "application/json"}};
    EXPECT_FALSE(aws::wants_body(plain));
    EXPECT_FALSE(aws::body_interest(plain).request);
    EXPECT_EQ(aws::body_interest(plain).response, KeepBody::kNo);

    const std::string sig =
        "AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/sqs/aws4_request, SignedHeaders=host, "
        "Signature=00";
    Request json_call;
    json_call.headers = {{"Host", "127.0.0.1:9000"},
                         {"X-Amz-Target", "AmazonSQS.SendMessage"},
                         {"Authorization", sig}};
    EXPECT_TRUE(aws::wants_body(json_call));
    EXPECT_TRUE(aws::body_interest(json_call).request);
    EXPECT_EQ(aws::body_interest(json_call).response, KeepBody::kYes);

    Request query_call;
    query_call.headers = {{"Host", "sns.us-east-1.amazonaws.com"},
                          {"Content-Type", "application/x-www-form-urlencoded"}};
    EXPECT_TRUE(aws::body_interest(query_call).request);

    // S3 objects and Lambda payloads are the user's: only an error answer is read.
    Request s3_put;
    s3_put.method = "PUT";
    s3_put.target = "/bucket/key";
    s3_put.headers = {{"Host", "s3.us-east-1.amazonaws.com"}, {"Content-Type", "application/json"}};
    EXPECT_TRUE(aws::wants_body(s3_put));
    EXPECT_FALSE(aws::body_interest(s3_put).request);
    EXPECT_EQ(aws::body_interest(s3_put).response, KeepBody::kIfError);
}

}  // namespace
}  // namespace passport::protocol::http1

// The HTTP session wires it up: a client connection's AWS call keeps its bodies, pipelined calls
// each get the answer they asked for, and a server connection keeps nothing.
namespace passport::pairing {
namespace {

struct Session {
    explicit Session(events::Role role) : in(counters), out(counters) {
        sink.http = [this](HttpExchange&& x) { done.push_back(std::move(x)); };
        ctx.conn = {7, 3, 1};
        ctx.role = role;
        pairer =
            std::make_unique<HttpPairer>(protocol::SessionParams{counters, sink, {}, role, {}});
    }
    void send(events::Direction dir, const std::string& s) {
        stream::StreamBuffer& b = dir == events::Direction::kIngress ? in : out;
        uint64_t& pos = dir == events::Direction::kIngress ? in_pos : out_pos;
        b.add(pos, s, s.size(), {pos + 1, pos + 2, 9});
        pos += s.size();
        pairer->on_data(dir, b, ctx);
    }
    Counters counters;
    ExchangeSink sink;
    protocol::ConnContext ctx;
    stream::StreamBuffer in;
    stream::StreamBuffer out;
    uint64_t in_pos = 0;
    uint64_t out_pos = 0;
    std::unique_ptr<HttpPairer> pairer;
    std::vector<HttpExchange> done;
};

const std::string kSig =
    "Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=00\r\n";

TEST(AwsBodyPrefixSession, ClientAwsCallsKeepBodiesServersDoNot) {
    const std::string ddb =
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:4566\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n" +
        kSig + "Content-Length: 19\r\n\r\n{\"TableName\":\"abc\"}";
    const std::string s3 =
        "PUT /b/k HTTP/1.1\r\nHost: b.s3.amazonaws.com\r\nContent-Length: 6\r\n\r\nsecret";
    const std::string plain = "POST /x HTTP/1.1\r\nHost: example\r\nContent-Length: 4\r\n\r\nbody";
    const std::string r1 = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"Item\"}";
    const std::string r2 = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstord";
    const std::string r3 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    Session client(events::Role::kClient);
    client.send(events::Direction::kEgress, ddb + s3 + plain);  // pipelined
    client.send(events::Direction::kIngress, r1 + r2 + r3);
    ASSERT_EQ(client.done.size(), 3u);
    EXPECT_EQ(client.done[0].request.body_prefix, "{\"TableName\":\"abc\"}");
    EXPECT_EQ(client.done[0].response->body_prefix, "{\"Item\"}");
    EXPECT_EQ(client.done[1].request.body_prefix, "") << "an S3 object is the user's";
    EXPECT_EQ(client.done[1].response->body_prefix, "");
    EXPECT_EQ(client.done[2].request.body_prefix, "");
    EXPECT_EQ(client.done[2].response->body_prefix, "");

    Session server(events::Role::kServer);
    server.send(events::Direction::kIngress, ddb);
    server.send(events::Direction::kEgress, r1);
    ASSERT_EQ(server.done.size(), 1u);
    EXPECT_FALSE(server.done[0].request.body_prefix_kept);
    EXPECT_EQ(server.done[0].request.body_prefix, "");
    EXPECT_EQ(server.done[0].response->body_prefix, "");
}

}  // namespace
}  // namespace passport::pairing
