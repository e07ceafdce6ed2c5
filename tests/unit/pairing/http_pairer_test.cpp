#include "userspace/pairing/http_pairer.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "userspace/protocol/registry.hpp"

namespace passport::pairing {
namespace {

using events::Direction;
using events::Role;

// Drives one HttpPairer directly with two StreamBuffers, as a Connection would.
struct PairerHarness {
    explicit PairerHarness(Role role, size_t max_pending = 64)
        : ingress(counters), egress(counters) {
        sink.http = [this](HttpExchange&& x) { out.push_back(std::move(x)); };
        ctx.conn = {77, 9, 555};
        ctx.role = role;
        ctx.netns = 123;
        protocol::SessionParams params{counters, sink, {max_pending}, role, {}};
        pairer = std::make_unique<HttpPairer>(params);
    }
    void read(const std::string& s, uint64_t enter, uint64_t exit, uint32_t tid = 11) {
        ingress.add(in_pos, s, s.size(), {enter, exit, tid});
        in_pos += s.size();
        pairer->on_data(Direction::kIngress, ingress, ctx);
    }
    void write(const std::string& s, uint64_t enter, uint64_t exit, uint32_t tid = 11) {
        egress.add(eg_pos, s, s.size(), {enter, exit, tid});
        eg_pos += s.size();
        pairer->on_data(Direction::kEgress, egress, ctx);
    }

    Counters counters;
    ExchangeSink sink;
    protocol::ConnContext ctx;
    stream::StreamBuffer ingress;
    stream::StreamBuffer egress;
    std::unique_ptr<HttpPairer> pairer;
    uint64_t in_pos = 0;
    uint64_t eg_pos = 0;
    std::vector<HttpExchange> out;
};

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n"; }

TEST(PairingHttp, ServerTimesComeFromReadExitAndWriteBounds) {
    PairerHarness h(Role::kServer);
    h.read(get("/a").substr(0, 5), 1000, 1100, 21);
    h.read(get("/a").substr(5), 1200, 1300, 22);
    h.write(kOk.substr(0, 10), 2000, 2100, 31);
    EXPECT_TRUE(h.out.empty());
    h.write(kOk.substr(10), 2200, 2300, 32);
    ASSERT_EQ(h.out.size(), 1u);
    const HttpExchange& x = h.out[0];
    EXPECT_EQ(x.outcome, Outcome::kComplete);
    EXPECT_EQ(x.role, Role::kServer);
    EXPECT_EQ(x.conn, (events::ConnKey{77, 9, 555}));
    EXPECT_EQ(x.tgid, 77u);
    EXPECT_EQ(x.netns, 123u);
    EXPECT_EQ(x.request.target, "/a");
    ASSERT_TRUE(x.response.has_value());
    EXPECT_EQ(x.response->status, 200);
    EXPECT_EQ(x.response->content_length, 2u);
    EXPECT_EQ(x.request_start_ns, 1100u);  // exit of the read returning the first byte
    EXPECT_EQ(x.request_end_ns, 1300u);
    EXPECT_EQ(x.response_start_ns, 2000u);  // entry of the first write
    EXPECT_EQ(x.response_end_ns, 2300u);    // exit of the write sending the last byte
    EXPECT_EQ(x.request_tid, 21u);
    EXPECT_EQ(x.response_tid, 31u);
    EXPECT_EQ(h.counters.get("pairing.complete"), 1u);
}

TEST(PairingHttp, ClientTimesComeFromWriteEntryAndReadExit) {
    PairerHarness h(Role::kClient);
    h.write(get("/b"), 1000, 1100, 41);
    h.read(kOk.substr(0, 3), 1500, 1600, 42);
    h.read(kOk.substr(3), 1700, 1800, 43);
    ASSERT_EQ(h.out.size(), 1u);
    const HttpExchange& x = h.out[0];
    EXPECT_EQ(x.role, Role::kClient);
    EXPECT_EQ(x.request_start_ns, 1000u);  // entry of the first write
    EXPECT_EQ(x.request_end_ns, 1100u);
    EXPECT_EQ(x.response_start_ns, 1600u);  // exit of the read returning the first byte
    EXPECT_EQ(x.response_end_ns, 1800u);
    EXPECT_EQ(x.request_tid, 41u);
    EXPECT_EQ(x.response_tid, 42u);
}

TEST(PairingHttp, PipelinedResponsesPairInOrder) {
    PairerHarness h(Role::kServer);
    h.read(get("/1") + "HEAD /2 HTTP/1.1\r\n\r\n" + get("/3"), 100, 200);
    EXPECT_EQ(h.pairer->pending_requests(), 3u);
    // The HEAD response announces a length but has no body: the next response follows at once.
    h.write(kOk + "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" +
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            300, 400);
    ASSERT_EQ(h.out.size(), 3u);
    EXPECT_EQ(h.out[0].request.target, "/1");
    EXPECT_EQ(h.out[1].request.method, "HEAD");
    EXPECT_EQ(h.out[1].response->content_length, 50u);
    EXPECT_EQ(h.out[1].response->body_bytes, 0u);
    EXPECT_EQ(h.out[2].request.target, "/3");
    EXPECT_EQ(h.out[2].response->status, 404);
    EXPECT_EQ(h.pairer->pending_requests(), 0u);
}

TEST(PairingHttp, InvalidRequestDoesNotStealTheNextResponse) {
    PairerHarness h(Role::kServer);
    h.read("BLAH\x01\x02 nonsense\r\n\r\n", 100, 110);
    h.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 120, 130);
    h.read(get("/good"), 200, 210);
    h.write(kOk, 220, 230);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/good");
    EXPECT_EQ(h.out[0].response->status, 200);
    EXPECT_EQ(h.counters.get("pairing.discarded_responses"), 1u);
    EXPECT_EQ(h.counters.get("http.invalid_request"), 1u);
}

TEST(PairingHttp, ResponseFinishedBeforeTheRequestBeganIsAnOrphan) {
    PairerHarness h(Role::kServer);
    // Response bytes with no request at all (its request predates the agent).
    h.write(kOk, 100, 110);
    EXPECT_EQ(h.counters.get("pairing.orphan_responses"), 1u);
    h.read(get("/x"), 200, 210);
    // Reported after the request, but written before the request's read even began.
    h.write(kOk, 150, 160);
    EXPECT_EQ(h.counters.get("pairing.orphan_responses"), 2u);
    EXPECT_TRUE(h.out.empty());
    h.write(kOk, 300, 310);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response_end_ns, 310u);
}

TEST(PairingHttp, UnparsableResponseTakesItsRequestWithIt) {
    PairerHarness h(Role::kServer);
    h.read(get("/1") + get("/2"), 100, 110);
    h.write("HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\n", 120, 130);
    h.write(kOk, 140, 150);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].request.target, "/2");
    EXPECT_EQ(h.counters.get("pairing.response_lost"), 1u);
}

TEST(PairingHttp, ExpectContinueInterimResponseIsNotPaired) {
    PairerHarness h(Role::kServer);
    h.read("POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", 100, 110);
    h.write("HTTP/1.1 100 Continue\r\n\r\n", 120, 130);
    EXPECT_TRUE(h.out.empty());
    h.read("data", 140, 150);
    h.write("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 160, 170);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response->status, 201);
    EXPECT_EQ(h.out[0].request.body_bytes, 4u);
    EXPECT_EQ(h.out[0].request_end_ns, 150u);
    EXPECT_EQ(h.out[0].response_start_ns, 160u);
}

TEST(PairingHttp, EarlyResponseWaitsForTheRequestBody) {
    PairerHarness h(Role::kServer);
    h.read("POST /big HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234", 100, 110);
    h.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", 120, 130);
    EXPECT_TRUE(h.out.empty());
    h.read("56789", 140, 150);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response->status, 413);
    EXPECT_EQ(h.out[0].outcome, Outcome::kComplete);
}

TEST(PairingHttp, EarlyResponseToAnUnfinishedRequestCompletesAtClose) {
    PairerHarness h(Role::kServer);
    h.read("POST /big HTTP/1.1\r\nContent-Length: 100000\r\n\r\n01234", 100, 110);
    h.write("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n", 120, 130);
    h.pairer->end(Outcome::kConnectionClosed, h.ctx);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response->status, 413);
    EXPECT_EQ(h.out[0].request.body_bytes, 100000u);
    EXPECT_EQ(h.counters.get("pairing.partial_requests"), 1u);
}

TEST(PairingHttp, CloseCompletesACloseDelimitedResponse) {
    PairerHarness h(Role::kServer);
    h.read(get("/1") + get("/2"), 100, 110);
    h.write("HTTP/1.0 200 OK\r\n\r\nbody until close", 120, 130);
    h.write(" and more", 140, 150, 99);
    EXPECT_TRUE(h.out.empty());
    h.pairer->end(Outcome::kConnectionClosed, h.ctx);
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kComplete);
    EXPECT_EQ(h.out[0].response->body_bytes, 25u);
    EXPECT_EQ(h.out[0].response_end_ns, 150u);
    EXPECT_EQ(h.out[1].request.target, "/2");
    EXPECT_EQ(h.out[1].outcome, Outcome::kConnectionClosed);
    EXPECT_FALSE(h.out[1].response.has_value());
    EXPECT_EQ(h.out[1].response_end_ns, 0u);
}

TEST(PairingHttp, ShutdownDoesNotCompleteACloseDelimitedResponse) {
    PairerHarness h(Role::kServer);
    h.read(get("/1"), 100, 110);
    h.write("HTTP/1.0 200 OK\r\n\r\npartial", 120, 130);
    h.pairer->end(Outcome::kShutdown, h.ctx);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kShutdown);
    EXPECT_FALSE(h.out[0].response.has_value());
}

TEST(PairingHttp, TimedOutRequestLeavesAPlaceholderForItsLateResponse) {
    PairerHarness h(Role::kServer);
    h.read(get("/slow"), 100, 1000);
    h.pairer->expire(5000, 10000, h.ctx);
    EXPECT_TRUE(h.out.empty());
    h.pairer->expire(11000, 10000, h.ctx);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kTimedOut);
    EXPECT_EQ(h.pairer->pending_requests(), 0u);
    h.read(get("/next"), 12000, 12100);
    h.write(kOk, 13000, 13100);  // the late answer to /slow
    h.write(kOk, 14000, 14100);
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[1].request.target, "/next");
    EXPECT_EQ(h.out[1].response_end_ns, 14100u);
}

// A response whose Content-Length is its request's number: a marker the pairing cannot fake.
std::string numbered_response(int i) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(i) + "\r\n\r\n" +
           std::string(static_cast<size_t>(i), 'x');
}

TEST(PairingHttp, DeepPipelinePairsEveryResponseWithItsRequest) {
    PairerHarness h(Role::kServer, protocol::SessionLimits{}.max_pending);
    constexpr int kDepth = 150;
    std::string reqs;
    for (int i = 0; i < kDepth; ++i) reqs += get("/" + std::to_string(i));
    h.read(reqs, 100, 110);
    EXPECT_EQ(h.pairer->pending_requests(), static_cast<size_t>(kDepth));
    for (int i = 0; i < kDepth; ++i) h.write(numbered_response(i), 200 + i, 201 + i);
    ASSERT_EQ(h.out.size(), static_cast<size_t>(kDepth));
    for (int i = 0; i < kDepth; ++i) {
        EXPECT_EQ(h.out[i].request.target, "/" + std::to_string(i));
        EXPECT_EQ(h.out[i].outcome, Outcome::kComplete);
        ASSERT_TRUE(h.out[i].response.has_value());
        EXPECT_EQ(h.out[i].response->content_length, static_cast<uint64_t>(i));
    }
    EXPECT_EQ(h.counters.get("pairing.pending_overflow"), 0u);
}

TEST(PairingHttp, OverflowIsReportedAndNeverShiftsLaterResponses) {
    PairerHarness h(Role::kServer, /*max_pending=*/8);
    std::string reqs;
    for (int i = 0; i < 20; ++i) reqs += get("/" + std::to_string(i));
    h.read(reqs, 100, 110);
    EXPECT_EQ(h.pairer->pending_requests(), 8u);
    EXPECT_EQ(h.counters.get("pairing.pending_overflow"), 12u);
    ASSERT_EQ(h.out.size(), 12u);
    for (int i = 0; i < 12; ++i) {
        EXPECT_EQ(h.out[i].request.target, "/" + std::to_string(i + 8));
        EXPECT_EQ(h.out[i].outcome, Outcome::kPipelineOverflow);
        EXPECT_FALSE(h.out[i].response.has_value());
    }
    for (int i = 0; i < 20; ++i) h.write(numbered_response(i), 200 + i, 201 + i);
    ASSERT_EQ(h.out.size(), 20u);
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(h.out[12 + i].request.target, "/" + std::to_string(i));
        EXPECT_EQ(h.out[12 + i].response->content_length, static_cast<uint64_t>(i));
    }
    EXPECT_EQ(h.counters.get("pairing.discarded_responses"), 12u);
    // The connection is back in step: the next request gets the next response.
    h.read(get("/20"), 300, 310);
    h.write(numbered_response(20), 400, 410);
    ASSERT_EQ(h.out.size(), 21u);
    EXPECT_EQ(h.out[20].request.target, "/20");
    EXPECT_EQ(h.out[20].response->content_length, 20u);
}

constexpr uint64_t kSecond = 1'000'000'000ULL;

TEST(PairingHttp, StreamedResponseLongerThanTheTimeoutIsOneCompleteExchange) {
    PairerHarness h(Role::kServer);
    const uint64_t t0 = 1000 * kSecond;
    h.read(get("/events"), t0, t0 + 1000);
    h.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", t0 + kSecond / 10,
            t0 + kSecond / 10 + 500);
    for (uint64_t s = 1; s <= 90; ++s) {
        h.write("6\r\ntick!\n\r\n", t0 + s * kSecond, t0 + s * kSecond + 500);
        h.pairer->expire(t0 + s * kSecond + kSecond / 2, 60 * kSecond, h.ctx);
    }
    EXPECT_TRUE(h.out.empty());
    h.write("0\r\n\r\n", t0 + 90 * kSecond + 100, t0 + 90 * kSecond + 600);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].outcome, Outcome::kComplete);
    EXPECT_EQ(h.out[0].response->status, 200);
    EXPECT_EQ(h.out[0].response_end_ns - h.out[0].request_start_ns, 90 * kSecond - 400);
    EXPECT_EQ(h.counters.get("pairing.timed_out"), 0u);
}

TEST(PairingHttp, RequestBehindALongStreamWaitsFromThePreviousResponseEnd) {
    PairerHarness h(Role::kServer);
    const uint64_t t0 = 1000 * kSecond;
    h.read(get("/stream") + get("/next"), t0, t0 + 1000);
    h.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", t0 + 1, t0 + 2);
    for (uint64_t s = 1; s <= 90; ++s)
        h.write("1\r\nx\r\n", t0 + s * kSecond, t0 + s * kSecond + 1);
    h.write("0\r\n\r\n", t0 + 90 * kSecond + 2, t0 + 90 * kSecond + 3);
    ASSERT_EQ(h.out.size(), 1u);
    h.pairer->expire(t0 + 91 * kSecond, 60 * kSecond, h.ctx);  // /next has waited 1 s, not 91
    EXPECT_EQ(h.out.size(), 1u);
    h.pairer->expire(t0 + 151 * kSecond, 60 * kSecond, h.ctx);
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[1].request.target, "/next");
    EXPECT_EQ(h.out[1].outcome, Outcome::kTimedOut);
}

TEST(PairingHttp, RequestWhoseResponseNeverStartsStillTimesOutBehindPlaceholders) {
    PairerHarness h(Role::kServer, /*max_pending=*/1);
    h.read(get("/a") + get("/b") + get("/c"), 100, 1000);
    ASSERT_EQ(h.out.size(), 2u);  // /b and /c overflowed
    h.pairer->expire(1000 + 10000, 10000, h.ctx);
    ASSERT_EQ(h.out.size(), 3u);
    EXPECT_EQ(h.out[2].request.target, "/a");
    EXPECT_EQ(h.out[2].outcome, Outcome::kTimedOut);
    // Three responses come late: all discarded, then the connection is in step again.
    for (int i = 0; i < 3; ++i) h.write(kOk, 20000 + i, 20001 + i);
    EXPECT_EQ(h.counters.get("pairing.discarded_responses"), 3u);
    h.read(get("/d"), 30000, 30001);
    h.write(kOk, 30002, 30003);
    ASSERT_EQ(h.out.size(), 4u);
    EXPECT_EQ(h.out[3].request.target, "/d");
    EXPECT_EQ(h.out[3].outcome, Outcome::kComplete);
}

TEST(PairingHttp, UpgradeStopsTheSession) {
    PairerHarness h(Role::kServer);
    h.read("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 100, 110);
    h.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 120, 130);
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_EQ(h.out[0].response->status, 101);
    EXPECT_FALSE(h.pairer->wants_data());
}

TEST(PairingHttp, RegistryMakesTheHttpSession) {
    const auto protocols = protocol::registered_protocols();
    ASSERT_EQ(protocols.size(), 1u);
    EXPECT_EQ(protocols[0].name, "http1");
    Counters counters;
    ExchangeSink sink;
    auto session = protocols[0].make_session({counters, sink, {}, Role::kClient, {}});
    ASSERT_NE(session, nullptr);
    EXPECT_NE(dynamic_cast<HttpPairer*>(session.get()), nullptr);
    auto d = protocol::detect_protocol("GET / HTTP/1.1\r\n", protocol::DetectMode::kExact);
    EXPECT_EQ(d.detection.status, protocol::DetectStatus::kFound);
    EXPECT_EQ(d.protocol, &protocols[0]);
    d = protocol::detect_protocol("\x16\x03\x01\x00", protocol::DetectMode::kExact);
    EXPECT_EQ(d.detection.status, protocol::DetectStatus::kNo);
    EXPECT_EQ(d.protocol, nullptr);
}

}  // namespace
}  // namespace passport::pairing
