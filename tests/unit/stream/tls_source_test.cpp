// stream::Connection with TLS: plaintext events (source DataSource::kTls) are the traffic, the
// socket events of the same connection are ciphertext and are dropped with one counter, and a TLS
// handshake never reaches protocol detection.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "passport/abi.h"
#include "tests/support/event_builder.hpp"
#include "userspace/stream/connection_tracker.hpp"

namespace passport::stream {
namespace {

using events::Direction;
using events::Role;
using pairing::HttpExchange;
using passport::testing::EventBuilder;

const std::string kGet = "GET /secure HTTP/1.1\r\nHost: api:8443\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
// A ClientHello record header and a few body bytes; an application-data record.
const std::string kClientHello = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
const std::string kAppData = std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, '\x5a');

struct Harness {
    Harness() : tracker(counters, [this](HttpExchange&& x) { out.push_back(std::move(x)); }) {}
    Counters counters;
    std::vector<HttpExchange> out;
    ConnectionTracker tracker;
};

events::Data tls(events::Data d) {
    d.source = events::DataSource::kTls;
    return d;
}

// Ciphertext and plaintext of one connection, as the kernel reports them: two position spaces.
TEST(TlsSource, PlaintextIsParsedCiphertextIsDroppedAndCounted) {
    Harness h;
    EventBuilder sock(Role::kServer);
    EventBuilder plain(Role::kServer);
    h.tracker.on_event(sock.open(10));
    h.tracker.on_event(sock.read(kClientHello, 100, 110));  // before any plaintext
    h.tracker.on_event(sock.write(kAppData, 120, 130));
    h.tracker.on_event(tls(plain.read(kGet, 200, 210)));
    h.tracker.on_event(sock.read(kAppData, 205, 206));  // after: ciphertext of the request
    h.tracker.on_event(tls(plain.write(kOk, 300, 310)));
    h.tracker.on_event(sock.write(kAppData, 301, 302));

    ASSERT_EQ(h.out.size(), 1u);
    const HttpExchange& x = h.out[0];
    EXPECT_TRUE(x.tls);
    EXPECT_EQ(x.request.method, "GET");
    EXPECT_EQ(x.request.target, "/secure");
    ASSERT_TRUE(x.response);
    EXPECT_EQ(x.response->status, 200);
    EXPECT_EQ(x.request_start_ns, 210u);
    EXPECT_EQ(x.response_end_ns, 310u);
    EXPECT_EQ(h.counters.get("stream.tls_ciphertext_chunks"), 4u);
    EXPECT_EQ(h.counters.get("stream.tls_connections"), 1u);
    EXPECT_EQ(h.counters.get("stream.non_http_connections"), 0u);
}

// A connection whose socket bytes start with a TLS record but whose plaintext is never seen
// (library not hooked): nothing is parsed, nothing counted as non-HTTP.
TEST(TlsSource, UnhookedTlsIsIgnoredQuietly) {
    Harness h;
    EventBuilder sock(Role::kClient);
    h.tracker.on_event(sock.open(10));
    h.tracker.on_event(sock.write(kClientHello, 100, 110));
    h.tracker.on_event(sock.read(kAppData, 120, 130));
    h.tracker.on_event(sock.write(kAppData, 140, 150));
    h.tracker.flush_all();
    EXPECT_TRUE(h.out.empty());
    EXPECT_EQ(h.counters.get("stream.tls_ciphertext_chunks"), 3u);
    EXPECT_EQ(h.counters.get("stream.non_http_connections"), 0u);
    EXPECT_EQ(h.counters.get("stream.tls_connections"), 0u);
}

// Socket bytes taken for traffic before the first plaintext (no TLS record at their start):
// the connection starts over on the plaintext streams, positions from 0 again.
TEST(TlsSource, PlaintextAfterBufferedSocketBytesStartsOver) {
    Harness h;
    EventBuilder sock(Role::kClient);
    EventBuilder plain(Role::kClient);
    h.tracker.on_event(sock.open(10));
    h.tracker.on_event(sock.write("GET /half", 100, 110));  // unfinished, then TLS plaintext
    h.tracker.on_event(tls(plain.write(kGet, 200, 210)));
    h.tracker.on_event(tls(plain.read(kOk, 300, 310)));
    ASSERT_EQ(h.out.size(), 1u);
    EXPECT_TRUE(h.out[0].tls);
    EXPECT_EQ(h.out[0].request.target, "/secure");
    EXPECT_EQ(h.out[0].request_start_ns, 200u);
}

}  // namespace
}  // namespace passport::stream
