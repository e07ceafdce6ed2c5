// The Go net/http client handoff in userspace (userspace/correlate/go_handoff.hpp): its event
// decoded and recorded, the thread's latest handoff matched against an injection's context, and
// the link it makes is known; and IPv4-mapped IPv6 endpoints compared as IPv4
// (userspace/correlate/endpoint_key.hpp).
#include <sys/socket.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "bpf/include/passport/abi.h"
#include "userspace/correlate/endpoint_key.hpp"
#include "userspace/correlate/go_handoff.hpp"
#include "userspace/correlate/link_rule.hpp"
#include "userspace/events/decoder.hpp"
#include "userspace/events/recording.hpp"

namespace passport::correlate {
namespace {

events::GoHandoff handoff(uint32_t tgid, uint32_t tid, events::ConnKey conn, uint64_t pos) {
    events::GoHandoff h;
    h.tgid = tgid;
    h.tid = tid;
    h.ctx_conn = conn;
    h.ctx_request_pos = pos;
    return h;
}

bool takes(GoHandoffs& g, uint32_t tgid, uint32_t tid, events::ConnKey conn, uint64_t pos) {
    auto h = g.take(tgid, tid);
    return h && h->conn == conn && h->request_pos == pos;
}

TEST(GoHandoffs, TheThreadsLatestHandoffNamesItsNextCallOnce) {
    GoHandoffs g;
    const events::ConnKey a{7, 5, 100};
    const events::ConnKey b{7, 6, 200};
    EXPECT_FALSE(g.take(7, 8));
    g.saw(handoff(7, 8, a, 0));
    EXPECT_FALSE(g.take(7, 9)) << "another thread was handed nothing";
    EXPECT_TRUE(takes(g, 7, 8, a, 0));
    EXPECT_FALSE(g.take(7, 8)) << "taken by the call it was handed for";
    g.saw(handoff(7, 8, a, 512));
    g.saw(handoff(7, 8, b, 0));
    EXPECT_TRUE(takes(g, 7, 8, b, 0)) << "the latest handoff names the call written now";
    g.saw(handoff(7, 8, a, 0));
    g.saw(handoff(7, 8, {0, 0, 0}, 0));  // the thread's next call was handed nothing
    EXPECT_FALSE(g.take(7, 8)) << "an older handoff must not name a call of unknown request";
    g.saw(handoff(7, 8, b, 0));
    g.forget_process(7);
    EXPECT_FALSE(g.take(7, 8));
    EXPECT_EQ(g.size(), 0U);
}

TEST(GoHandoffs, BoundedByThreads) {
    GoHandoffs g(2);
    g.saw(handoff(1, 1, {1, 3, 1}, 0));
    g.saw(handoff(1, 2, {1, 3, 1}, 0));
    g.saw(handoff(1, 2, {1, 4, 1}, 0));  // a known thread: no growth
    EXPECT_EQ(g.size(), 2U);
    g.saw(handoff(1, 3, {1, 3, 1}, 0));
    EXPECT_LE(g.size(), 2U);
    EXPECT_TRUE(takes(g, 1, 3, {1, 3, 1}, 0));
}

TEST(GoHandoffs, ItsLinkIsKnownOnAThreadServingMany) {
    EXPECT_FALSE(link_is_inferred(LinkRule::kGoHandoff, true, 8));
    EXPECT_EQ(link_rule_name(LinkRule::kGoHandoff), "go_handoff");
    Counters c;
    count_link(c, LinkRule::kGoHandoff, false);
    EXPECT_EQ(c.get("correlate.links_go_handoff"), 1U);
    EXPECT_EQ(c.get("correlate.links_exact"), 1U);
}

TEST(GoHandoffEvent, DecodesAndRoundTripsThroughRecordings) {
    pp_go_handoff_event ev{};
    ev.hdr.kind = PP_EV_GO_HANDOFF;
    ev.hdr.tgid = 10;
    ev.hdr.tid = 12;
    ev.hdr.ts_ns = 999;
    ev.ctx_conn = {10, 5, 77};
    ev.request_pos = 4096;
    std::vector<uint8_t> rec(sizeof ev);
    std::memcpy(rec.data(), &ev, sizeof ev);
    auto d = events::decode(rec);
    ASSERT_TRUE(d.ok()) << d.error();
    const auto* h = std::get_if<events::GoHandoff>(&*d);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(h->tid, 12U);
    EXPECT_EQ(h->ctx_conn, (events::ConnKey{10, 5, 77}));
    EXPECT_EQ(h->ctx_request_pos, 4096U);
    auto back = events::from_json_line(events::to_json_line(*d));
    ASSERT_TRUE(back.ok()) << back.error();
    const auto* h2 = std::get_if<events::GoHandoff>(&*back);
    ASSERT_NE(h2, nullptr);
    EXPECT_EQ(h2->ctx_conn, h->ctx_conn);
    EXPECT_EQ(h2->ctx_request_pos, h->ctx_request_pos);
    EXPECT_EQ(h2->tid, h->tid);

    ev.ctx_conn.tgid = 11;  // a request of another process: never handed over
    std::memcpy(rec.data(), &ev, sizeof ev);
    EXPECT_FALSE(events::decode(rec).ok());
    ev.ctx_conn = {0, 0, 0};  // nothing handed over
    std::memcpy(rec.data(), &ev, sizeof ev);
    EXPECT_TRUE(events::decode(rec).ok());
    rec.resize(sizeof ev - 1);
    EXPECT_FALSE(events::decode(rec).ok());
}

events::Endpoint endpoint(uint16_t family, uint16_t port, std::vector<uint8_t> bytes) {
    events::Endpoint e;
    e.family = family;
    e.port = port;
    std::copy(bytes.begin(), bytes.end(), e.addr.begin());
    return e;
}

TEST(ComparableEndpoint, Ipv4MappedIpv6IsTheIpv4Endpoint) {
    const auto v4 = endpoint(AF_INET, 8080, {10, 0, 0, 2});
    const auto mapped =
        endpoint(AF_INET6, 8080, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2});
    EXPECT_EQ(comparable_endpoint(mapped), v4);
    EXPECT_EQ(comparable_endpoint(v4), v4);
    EXPECT_EQ(comparable_endpoint(mapped).ip_string(), "10.0.0.2");
}

TEST(ComparableEndpoint, OtherIpv6AddressesAreLeftAlone) {
    const auto loopback6 = endpoint(AF_INET6, 80, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
    EXPECT_EQ(comparable_endpoint(loopback6), loopback6);
    // ::a.b.c.d (IPv4-compatible, deprecated) and 64:ff9b::/96 (NAT64) are other addresses.
    const auto compat = endpoint(AF_INET6, 80, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2});
    EXPECT_EQ(comparable_endpoint(compat), compat);
    const auto nat64 =
        endpoint(AF_INET6, 80, {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2});
    EXPECT_EQ(comparable_endpoint(nat64), nat64);
    // The mapped prefix on a socket that says it is IPv4 is not rewritten.
    const auto odd = endpoint(AF_INET, 80, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4});
    EXPECT_EQ(comparable_endpoint(odd), odd);
}

}  // namespace
}  // namespace passport::correlate
