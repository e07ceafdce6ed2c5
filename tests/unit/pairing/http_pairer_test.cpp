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
        ctx.key = {77, 9, 555};
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

TEST(PairingHttp, PendingRequestsAreCapped) {
    PairerHarness h(Role::kServer, /*max_pending=*/3);
    std::string reqs;
    for (int i = 0; i < 5; ++i) reqs += get("/" + std::to_string(i));
    h.read(reqs, 100, 110);
    EXPECT_EQ(h.pairer->pending_requests(), 3u);
    EXPECT_EQ(h.counters.get("pairing.pending_overflow"), 2u);
    ASSERT_EQ(h.out.size(), 2u);
    EXPECT_EQ(h.out[0].request.target, "/0");
    EXPECT_EQ(h.out[0].outcome, Outcome::kTimedOut);
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
