#include "userspace/stream/connection_tracker.hpp"

#include "passport/abi.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/support/event_builder.hpp"

namespace passport::stream {
namespace {

using events::Direction;
using events::Role;
using pairing::HttpExchange;
using pairing::Outcome;
using passport::testing::EventBuilder;

struct TrackerHarness {
    explicit TrackerHarness(TrackerConfig config = {})
        : tracker(
              counters, [this](HttpExchange&& x) { out.push_back(std::move(x)); }, config) {}

    void feed(const events::Event& e) { tracker.on_event(e); }
    void feed(const std::vector<events::Data>& events) {
        for (const auto& e : events) tracker.on_event(e);
    }

    Counters counters;
    std::vector<HttpExchange> out;
    ConnectionTracker tracker;
};

const std::string kGet = "GET /items/7 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n"; }
std::string ok(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(ConnectionTracker, ServerExchangeHasExactTimesTidsAndAddresses) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(50));
    h.feed(b.read(kGet.substr(0, 20), 1000, 1010, 501));
    h.feed(b.read(kGet.substr(20), 1100, 1120, 502));
    h.feed(b.write(kOk.substr(0, 30), 2000, 2030, 601));
    EXPECT_TRUE(h.out.empty());
    h.feed(b.write(kOk.substr(30), 2100, 2140, 602));
    ASSERT_EQ(h.out.size(), 1u);
    const HttpExchange& x = h.out[0];
    EXPECT_EQ(x.outcome, Outcome::kComplete);
    EXPECT_EQ(x.conn, b.key());
    EXPECT_EQ(x.role, Role::kServer);
    EXPECT_EQ(x.tgid, EventBuilder::kDefaultTgid);
    EXPECT_EQ(x.local.ip_string(), "10.0.0.1");
    EXPECT_EQ(x.local.port, 8080);
    EXPECT_EQ(x.remote.ip_string(), "10.0.0.2");
    EXPECT_EQ(x.remote.port, 43210);
    EXPECT_EQ(x.netns, 4026531840U);
    EXPECT_EQ(x.request.method, "GET");
    EXPECT_EQ(x.request.target, "/items/7");
    ASSERT_TRUE(x.response.has_value());
    EXPECT_EQ(x.response->status, 200);
    EXPECT_EQ(x.response->body_bytes, 5u);
    EXPECT_EQ(x.request_start_ns, 1010u);
    EXPECT_EQ(x.request_end_ns, 1120u);
    EXPECT_EQ(x.response_start_ns, 2000u);
    EXPECT_EQ(x.response_end_ns, 2140u);
    EXPECT_EQ(x.request_tid, 501u);
    EXPECT_EQ(x.response_tid, 601u);
    EXPECT_EQ(h.counters.get("stream.detected.http1"), 1u);
}

TEST(ConnectionTracker, ClientExchangeHasExactTimes) {
    TrackerHarness h;
    EventBuilder b(Role::kClient);
    h.feed(b.open(50));
    h.feed(b.write(kGet, 1000, 1010, 701));
    h.feed(b.read(kOk.substr(0, 10), 1500, 1600, 702));
    h.feed(b.read(kOk.substr(10), 1700, 1800, 703));
    ASSERT_EQ(h.out.size(), 1u);
    const HttpExchange& x = h.out[0];
    EXPECT_EQ(x.role, Role::kClient);
    EXPECT_EQ(x.request_start_ns, 1000u);  // entry of the first write
    EXPECT_EQ(x.request_end_ns, 1010u);
    EXPECT_EQ(x.response_start_ns, 1600u);
    EXPECT_EQ(x.response_end_ns, 1800u);  // exit of the read returning the last byte
    EXPECT_EQ(x.request_tid, 701u);
    EXPECT_EQ(x.response_tid, 702u);
}

// A call's document starts at its connect() (call_truth.hpp): the exchange carries the time the
// kernel reported for a connection opened by connect(), and only for those.
TEST(ConnectionTracker, ExchangesCarryTheConnectTimeOfConnectionsTheProcessOpened) {
    for (Role role : {Role::kClient, Role::kServer, Role::kUnknown}) {
        SCOPED_TRACE(static_cast<int>(role));
        TrackerHarness h;
        EventBuilder b(role);
        h.feed(b.open(50));
        const bool client = role != Role::kServer;
        h.feed(client ? b.write(kGet, 1000, 1010, 701) : b.read(kGet, 1000, 1010, 701));
        h.feed(client ? b.read(kOk, 1500, 1600, 702) : b.write(kOk, 1500, 1600, 702));
        h.feed(client ? b.write(kGet, 2000, 2010, 701) : b.read(kGet, 2000, 2010, 701));
        h.feed(client ? b.read(kOk, 2500, 2600, 702) : b.write(kOk, 2500, 2600, 702));
        ASSERT_EQ(h.out.size(), 2u);
        // Only connect() says when a connection was opened; accepted or found mid-life: 0.
        const uint64_t want = role == Role::kClient ? 50u : 0u;
        EXPECT_EQ(h.out[0].connect_ns, want);
        EXPECT_EQ(h.out[0].request_pos, 0u);
        EXPECT_EQ(h.out[1].connect_ns, want);
        EXPECT_EQ(h.out[1].request_pos, kGet.size()) << "the reused connection's second request";
    }
}

TEST(ConnectionTracker, ByteByByteReadsStillPair) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    std::vector<size_t> cuts;
    for (size_t i = 1; i < kGet.size(); ++i) cuts.push_back(i);
    h.feed(b.reads(kGet, cuts, 100, 10));
    h.feed(b.write(kOk, 5000, 5010));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.headers.size(), 2u);
    EXPECT_EQ(h.out[0].request_start_ns, 105u);
    EXPECT_EQ(h.out[0].request_end_ns, 100 + 10 * (kGet.size() - 1) + 5);
}

TEST(ConnectionTracker, HeadersSplitAtEveryOffsetGiveTheSameExchange) {
    for (size_t i = 1; i < kGet.size(); ++i) {
        TrackerHarness h;
        EventBuilder b(Role::kServer);
        h.feed(b.open(1));
        h.feed(b.read(kGet.substr(0, i), 100, 110, 1));
        h.feed(b.read(kGet.substr(i), 200, 210, 2));
        h.feed(b.write(kOk, 300, 310));
        ASSERT_EQ(h.out.size(), 1u) << "split at " << i;
        EXPECT_EQ(h.out[0].request.target, "/items/7") << "split at " << i;
        EXPECT_EQ(h.out[0].request.headers.size(), 2u) << "split at " << i;
        EXPECT_EQ(h.out[0].request_start_ns, 110u) << "split at " << i;
        EXPECT_EQ(h.out[0].request_end_ns, 210u) << "split at " << i;
        EXPECT_EQ(h.out[0].request_tid, 1u) << "split at " << i;
    }
}

TEST(ConnectionTracker, KeepAliveCarriesSeveralExchanges) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    for (int i = 0; i < 5; ++i) {
        const uint64_t t = uint64_t{1000} * (i + 1);
        h.feed(b.read(get("/" + std::to_string(i)), t, t + 10));
        h.feed(b.write(ok(std::string(static_cast<size_t>(i), 'x')), t + 100, t + 110));
    }
    ASSERT_EQ(h.out.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(h.out[i].request.target, "/" + std::to_string(i));
        EXPECT_EQ(h.out[i].response->body_bytes, static_cast<uint64_t>(i));
        EXPECT_EQ(h.out[i].request_start_ns, 1000u * (i + 1) + 10);
        EXPECT_EQ(h.out[i].response_end_ns, 1000u * (i + 1) + 110);
    }
    EXPECT_EQ(h.tracker.size(), 1u);
}

TEST(ConnectionTracker, PipelinedRequestsInOneReadPairWithResponsesInOneWrite) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read(get("/a") + get("/b") + get("/c"), 100, 110, 7));
    h.feed(b.write(ok("1") + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" + ok("333"), 200,
                   210, 8));
    ASSERT_EQ(h.out.size(), 3u);
    EXPECT_EQ(h.out[0].request.target, "/a");
    EXPECT_EQ(h.out[0].response->status, 200);
    EXPECT_EQ(h.out[1].request.target, "/b");
    EXPECT_EQ(h.out[1].response->status, 404);
    EXPECT_EQ(h.out[2].request.target, "/c");
    EXPECT_EQ(h.out[2].response->body_bytes, 3u);
    for (const auto& x : h.out) {
        EXPECT_EQ(x.request_start_ns, 110u);
        EXPECT_EQ(x.response_end_ns, 210u);
        EXPECT_EQ(x.request_tid, 7u);
        EXPECT_EQ(x.response_tid, 8u);
    }
}

TEST(ConnectionTracker, ChunkedResponseAndContentLengthRequest) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read("POST /orders HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"id\":", 100, 110));
    h.feed(b.read("12345}", 120, 130));
    h.feed(b.write("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n", 200, 210));
    h.feed(b.write("7\r\ncreated\r\n", 220, 230));
    h.feed(b.write("0\r\n\r\n", 240, 250));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.body_bytes, 12u);
    EXPECT_EQ(h.out[0].request_end_ns, 130u);
    EXPECT_EQ(h.out[0].response->status, 201);
    EXPECT_EQ(h.out[0].response->body_bytes, 7u);
    EXPECT_EQ(h.out[0].response_end_ns, 250u);
}

TEST(ConnectionTracker, Http10ResponseEndsWhenTheConnectionCloses) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read("GET /old HTTP/1.0\r\n\r\n", 100, 110));
    h.feed(b.write("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>", 200, 210));
    h.feed(b.write("</html>", 220, 230, 99));
    EXPECT_TRUE(h.out.empty());
    h.feed(b.close(300));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kComplete);
    EXPECT_EQ(h.out[0].response->body_bytes, 13u);
    EXPECT_EQ(h.out[0].response_end_ns, 230u);
    EXPECT_EQ(h.tracker.size(), 0u);
}

TEST(ConnectionTracker, BytesStillMissingAtCloseAreSkipped) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read("GET /old HTTP/1.0\r\n\r\n", 100, 110));
    h.feed(b.write("HTTP/1.0 200 OK\r\n\r\nfirst", 200, 210));
    const events::Data lost = b.write("-middle-", 220, 230);  // never reported
    (void)lost;
    h.feed(b.write("last", 240, 250));
    h.feed(b.close(300));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kComplete);
    EXPECT_EQ(h.out[0].response->body_bytes, 17u);
    EXPECT_EQ(h.out[0].response_end_ns, 250u);
    EXPECT_EQ(h.counters.get("stream.lost_bytes"), 8u);
}

TEST(ConnectionTracker, HeadAnd204And304HaveNoBody) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read("HEAD /h HTTP/1.1\r\n\r\n" + get("/nc") + get("/nm") + get("/after"), 100, 110));
    h.feed(
        b.write("HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n"
                "HTTP/1.1 204 No Content\r\n\r\n"
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" +
                    ok("fin"),
                200, 210));
    ASSERT_EQ(h.out.size(), 4u);
    EXPECT_EQ(h.out[0].response->content_length, 4096u);
    EXPECT_EQ(h.out[0].response->body_bytes, 0u);
    EXPECT_EQ(h.out[1].response->status, 204);
    EXPECT_EQ(h.out[2].response->status, 304);
    EXPECT_EQ(h.out[3].request.target, "/after");
    EXPECT_EQ(h.out[3].response->body_bytes, 3u);
}

TEST(ConnectionTracker, ExpectContinuePairsTheFinalResponse) {
    TrackerHarness h;
    EventBuilder b(Role::kClient);
    h.feed(b.open(1));
    h.feed(
        b.write("PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 100, 110));
    h.feed(b.read("HTTP/1.1 100 Continue\r\n\r\n", 120, 130));
    h.feed(b.write("abc", 140, 150));
    h.feed(b.read("HTTP/1.1 204 No Content\r\n\r\n", 160, 170));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response->status, 204);
    EXPECT_EQ(h.out[0].request_start_ns, 100u);
    EXPECT_EQ(h.out[0].request_end_ns, 150u);
    EXPECT_EQ(h.out[0].response_start_ns, 170u);
    EXPECT_EQ(h.counters.get("http.interim_responses"), 1u);
}

TEST(ConnectionTracker, BodiesInCaptureGapsStillPair) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    // A 100 000-byte upload in 16 KB reads: each read copies only 4096 bytes.
    const std::string head = "POST /upload HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    const std::string upload = head + std::string(100000, 'u');
    std::vector<size_t> cuts;
    for (size_t at = 16384; at < upload.size(); at += 16384) cuts.push_back(at);
    h.feed(b.reads(upload, cuts, 1000, 100, 3));
    // A 20 000-byte response in one write (4096 copied), then a second exchange.
    h.feed(b.write(ok(std::string(20000, 'd')), 5000, 5100, 4));
    h.feed(b.read(get("/next"), 6000, 6010));
    h.feed(b.write(ok("n"), 6100, 6110));
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[0].request.body_bytes, 100000u);
    EXPECT_EQ(h.out[0].request_end_ns, 1000 + 100 * cuts.size() + 50);
    EXPECT_EQ(h.out[0].response->body_bytes, 20000u);
    EXPECT_EQ(h.out[0].response_end_ns, 5100u);
    EXPECT_EQ(h.out[1].request.target, "/next");
    const uint64_t response_size = ok(std::string(20000, 'd')).size();
    EXPECT_EQ(h.counters.get("stream.gap_bytes"),
              cuts.size() * (16384 - 4096) + (response_size - 4096));
    EXPECT_EQ(h.counters.get("http.invalid_request"), 0u);
    EXPECT_LT(h.tracker.find(b.key())->buffered_bytes(), 100u);
}

TEST(ConnectionTracker, HeaderBlockInAGapIsCountedAndItsResponseDiscarded) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read(get("/first"), 100, 110));
    h.feed(b.write(ok("1"), 120, 130));
    // 6000 bytes of headers in one read: only 4096 captured, the block's end is in the gap.
    const std::string big = "GET /big HTTP/1.1\r\nCookie: " + std::string(6000, 'c') + "\r\n\r\n";
    h.feed(b.read(big, 200, 210));
    h.feed(b.write(ok("2"), 220, 230));
    h.feed(b.read(get("/third"), 300, 310));
    h.feed(b.write(ok("3"), 320, 330));
    EXPECT_EQ(h.counters.get("http.headers_in_gap"), 1u);
    EXPECT_EQ(h.counters.get("pairing.discarded_responses"), 1u);
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[0].request.target, "/first");
    EXPECT_EQ(h.out[1].request.target, "/third");
    EXPECT_EQ(h.out[1].response->body_bytes, 1u);
    EXPECT_EQ(h.out[1].response_end_ns, 330u);
}

TEST(ConnectionTracker, BinaryTrafficIsNotHttpAndNotBuffered) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    std::string bin;
    for (int i = 0; i < 300; ++i) bin.push_back(static_cast<char>((i * 37 + 3) & 0xff));
    h.feed(b.read(bin, 100, 110));
    h.feed(b.write(bin, 120, 130));
    h.feed(b.read(get("/looks-like-http-later"), 140, 150));
    h.feed(b.close(200));
    EXPECT_TRUE(h.out.empty());
    EXPECT_EQ(h.counters.get("stream.non_http_connections"), 1u);
    EXPECT_EQ(h.counters.get("http.requests"), 0u);
}

TEST(ConnectionTracker, NonHttpConnectionHoldsNoMemory) {
    TrackerHarness h;
    EventBuilder b(Role::kClient);
    h.feed(b.open(1));
    // (A TLS record would be recognised as ciphertext instead: tls_source_test.cpp.)
    h.feed(b.write("SSH-2.0-OpenSSH_9.2p1\r\n", 100, 110));
    const Connection* c = h.tracker.find(b.key());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->phase(), Connection::Phase::kIgnored);
    h.feed(b.read(std::string(3000, 'x'), 120, 130));
    EXPECT_EQ(c->buffered_bytes(), 0u);
    EXPECT_EQ(h.counters.get("stream.non_http_connections"), 1u);
}

TEST(ConnectionTracker, OversizedHeadersAreRejected) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    std::string req = "GET /huge HTTP/1.1\r\n";
    while (req.size() < PP_HEAD_BUDGET + 1000) req += "X-Pad: " + std::string(200, 'p') + "\r\n";
    req += "\r\n";
    std::vector<size_t> cuts;
    for (size_t at = 1000; at < req.size(); at += 1000) cuts.push_back(at);
    h.feed(b.reads(req, cuts, 100, 10));
    h.feed(b.write("HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n", 500,
                   510));
    h.feed(b.close(600));
    EXPECT_TRUE(h.out.empty());
    EXPECT_EQ(h.counters.get("http.headers_too_large"), 1u);
    EXPECT_EQ(h.counters.get("http.invalid_request"), 1u);
}

TEST(ConnectionTracker, ResetMidResponseEndsAsConnectionClosed) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read(get("/r"), 100, 110, 5));
    h.feed(b.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", 200, 210));
    h.feed(b.close(300));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kConnectionClosed);
    EXPECT_FALSE(h.out[0].response.has_value());
    EXPECT_EQ(h.out[0].response_end_ns, 0u);
    EXPECT_EQ(h.out[0].request_start_ns, 110u);
    EXPECT_EQ(h.out[0].request_tid, 5u);
    EXPECT_EQ(h.tracker.size(), 0u);
}

TEST(ConnectionTracker, ProcessExitEndsEveryConnectionOfTheProcess) {
    TrackerHarness h;
    EventBuilder a(Role::kServer, {100, 5, 1});
    EventBuilder c(Role::kClient, {100, 6, 2});
    EventBuilder other(Role::kServer, {200, 5, 3});
    h.feed(a.open(1));
    h.feed(c.open(2));
    h.feed(other.open(3));
    // Mid-request: headers in, body still arriving.
    h.feed(a.read("POST /p HTTP/1.1\r\nContent-Length: 50\r\n\r\nabc", 100, 110));
    h.feed(c.write(get("/downstream"), 120, 130));
    h.feed(other.read(get("/other"), 140, 150));
    h.feed(a.exit(200));
    ASSERT_EQ(h.out.size(), 2u);
    for (const auto& x : h.out) {
        EXPECT_EQ(x.outcome, Outcome::kProcessExited);
        EXPECT_EQ(x.tgid, 100u);
        EXPECT_FALSE(x.response.has_value());
    }
    EXPECT_EQ(h.tracker.size(), 1u);
    EXPECT_NE(h.tracker.find(other.key()), nullptr);
}

TEST(ConnectionTracker, OutOfOrderChunksAreReassembledByPosition) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    auto reads = b.reads(kGet, {10, 30}, 100, 100, 9);  // enter 100/200/300, exit +50
    h.feed(reads[2]);
    h.feed(reads[0]);
    h.feed(reads[1]);
    h.feed(b.write(kOk, 400, 410));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/items/7");
    EXPECT_EQ(h.out[0].request_start_ns, 150u);
    EXPECT_EQ(h.out[0].request_end_ns, 350u);
}

TEST(ConnectionTracker, ReusedFdWithANewGenerationIsANewConnection) {
    TrackerHarness h;
    EventBuilder old_conn(Role::kServer, {300, 8, 1000});
    EventBuilder new_conn(Role::kServer, {300, 8, 2000});
    h.feed(old_conn.open(1));
    h.feed(old_conn.read(get("/old"), 100, 110));
    // The close was missed; the fd now names a new socket.
    h.feed(new_conn.open(200));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/old");
    EXPECT_EQ(h.out[0].outcome, Outcome::kConnectionClosed);
    EXPECT_EQ(h.counters.get("stream.fd_reused"), 1u);
    h.feed(old_conn.write(kOk, 210, 220));  // late bytes of the old socket
    EXPECT_EQ(h.counters.get("stream.stale_events"), 1u);
    h.feed(new_conn.read(get("/new"), 300, 310));
    h.feed(new_conn.write(kOk, 320, 330));
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[1].request.target, "/new");
    EXPECT_EQ(h.out[1].conn.gen, 2000u);
    EXPECT_EQ(h.tracker.size(), 1u);
}

TEST(ConnectionTracker, UnknownRoleBecomesServerWhenARequestIsRead) {
    TrackerHarness h;
    EventBuilder b(Role::kUnknown);
    h.feed(b.open(1));
    h.feed(b.read(kGet, 100, 110));
    h.feed(b.write(kOk, 200, 210));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].role, Role::kServer);
    EXPECT_EQ(h.out[0].request_start_ns, 110u);
    EXPECT_EQ(h.out[0].response_start_ns, 200u);
    EXPECT_EQ(h.tracker.find(b.key())->role(), Role::kServer);
}

TEST(ConnectionTracker, UnknownRoleBecomesClientWhenARequestIsWritten) {
    TrackerHarness h;
    EventBuilder b(Role::kUnknown);
    h.feed(b.write(kGet, 100, 110));  // no open event at all
    h.feed(b.read(kOk, 200, 210));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].role, Role::kClient);
    EXPECT_EQ(h.out[0].request_start_ns, 100u);
    EXPECT_EQ(h.out[0].response_start_ns, 210u);
    EXPECT_EQ(h.counters.get("stream.conn_without_open"), 1u);
}

TEST(ConnectionTracker, JoinedMidStreamFindsTheFirstWholeExchange) {
    TrackerHarness h;
    EventBuilder b(Role::kUnknown);
    // The tail of a response to a request we never saw, then a full exchange.
    h.feed(b.write("ody of an earlier response</html>\r\n", 100, 110));
    h.feed(b.read("tail of an upload\r\n" + get("/seen"), 200, 210));
    h.feed(b.write(kOk, 300, 310));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].role, Role::kServer);
    EXPECT_EQ(h.out[0].request.target, "/seen");
    EXPECT_EQ(h.out[0].response_end_ns, 310u);
    EXPECT_EQ(h.counters.get("http.invalid_request"), 0u);
    EXPECT_EQ(h.counters.get("http.invalid_response"), 0u);
    EXPECT_EQ(h.counters.get("stream.non_http_connections"), 0u);
}

TEST(ConnectionTracker, UnknownRoleOtherDirectionAlsoStartsMidStream) {
    TrackerHarness h;
    EventBuilder b(Role::kUnknown);
    h.feed(b.read(get("/first-seen"), 100, 110));
    // The egress stream was also joined mid-way: it starts with the end of an older response.
    h.feed(b.write("end of an older body</html>\r\n", 120, 130));
    h.feed(b.write(kOk, 140, 150));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/first-seen");
    EXPECT_EQ(h.out[0].response_end_ns, 150u);
    EXPECT_EQ(h.counters.get("http.invalid_response"), 0u);
}

TEST(ConnectionTracker, KnownRoleWithKernelRoleOnDataOnly) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.read(kGet, 100, 110));  // open event lost; the data carries the role
    h.feed(b.write(kOk, 200, 210));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].role, Role::kServer);
}

TEST(ConnectionTracker, ServerWhosePeerSendsAResponseIsNotHttp) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read(kOk, 100, 110));
    EXPECT_EQ(h.counters.get("stream.non_http_connections"), 1u);
    EXPECT_EQ(h.tracker.find(b.key())->phase(), Connection::Phase::kIgnored);
}

TEST(ConnectionTracker, IdleConnectionsExpire) {
    TrackerConfig config;
    config.idle_timeout_ns = 1000;
    config.pairing_timeout_ns = 1'000'000;
    TrackerHarness h(config);
    EventBuilder quiet(Role::kServer, {1, 3, 1});
    EventBuilder busy(Role::kServer, {1, 4, 2});
    h.feed(quiet.open(10));
    h.feed(quiet.read(get("/q"), 100, 110));
    h.feed(busy.open(500));
    h.feed(busy.read(get("/b"), 900, 950));
    h.tracker.expire(1000);
    EXPECT_TRUE(h.out.empty());
    h.tracker.expire(1200);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/q");
    EXPECT_EQ(h.out[0].outcome, Outcome::kTimedOut);
    EXPECT_EQ(h.counters.get("stream.idle_expired"), 1u);
    EXPECT_EQ(h.tracker.size(), 1u);
    EXPECT_EQ(h.tracker.find(quiet.key()), nullptr);
}

TEST(ConnectionTracker, UnansweredRequestsTimeOutOnALiveConnection) {
    TrackerConfig config;
    config.idle_timeout_ns = 1'000'000;
    config.pairing_timeout_ns = 500;
    TrackerHarness h(config);
    EventBuilder b(Role::kClient);
    h.feed(b.open(1));
    h.feed(b.write(get("/never"), 100, 110));
    h.tracker.expire(400);
    EXPECT_TRUE(h.out.empty());
    h.tracker.expire(700);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kTimedOut);
    EXPECT_EQ(h.tracker.size(), 1u);
    EXPECT_EQ(h.tracker.find(b.key())->pending_requests(), 0u);
}

TEST(ConnectionTracker, ResponseStreamedFor90SecondsOfEventTimeIsOneExchange) {
    constexpr uint64_t kSecond = 1'000'000'000ULL;
    TrackerHarness h;  // default timeouts: 60 s pairing, 5 min idle
    EventBuilder b(Role::kServer);
    const uint64_t t0 = 7 * kSecond;
    h.feed(b.open(t0));
    h.feed(b.read(get("/events"), t0 + 100, t0 + 200));
    h.feed(b.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", t0 + kSecond / 2,
                   t0 + kSecond / 2 + 100));
    for (uint64_t s = 1; s <= 90; ++s) {
        h.feed(b.write("5\r\ndata\n\r\n", t0 + s * kSecond, t0 + s * kSecond + 100));
        for (uint64_t tick = 1; tick <= 5; ++tick)
            h.tracker.expire(t0 + s * kSecond + tick * kSecond / 5);
    }
    EXPECT_TRUE(h.out.empty()) << "a response still streaming must not be given up";
    h.feed(b.write("0\r\n\r\n", t0 + 90 * kSecond + 300, t0 + 90 * kSecond + 400));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kComplete);
    EXPECT_EQ(h.out[0].response->status, 200);
    EXPECT_EQ(h.out[0].response->body_bytes, 450u);
    EXPECT_EQ(h.out[0].response_end_ns - h.out[0].request_start_ns, 90 * kSecond + 200);
    EXPECT_EQ(h.counters.get("pairing.timed_out"), 0u);
}

TEST(ConnectionTracker, FlushAllEndsEverythingAsShutdown) {
    TrackerHarness h;
    EventBuilder a(Role::kServer, {1, 3, 1});
    EventBuilder c(Role::kClient, {1, 4, 2});
    h.feed(a.open(1));
    h.feed(c.open(2));
    h.feed(a.read(get("/a"), 100, 110));
    h.feed(c.write(get("/c"), 120, 130));
    h.tracker.flush_all();
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[0].request.target, "/a");
    EXPECT_EQ(h.out[1].request.target, "/c");
    EXPECT_EQ(h.out[0].outcome, Outcome::kShutdown);
    EXPECT_EQ(h.out[1].outcome, Outcome::kShutdown);
    EXPECT_EQ(h.tracker.size(), 0u);
}

TEST(ConnectionTracker, TableIsBoundedByEvictingTheLeastRecentlyActive) {
    TrackerConfig config;
    config.max_connections = 2;
    TrackerHarness h(config);
    EventBuilder a(Role::kServer, {1, 3, 1});
    EventBuilder c(Role::kServer, {1, 4, 2});
    EventBuilder d(Role::kServer, {1, 5, 3});
    h.feed(a.open(1));
    h.feed(c.open(2));
    h.feed(a.read(get("/a"), 100, 110));  // a is now more recent than c
    h.feed(c.read(get("/c"), 120, 130));  // ... and c than a
    h.feed(a.read("", 140, 150));         // nothing moved, but a was active
    h.feed(d.open(200));
    EXPECT_EQ(h.tracker.size(), 2u);
    EXPECT_EQ(h.counters.get("stream.evicted_connections"), 1u);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/c");
    EXPECT_EQ(h.out[0].outcome, Outcome::kTimedOut);
    EXPECT_NE(h.tracker.find(a.key()), nullptr);
    EXPECT_NE(h.tracker.find(d.key()), nullptr);
}

TEST(ConnectionTracker, EventsAfterCloseDoNotResurrectTheConnection) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read(get("/x"), 100, 110));
    h.feed(b.write(kOk, 120, 130));
    h.feed(b.close(200));
    h.feed(b.read(get("/late"), 150, 210));
    EXPECT_EQ(h.tracker.size(), 0u);
    EXPECT_EQ(h.counters.get("stream.stale_events"), 1u);
    EXPECT_EQ(h.out.size(), 1u);
}

TEST(ConnectionTracker, UpgradedConnectionStopsBuffering) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(
        b.read("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 100, 110));
    h.feed(b.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 120, 130));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response->status, 101);
    const Connection* c = h.tracker.find(b.key());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->phase(), Connection::Phase::kIgnored);
    h.feed(b.read(std::string(5000, '\x81'), 140, 150));
    EXPECT_EQ(c->buffered_bytes(), 0u);
    EXPECT_EQ(h.counters.get("http.invalid_request"), 0u);
}

TEST(ConnectionTracker, FirstBytesLostInAGapThenHttpIsFound) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    h.feed(b.read_partial("", 300, 100, 110));  // nothing of it captured
    h.feed(b.read(get("/after-gap"), 200, 210));
    h.feed(b.write(kOk, 300, 310));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/after-gap");
}

TEST(ConnectionTracker, BytesMissingForAWholeExpiryTickAreGivenUp) {
    TrackerHarness h;
    EventBuilder b(Role::kServer);
    h.feed(b.open(1));
    const events::Data lost = b.read(get("/lost"), 100, 110);  // dropped by the ring buffer
    (void)lost;
    h.feed(b.read(get("/kept"), 200, 210));
    h.tracker.expire(1000);
    EXPECT_EQ(h.tracker.find(b.key())->pending_requests(), 0u);  // still waiting for the hole
    h.tracker.expire(2000);
    EXPECT_EQ(h.counters.get("stream.stalled_holes"), 1u);
    EXPECT_EQ(h.tracker.find(b.key())->pending_requests(), 1u);
    h.feed(b.write(kOk, 3000, 3010));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/kept");
    EXPECT_EQ(h.out[0].request_start_ns, 210u);
}

// Random damage to realistic event streams: drops, duplicates, reordering, truncation, closes and
// exits at random points. Nothing may crash, memory stays bounded, exchanges stay well-formed.
TEST(ConnectionTrackerFuzz, DamagedEventStreamsAreSurvived) {
    std::mt19937 rng(99);
    auto below = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    const std::vector<std::string> reqs = {
        get("/a"), "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        "HEAD /h HTTP/1.1\r\n\r\n"};
    const std::vector<std::string> resps = {
        kOk, "HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nclose-delimited",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n"};
    for (int round = 0; round < 300; ++round) {
        TrackerConfig config;
        config.max_connections = 4;
        TrackerHarness h(config);
        std::vector<events::Event> events;
        for (int c = 0; c < 6; ++c) {
            EventBuilder b(static_cast<Role>(below(3)),
                           {static_cast<uint32_t>(1 + below(3)), static_cast<int32_t>(below(4)),
                            static_cast<uint64_t>(1 + below(5))});
            if (below(4) != 0) events.emplace_back(b.open(below(1000)));
            const bool client = b.role() == Role::kClient;
            for (int m = 0; m < 4; ++m) {
                const uint64_t t = below(100000);
                const std::string& rq = reqs[below(reqs.size())];
                const std::string& rs = resps[below(resps.size())];
                auto cut = [&](const std::string& s) {
                    return std::vector<size_t>{below(s.size() + 1)};
                };
                auto rq_events =
                    client ? b.writes(rq, cut(rq), t, 10) : b.reads(rq, cut(rq), t, 10);
                auto rs_events =
                    client ? b.reads(rs, cut(rs), t + 50, 10) : b.writes(rs, cut(rs), t + 50, 10);
                for (auto& e : rq_events) events.emplace_back(e);
                for (auto& e : rs_events) events.emplace_back(e);
            }
            if (below(2) == 0) events.emplace_back(b.close(below(200000)));
            if (below(8) == 0) events.emplace_back(b.exit(below(200000)));
        }
        // Damage: shuffle a little, drop some, duplicate some, truncate captures.
        for (size_t i = 0; i + 1 < events.size(); ++i) {
            if (below(10) == 0) std::swap(events[i], events[i + 1]);
        }
        for (auto& e : events) {
            if (auto* d = std::get_if<events::Data>(&e); d != nullptr && below(10) == 0) {
                d->bytes.resize(below(d->bytes.size() + 1));
            }
        }
        for (const auto& e : events) {
            const size_t r = below(20);
            if (r == 0) continue;
            h.feed(e);
            if (r == 1) h.feed(e);
            if (r == 2) h.tracker.expire(below(300000));
        }
        EXPECT_LE(h.tracker.size(), 4u);
        h.tracker.flush_all();
        EXPECT_EQ(h.tracker.size(), 0u);
        for (const auto& x : h.out) {
            EXPECT_FALSE(x.request.method.empty());
            EXPECT_TRUE(x.role == Role::kServer || x.role == Role::kClient);
            if (x.response) {
                EXPECT_GE(x.response->status, 100);
                EXPECT_LE(x.response->status, 599);
            }
            EXPECT_EQ(x.response.has_value(), x.outcome == Outcome::kComplete);
        }
    }
}

}  // namespace
}  // namespace passport::stream
