#include "userspace/protocol/http1/http1_parser.hpp"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/protocol/http1_test_support.hpp"

namespace passport::protocol::http1 {
namespace {

using testing::describe;
using testing::describe_all;
using testing::ParserHarness;

const std::string kGet =
    "GET /orders/42?full=1 HTTP/1.1\r\n"
    "Host: shop.example\r\n"
    "User-Agent: curl/8.0\r\n"
    "X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\n"
    "Accept: */*\r\n"
    "\r\n";

TEST(Http1Parser, ParsesARequest) {
    ParserHarness h(MessageKind::kRequest);
    h.feed(kGet);
    ASSERT_EQ(h.frames.size(), 1u);
    const Request& r = h.frames[0].request;
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/orders/42?full=1");
    EXPECT_EQ(r.version, "HTTP/1.1");
    ASSERT_EQ(r.headers.size(), 4u);
    EXPECT_EQ(r.headers[0].first, "Host");
    EXPECT_EQ(r.headers[0].second, "shop.example");
    ASSERT_NE(find_header(r.headers, "x-amzn-trace-id"), nullptr);
    EXPECT_EQ(*find_header(r.headers, "USER-AGENT"), "curl/8.0");
    EXPECT_EQ(find_header(r.headers, "Content-Length"), nullptr);
    EXPECT_EQ(r.body_bytes, 0u);
    EXPECT_EQ(h.frames[0].start_pos, 0u);
    EXPECT_EQ(h.frames[0].end_pos, kGet.size());
    EXPECT_EQ(h.buf.head(), "");
    EXPECT_EQ(h.counters.get("http.requests"), 1u);
}

TEST(Http1Parser, FrameTimingNamesTheSyscallsOfFirstAndLastByte) {
    ParserHarness h(MessageKind::kRequest);
    h.feed(kGet.substr(0, 10));
    h.feed(kGet.substr(10, 20));
    h.feed(kGet.substr(30));
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].timing.first, (stream::ChunkTiming{100, 150, 1001}));
    EXPECT_EQ(h.frames[0].timing.last, (stream::ChunkTiming{300, 350, 1003}));
}

TEST(Http1Parser, HeadersSplitAtEveryOffsetParseIdentically) {
    ParserHarness whole(MessageKind::kRequest);
    whole.feed(kGet);
    ASSERT_EQ(whole.frames.size(), 1u);
    const std::string expected = describe(whole.frames[0]);
    for (size_t i = 1; i < kGet.size(); ++i) {
        ParserHarness h(MessageKind::kRequest);
        h.feed(kGet.substr(0, i));
        EXPECT_TRUE(h.frames.empty()) << "split at " << i;
        h.feed(kGet.substr(i));
        ASSERT_EQ(h.frames.size(), 1u) << "split at " << i;
        EXPECT_EQ(describe(h.frames[0]), expected) << "split at " << i;
        EXPECT_EQ(h.invalid, 0) << "split at " << i;
    }
}

TEST(Http1Parser, ThreeWaySplitsOfAPostParseIdentically) {
    const std::string post = "POST /x HTTP/1.1\r\nContent-Length: 5\r\nHost: a\r\n\r\nhello";
    ParserHarness whole(MessageKind::kRequest);
    whole.feed(post);
    ASSERT_EQ(whole.frames.size(), 1u);
    EXPECT_EQ(whole.frames[0].request.body_bytes, 5u);
    for (size_t i = 1; i < post.size(); ++i) {
        for (size_t j = i + 1; j < post.size(); ++j) {
            ParserHarness h(MessageKind::kRequest);
            h.feed_split(post, {i, j});
            ASSERT_EQ(describe_all(h.frames), describe_all(whole.frames)) << i << "," << j;
        }
    }
}

TEST(Http1Parser, ByteByByteRequestParses) {
    ParserHarness h(MessageKind::kRequest);
    for (char c : kGet) h.feed(std::string(1, c));
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.headers.size(), 4u);
    EXPECT_EQ(h.frames[0].timing.last.tid, 1000u + kGet.size());
}

TEST(Http1Parser, ContentLengthBodyIsSkippedAndCounted) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("PUT /a HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello");
    EXPECT_TRUE(h.frames.empty());
    EXPECT_TRUE(h.parser.in_message());
    EXPECT_EQ(h.parser.current().request.method, "PUT");
    h.feed(" world");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.body_bytes, 11u);
    EXPECT_EQ(h.frames[0].timing.last.tid, 1002u);
    EXPECT_EQ(h.buf.buffered_bytes(), 0u);  // bodies are not kept
}

TEST(Http1Parser, ChunkedBodyWithExtensionsAndTrailers) {
    const std::string resp =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        "5;name=value\r\nhello\r\n"
        "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
        "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
        "HTTP/1.1 204 No Content\r\n\r\n";
    ParserHarness whole(MessageKind::kResponse);
    whole.feed(resp);
    ASSERT_EQ(whole.frames.size(), 2u);
    EXPECT_TRUE(whole.frames[0].chunked);
    EXPECT_EQ(whole.frames[0].response.body_bytes, 31u);
    EXPECT_EQ(whole.frames[0].response.content_length, std::nullopt);
    EXPECT_EQ(whole.frames[1].response.status, 204);
    EXPECT_EQ(whole.counters.get("http.trailers"), 1u);
    for (size_t i = 1; i < resp.size(); ++i) {
        ParserHarness h(MessageKind::kResponse);
        h.feed_split(resp, {i});
        EXPECT_EQ(describe_all(h.frames), describe_all(whole.frames)) << "split at " << i;
    }
}

TEST(Http1Parser, ChunkedWithoutTrailersAndBareLf) {
    ParserHarness h(MessageKind::kResponse);
    h.feed("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].response.body_bytes, 3u);
    EXPECT_EQ(h.frames[0].end_pos, h.pos);
}

TEST(Http1Parser, TransferEncodingWinsOverContentLength) {
    ParserHarness h(MessageKind::kRequest);
    h.feed(
        "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\nhi\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 2u);
    EXPECT_EQ(h.frames[0].request.body_bytes, 2u);
    EXPECT_EQ(h.frames[1].request.target, "/next");
}

TEST(Http1Parser, CloseDelimitedResponseEndsAtFinish) {
    ParserHarness h(MessageKind::kResponse);
    h.feed("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nsome ");
    h.feed("body bytes");
    EXPECT_TRUE(h.frames.empty());
    EXPECT_TRUE(h.parser.in_message());
    ASSERT_TRUE(h.finish());
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_TRUE(h.frames[0].close_delimited);
    EXPECT_EQ(h.frames[0].response.body_bytes, 15u);
    EXPECT_EQ(h.frames[0].timing.last.tid, 1002u);
    EXPECT_FALSE(h.finish());  // nothing more to finish
}

TEST(Http1Parser, ResponseWithoutLengthIsCloseDelimitedEvenInHttp11) {
    ParserHarness h(MessageKind::kResponse);
    h.feed("HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    EXPECT_TRUE(h.frames.empty());  // the second "response" is body bytes
    ASSERT_TRUE(h.finish());
    EXPECT_EQ(h.frames[0].response.body_bytes, 19u);
}

TEST(Http1Parser, HeadResponseHasNoBodyDespiteContentLength) {
    ParserHarness h(MessageKind::kResponse);
    h.parser.set_request_method("HEAD");
    h.feed("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].response.content_length, 1234u);
    EXPECT_EQ(h.frames[0].response.body_bytes, 0u);
    h.parser.set_request_method("GET");
    h.feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    ASSERT_EQ(h.frames.size(), 2u);
    EXPECT_EQ(h.frames[1].response.body_bytes, 2u);
}

TEST(Http1Parser, NoBodyFor204And304) {
    ParserHarness h(MessageKind::kResponse);
    h.feed(
        "HTTP/1.1 204 No Content\r\n\r\n"
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: \"x\"\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 3u);
    EXPECT_EQ(h.frames[0].response.status, 204);
    EXPECT_EQ(h.frames[1].response.status, 304);
    EXPECT_EQ(h.frames[1].response.body_bytes, 0u);
    EXPECT_EQ(h.frames[2].response.status, 200);
    EXPECT_EQ(h.invalid, 0);
}

TEST(Http1Parser, InterimResponsesAreSkipped) {
    ParserHarness h(MessageKind::kResponse);
    h.feed(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].response.status, 201);
    EXPECT_EQ(h.skipped, 2);
    EXPECT_EQ(h.counters.get("http.interim_responses"), 2u);
}

TEST(Http1Parser, UpgradeEndsHttpOnTheStream) {
    ParserHarness h(MessageKind::kResponse);
    h.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].response.status, 101);
    EXPECT_TRUE(h.parser.upgraded());
    h.feed("\x82\x7e garbage that is not HTTP");
    EXPECT_EQ(h.invalid, 0);
    EXPECT_EQ(h.buf.buffered_bytes(), 0u);
}

TEST(Http1Parser, ConnectTunnelIsNotParsed) {
    ParserHarness h(MessageKind::kResponse);
    h.parser.set_request_method("CONNECT");
    h.feed("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01\x02\x00");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_TRUE(h.parser.upgraded());
    EXPECT_EQ(h.invalid, 0);
}

TEST(Http1Parser, PipelinedRequestsInOneChunk) {
    ParserHarness h(MessageKind::kRequest);
    h.feed(
        "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        "POST /2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        "GET /3 HTTP/1.1\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 3u);
    EXPECT_EQ(h.frames[0].request.target, "/1");
    EXPECT_EQ(h.frames[1].request.target, "/2");
    EXPECT_EQ(h.frames[1].request.body_bytes, 3u);
    EXPECT_EQ(h.frames[2].request.target, "/3");
    EXPECT_EQ(h.frames[1].start_pos, h.frames[0].end_pos);
    EXPECT_EQ(h.frames[2].start_pos, h.frames[1].end_pos);
}

TEST(Http1Parser, LeadingEmptyLinesAreTolerated) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.version, "HTTP/1.0");
    EXPECT_EQ(h.frames[0].start_pos, 4u);
    EXPECT_EQ(h.invalid, 0);
}

TEST(Http1Parser, ObsoleteLineFoldingJoinsTheValue) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("GET / HTTP/1.1\r\nX-Long: first\r\n  second\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(*find_header(h.frames[0].request.headers, "x-long"), "first second");
}

TEST(Http1Parser, GarbageIsCountedAndTheNextRequestFound) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("this is not http\r\nnor this\r\nGET /ok HTTP/1.1\r\n\r\n");
    EXPECT_EQ(h.invalid, 1);
    EXPECT_EQ(h.counters.get("http.invalid_request"), 1u);
    EXPECT_EQ(h.counters.get("http.bad_start_line"), 1u);
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.target, "/ok");
}

TEST(Http1Parser, BinaryInputYieldsNoFrames) {
    ParserHarness h(MessageKind::kRequest);
    std::string bin;
    for (int i = 0; i < 3000; ++i) bin.push_back(static_cast<char>((i * 131 + 7) % 256));
    h.feed(bin.substr(0, 1500));
    h.feed(bin.substr(1500));
    EXPECT_TRUE(h.frames.empty());
    EXPECT_EQ(h.invalid, 1);  // one lost region, not one per byte
    EXPECT_LT(h.buf.buffered_bytes(), 64u);
    EXPECT_FALSE(h.runaway);
}

TEST(Http1Parser, OversizedHeaderBlockIsInvalid) {
    ParserHarness h(MessageKind::kRequest);
    std::string req = "GET / HTTP/1.1\r\n";
    while (req.size() < PP_HEAD_BUDGET + 1000) req += "X-Filler: " + std::string(90, 'x') + "\r\n";
    req += "\r\n";
    h.feed(req);
    h.feed("GET /after HTTP/1.1\r\n\r\n");
    EXPECT_EQ(h.counters.get("http.headers_too_large"), 1u);
    EXPECT_EQ(h.counters.get("http.invalid_request"), 1u);
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.target, "/after");
}

TEST(Http1Parser, TooManyHeadersIsInvalid) {
    ParserHarness h(MessageKind::kRequest);
    std::string req = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 101; ++i) req += "H" + std::to_string(i) + ": v\r\n";
    req += "\r\n";
    h.feed(req);
    EXPECT_TRUE(h.frames.empty());
    EXPECT_EQ(h.counters.get("http.too_many_headers"), 1u);
    ParserHarness ok(MessageKind::kRequest);
    std::string hundred = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 100; ++i) hundred += "H" + std::to_string(i) + ": v\r\n";
    ok.feed(hundred + "\r\n");
    EXPECT_EQ(ok.frames.size(), 1u);
}

TEST(Http1Parser, ControlBytesInValuesAreAcceptedAsServersDo) {
    ParserHarness h(MessageKind::kRequest);
    h.feed(std::string("GET / HTTP/1.1\r\nUser-Agent: agent\x01\x7f\x1b[31m\x0b\xff\r\n\r\n"));
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(*find_header(h.frames[0].request.headers, "user-agent"),
              "agent\x01\x7f\x1b[31m\x0b\xff");
    EXPECT_EQ(h.counters.get("http.bad_header"), 0u);
    ParserHarness nul(MessageKind::kRequest);
    nul.feed(std::string("GET / HTTP/1.1\r\nX: a\0z\r\n\r\n", 26));
    EXPECT_TRUE(nul.frames.empty()) << "NUL marks binary data, not a header";
    EXPECT_EQ(nul.counters.get("http.bad_header"), 1u);
}

TEST(Http1Parser, MalformedHeadersAreInvalid) {
    for (const char* bad :
         {"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
          "GET / HTTP/1.1\r\n: empty name\r\n\r\n", "GET / HTTP/1.1\r\nX: a\rz\r\n\r\n",
          "GET / HTTP/1.1\r\n folded-first: x\r\n\r\n"}) {
        ParserHarness h(MessageKind::kRequest);
        h.feed(bad);
        EXPECT_TRUE(h.frames.empty()) << bad;
        EXPECT_EQ(h.counters.get("http.bad_header"), 1u) << bad;
    }
}

TEST(Http1Parser, BadFramingIsInvalid) {
    struct Case {
        MessageKind kind;
        const char* text;
        const char* counter;
    };
    for (const Case& c : {
             Case{MessageKind::kRequest, "POST / HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
                  "http.bad_content_length"},
             Case{MessageKind::kRequest,
                  "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                  "http.bad_content_length"},
             Case{MessageKind::kRequest, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                  "http.bad_transfer_encoding"},
             Case{MessageKind::kResponse, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                  "http.bad_content_length"},
             Case{MessageKind::kResponse,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "http.bad_chunk"},
             Case{MessageKind::kResponse,
                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
                  "http.bad_chunk"},
         }) {
        ParserHarness h(c.kind);
        h.feed(c.text);
        EXPECT_TRUE(h.frames.empty()) << c.text;
        EXPECT_EQ(h.counters.get(c.counter), 1u) << c.text;
    }
}

TEST(Http1Parser, RepeatedEqualContentLengthsAreAccepted) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.body_bytes, 3u);
}

TEST(Http1Parser, ResponseTransferEncodingWithoutChunkedReadsUntilClose) {
    ParserHarness h(MessageKind::kResponse);
    h.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef");
    EXPECT_TRUE(h.frames.empty());
    ASSERT_TRUE(h.finish());
    EXPECT_EQ(h.frames[0].response.body_bytes, 6u);
}

TEST(Http1Parser, BodyInACaptureGapIsSkippedByLength) {
    ParserHarness h(MessageKind::kRequest);
    const std::string head = "POST /upload HTTP/1.1\r\nContent-Length: 10000\r\n\r\n";
    std::string first = head + std::string(4096 - head.size(), 'x');
    // The syscall moved head + the whole body, but only 4096 bytes were copied.
    h.feed(first, head.size() + 10000);
    h.feed("GET /next HTTP/1.1\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 2u);
    EXPECT_EQ(h.frames[0].request.body_bytes, 10000u);
    EXPECT_EQ(h.frames[0].timing.last.tid, 1001u);
    EXPECT_EQ(h.frames[1].request.target, "/next");
    EXPECT_EQ(h.counters.get("http.body_gap_bytes"), 10000u - (4096 - head.size()));
    EXPECT_EQ(h.invalid, 0);
}

TEST(Http1Parser, ChunkDataInAGapIsSkippedByChunkSize) {
    ParserHarness h(MessageKind::kResponse);
    const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n";
    h.feed(head + "abc", head.size() + 10000 + 2);  // 10000-byte chunk + CRLF, mostly uncaptured
    h.feed("0\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].response.body_bytes, 10000u);
    EXPECT_FALSE(h.frames[0].body_truncated);
    EXPECT_EQ(h.invalid, 0);
}

TEST(Http1Parser, ChunkSizeLineInAGapEndsTheMessageEarly) {
    ParserHarness h(MessageKind::kResponse);
    const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
    h.feed(head, head.size() + 500);  // the next chunk-size line is not captured
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_TRUE(h.frames[0].body_truncated);
    EXPECT_EQ(h.frames[0].response.body_bytes, 3u);
    EXPECT_EQ(h.counters.get("http.chunk_framing_in_gap"), 1u);
    h.feed("more chunk data\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 2u);
    EXPECT_EQ(h.frames[1].response.status, 204);
}

TEST(Http1Parser, HeaderBlockInAGapIsDroppedAndCounted) {
    ParserHarness h(MessageKind::kRequest);
    h.feed("GET /lost HTTP/1.1\r\nHost: a\r\nX-Big: ", 6000);  // rest of the headers uncaptured
    h.feed("GET /found HTTP/1.1\r\n\r\n");
    EXPECT_EQ(h.counters.get("http.headers_in_gap"), 1u);
    EXPECT_EQ(h.invalid, 1);
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.target, "/found");
}

TEST(Http1Parser, MessageStartingInsideAGapIsLost) {
    ParserHarness h(MessageKind::kRequest);
    const std::string body_req = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
    // Body ends inside the uncaptured part, and another request followed in the same syscall.
    h.feed(body_req + "0123", body_req.size() + 10 + 30);
    h.feed("GET /after HTTP/1.1\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 2u);
    EXPECT_EQ(h.frames[0].request.body_bytes, 10u);
    EXPECT_EQ(h.frames[1].request.target, "/after");
    EXPECT_EQ(h.counters.get("http.headers_in_gap"), 1u);
}

TEST(Http1Parser, MidStreamStartSkipsToTheFirstMessageQuietly) {
    ParserHarness h(MessageKind::kResponse, /*mid_stream=*/true);
    h.feed("tail of some body\r\nmore body HTTP/1.1 200 OK\r\n");
    h.feed("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(h.invalid, 0);
    EXPECT_EQ(h.counters.get("http.invalid_response"), 0u);
    EXPECT_GT(h.counters.get("http.resync_bytes"), 0u);
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].response.status, 404);
}

TEST(Http1Parser, ResyncOnlyAtLineStarts) {
    ParserHarness h(MessageKind::kRequest);
    // "GET / HTTP/1.1" appears mid-line after garbage and must not be taken as a request.
    h.feed("xx GET /no HTTP/1.1\r\n\r\nGET /yes HTTP/1.1\r\n\r\n");
    ASSERT_EQ(h.frames.size(), 1u);
    EXPECT_EQ(h.frames[0].request.target, "/yes");
}

TEST(Http1Parser, OverflowDropsThePartialMessage) {
    Counters counters;
    stream::StreamLimits limits;
    limits.max_head_bytes = 200;
    stream::StreamBuffer buf(counters, limits);
    Http1Parser parser(MessageKind::kRequest, counters);
    Message m;
    const std::string get = "GET / HTTP/1.1\r\nX: 1\r\n\r\n";
    const std::string post = "POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n";
    uint64_t pos = 0;
    buf.add(pos, get, get.size(), {1, 2, 3});
    pos += get.size();
    ASSERT_EQ(parser.parse(buf, m), ParseStatus::kFrame);
    buf.add(pos, post, post.size(), {4, 5, 6});
    pos += post.size();
    EXPECT_EQ(parser.parse(buf, m), ParseStatus::kNeedMore);
    EXPECT_TRUE(parser.in_message());
    // One chunk larger than the head cap (nobody consumed it yet): dropped whole.
    buf.add(pos, std::string(300, 'z'), 300, {7, 8, 9});
    pos += 300;
    EXPECT_EQ(counters.get("stream.overflow_bytes"), 300u);
    EXPECT_EQ(parser.parse(buf, m), ParseStatus::kNeedMore);
    EXPECT_FALSE(parser.in_message());
    EXPECT_EQ(counters.get("http.dropped_by_overflow"), 1u);
    const std::string again = "GET /again HTTP/1.1\r\n\r\n";
    buf.add(pos, again, again.size(), {10, 11, 12});
    ASSERT_EQ(parser.parse(buf, m), ParseStatus::kFrame);
    EXPECT_EQ(m.request.target, "/again");
}

TEST(Http1MatchStartLine, RecognisesPrefixesAndRejectsEarly) {
    const size_t max = 8192;
    using LM = LineMatch;
    EXPECT_EQ(match_start_line("", MessageKind::kRequest, max), LM::kPartial);
    EXPECT_EQ(match_start_line("GE", MessageKind::kRequest, max), LM::kPartial);
    EXPECT_EQ(match_start_line("GET /a HTTP/1.", MessageKind::kRequest, max), LM::kPartial);
    EXPECT_EQ(match_start_line("GET /a HTTP/1.1\r", MessageKind::kRequest, max), LM::kPartial);
    EXPECT_EQ(match_start_line("GET /a HTTP/1.1\r\n", MessageKind::kRequest, max), LM::kYes);
    EXPECT_EQ(match_start_line("M-SEARCH * HTTP/1.1\n", MessageKind::kRequest, max), LM::kYes);
    EXPECT_EQ(match_start_line("get / HTTP/1.1\r\n", MessageKind::kRequest, max), LM::kNo);
    EXPECT_EQ(match_start_line("GET  / HTTP/1.1\r\n", MessageKind::kRequest, max), LM::kNo);
    EXPECT_EQ(match_start_line("GET / HTTP/2.0\r\n", MessageKind::kRequest, max), LM::kNo);
    EXPECT_EQ(match_start_line("PRI * HTTP/2.0\r\n", MessageKind::kRequest, max), LM::kNo);
    EXPECT_EQ(match_start_line("\x16\x03\x01", MessageKind::kRequest, max), LM::kNo);
    EXPECT_EQ(match_start_line("HTTP/1.1 200 OK\r\n", MessageKind::kResponse, max), LM::kYes);
    EXPECT_EQ(match_start_line("HTTP/1.1 200\r\n", MessageKind::kResponse, max), LM::kYes);
    EXPECT_EQ(match_start_line("HTTP/1.1 2", MessageKind::kResponse, max), LM::kPartial);
    EXPECT_EQ(match_start_line("HTTP/1.1 600 X\r\n", MessageKind::kResponse, max), LM::kNo);
    EXPECT_EQ(match_start_line("HTTP/1.1 20x\r\n", MessageKind::kResponse, max), LM::kNo);
    EXPECT_EQ(match_start_line("HTTP/1.1 200 OK\r\n", MessageKind::kRequest, max), LM::kNo);
    EXPECT_EQ(match_start_line("GET " + std::string(100, 'a'), MessageKind::kRequest, 50), LM::kNo);
}

TEST(Http1Detect, ExactModeLooksAtTheFirstByteOnly) {
    auto d = Http1Parser::detect("GET / HTTP/1.1\r\n", DetectMode::kExact);
    EXPECT_EQ(d.status, DetectStatus::kFound);
    EXPECT_EQ(d.kind, MessageKind::kRequest);
    d = Http1Parser::detect("HTTP/1.1 200 OK\r\n", DetectMode::kExact);
    EXPECT_EQ(d.status, DetectStatus::kFound);
    EXPECT_EQ(d.kind, MessageKind::kResponse);
    EXPECT_EQ(Http1Parser::detect("GET /x", DetectMode::kExact).status, DetectStatus::kNeedMore);
    EXPECT_EQ(Http1Parser::detect("H", DetectMode::kExact).status, DetectStatus::kNeedMore);
    EXPECT_EQ(Http1Parser::detect("*1\r\n$4\r\nPING\r\n", DetectMode::kExact).status,
              DetectStatus::kNo);
    EXPECT_EQ(Http1Parser::detect("x\nGET / HTTP/1.1\r\n", DetectMode::kExact).status,
              DetectStatus::kNo);
}

TEST(Http1Detect, AnywhereModeFindsALineStart) {
    auto d = Http1Parser::detect("body}\r\nHTTP/1.1 200 OK\r\n", DetectMode::kAnywhere);
    EXPECT_EQ(d.status, DetectStatus::kFound);
    EXPECT_EQ(d.kind, MessageKind::kResponse);
    EXPECT_EQ(d.offset, 7u);
    d = Http1Parser::detect("junk\njunk\nGET /par", DetectMode::kAnywhere);
    EXPECT_EQ(d.status, DetectStatus::kNeedMore);
    EXPECT_EQ(d.offset, 10u);
    d = Http1Parser::detect("junk\njunk", DetectMode::kAnywhere);
    EXPECT_EQ(d.status, DetectStatus::kNo);
    EXPECT_EQ(d.offset, 9u);
}

}  // namespace
}  // namespace passport::protocol::http1
