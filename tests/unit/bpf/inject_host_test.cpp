// The kernel's sk_msg injection program (bpf/probes/inject.bpf.c), run on the host through
// tests/bpf_host, checked by the oracle of tests/bpf_host/inject_oracle.hpp: one line per request
// without its own X-Amzn-Trace-Id, at the documented place, nothing else changed.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "inject_oracle.hpp"
#include "stub/bpf_stub.h"

namespace {

using namespace pp_inject_oracle;

Sent send_all(const std::vector<std::string>& msgs, int adopted = 0) {
    pp_inj_host_reset();
    Sent s = send_messages(pp_inj_host_socket(adopted), msgs);
    for (int v : s.verdicts) EXPECT_EQ(v, 1);
    return s;
}

std::string line_for(const pp_inj_host_report& r, const std::string& out) {
    size_t at = out.find("X-Amzn-Trace-Id: Root=1-");
    EXPECT_NE(at, std::string::npos);
    std::string l = out.substr(at, PP_INJECT_LINE_LEN);
    EXPECT_EQ(l.substr(57, 24), ";Parent=" + hex(r.subsegment_id, 16));
    return l;
}

TEST(InjectHost, WholeHeadGetsLineAfterRequestLine) {
    const std::string req = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    auto s = send_all({req});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_INJECTED);
    EXPECT_EQ(s.reports[0].app_pos, 0u);
    const std::string l = line_for(s.reports[0], s.out[0]);
    EXPECT_EQ(s.out[0], "GET /a HTTP/1.1\r\n" + l + "Host: h\r\n\r\n");
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_INJECTED), 1u);
}

TEST(InjectHost, SplitHeadGetsLineBeforeBlankLine) {
    auto s = send_all({"POST /a HTTP/1.1\r\nHo", "st: h\r\nContent-Length: 3\r\n\r\nabc"});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_INJECTED);
    const std::string l = line_for(s.reports[0], s.out[1]);
    EXPECT_EQ(s.out[0], "POST /a HTTP/1.1\r\nHo");
    EXPECT_EQ(s.out[1], "st: h\r\nContent-Length: 3\r\n" + l + "\r\nabc");
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_SPLIT_INJECTED), 1u);
}

TEST(InjectHost, MessageEndingOnBlankCrGetsLineBeforeThatCr) {
    auto s = send_all({"GET / HTTP/1.1\r\n", "Host: h\r\n\r", "\nGET /2 HTTP/1.1\r\n\r\n"});
    ASSERT_EQ(s.reports.size(), 2u);
    const std::string l = line_for(s.reports[0], s.out[1]);
    EXPECT_EQ(s.out[1], "Host: h\r\n" + l + "\r");
    EXPECT_EQ(s.out[2].substr(0, 18), "\nGET /2 HTTP/1.1\r\n");
    EXPECT_EQ(s.out[2].size(), 20u + PP_INJECT_LINE_LEN);
}

TEST(InjectHost, OwnHeaderInAnyCaseLeavesBytesIdentical) {
    const std::string req =
        "PUT / HTTP/1.1\r\nx-AMZN-trace-ID: Root=1-5759e988-bd862e3fe1be46a994272793\r\n\r\n";
    auto s = send_all({req});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_APP_HEADER);
    EXPECT_EQ(s.out[0], req);
}

TEST(InjectHost, NotHttpIsLeftAlone) {
    const std::vector<std::string> msgs = {"\x16\x03\x01", "GET / HTTP/1.1\r\n\r\n"};
    auto s = send_all(msgs, 1);
    EXPECT_EQ(s.out, msgs);
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_INJECTED), 0u);
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_NOT_HTTP), 1u);
}

TEST(InjectHost, RandomStreamsAndCutsMatchTheOracle) {
    for (uint64_t seed = 1; seed <= 3000; seed++) {
        Source r(nullptr, 0, seed);
        Stream st = make_stream(r, 6);
        auto cuts = make_cuts(r, st.bytes, &st);
        std::string err = check_stream(st, cuts, static_cast<int>(seed & 1));
        ASSERT_EQ(err, "") << "seed " << seed;
    }
}

TEST(InjectHost, ArbitraryBytesOnlyGetLinesInserted) {
    for (uint64_t seed = 1; seed <= 3000; seed++) {
        Source r(nullptr, 0, seed);
        Stream st = make_stream(r, 3);
        std::string in = st.bytes;
        damage(r, in);  // flip, drop or insert bytes at random places
        auto cuts = make_cuts(r, in, nullptr);
        Result res;
        ASSERT_EQ(run(in, cuts, static_cast<int>(seed & 1), res), "") << "seed " << seed;
    }
}

TEST(InjectHost, NonHttpFirstBytesLeaveTheWholeStreamIdentical) {
    for (uint64_t seed = 1; seed <= 500; seed++) {
        Source r(nullptr, 0, seed);
        Stream st = make_stream(r, 3);
        std::string in = std::string(1, "\x16 a0\r\n"[r.below(6)]) + st.bytes;
        auto cuts = make_cuts(r, in, nullptr);
        Result res;
        ASSERT_EQ(run(in, cuts, static_cast<int>(seed & 1), res), "") << "seed " << seed;
        EXPECT_TRUE(res.inserted.empty()) << "seed " << seed;
    }
}

TEST(InjectHost, BodyBytesSentWithoutTheProgramAreSkipped) {
    pp_inj_host_reset();
    int sock = pp_inj_host_socket(0);
    const uint8_t* o = nullptr;
    size_t n = 0;
    const std::string head =
        "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(10, 'b');
    pp_inj_host_send(sock, reinterpret_cast<const uint8_t*>(head.data()), head.size(), &o, &n);
    EXPECT_EQ(n, head.size() + PP_INJECT_LINE_LEN);
    // Bytes are skipped only after a message without an insert (a partly sent message with
    // an inserted line cannot be told apart).
    const std::string more(10, 'b');
    pp_inj_host_send(sock, reinterpret_cast<const uint8_t*>(more.data()), more.size(), &o, &n);
    EXPECT_EQ(n, more.size());
    pp_inj_host_bypass(sock, 40);
    const std::string rest = std::string(40, 'b') + "GET / HTTP/1.1\r\n\r\n";
    pp_inj_host_send(sock, reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), &o, &n);
    EXPECT_EQ(n, rest.size() + PP_INJECT_LINE_LEN);
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_RESYNCED), 1u);
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_INJECTED), 2u);
    EXPECT_FALSE(pp_inj_host_dead(sock));
}

TEST(InjectHost, HeadBytesSentWithoutTheProgramStopInjection) {
    pp_inj_host_reset();
    int sock = pp_inj_host_socket(0);
    const uint8_t* o = nullptr;
    size_t n = 0;
    const std::string first = "GET / HTTP/1.1\r\nHost: h\r\n";
    pp_inj_host_send(sock, reinterpret_cast<const uint8_t*>(first.data()), first.size(), &o, &n);
    pp_inj_host_bypass(sock, 5);
    const std::string rest = "\r\nGET /2 HTTP/1.1\r\n\r\n";
    pp_inj_host_send(sock, reinterpret_cast<const uint8_t*>(rest.data()), rest.size(), &o, &n);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(o), n), rest);
    EXPECT_TRUE(pp_inj_host_dead(sock));
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_FRAMING_LOST), 1u);
}

TEST(InjectHost, FailedPushLeavesTheRequestUnmodified) {
    pp_inj_host_reset();
    int sock = pp_inj_host_socket(0);
    pp_stub_msg_fail_at(1, 0);
    const std::string req = "GET / HTTP/1.1\r\n\r\n";
    const uint8_t* o = nullptr;
    size_t n = 0;
    pp_inj_host_send(sock, reinterpret_cast<const uint8_t*>(req.data()), req.size(), &o, &n);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(o), n), req);
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_SKIP_FAILED), 1u);
}

}  // namespace
