// The kernel's sk_msg program (bpf/probes/inject.bpf.c) on the host: a request that forwards,
// byte for byte, the Root and Parent of a request its process received (a proxy) gets Parent's
// 16 digits replaced by its call's id; nothing else changes, not even the length.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "inject_oracle.hpp"
#include "stub/bpf_stub.h"

namespace {

using pp_inject_oracle::hex;
using pp_inject_oracle::Sent;

constexpr const char* kRoot = "1-5759e988-bd862e3fe1be46a994272793";
constexpr const char* kParent = "53995c3f42cd8ad8";
constexpr uint64_t kSegment = 0x1122334455667788ULL;

// A fresh socket after the process received a request with kRoot / kParent.
Sent send_after_receiving(const std::vector<std::string>& msgs) {
    pp_inj_host_reset();
    EXPECT_EQ(pp_inj_host_received(kRoot, kParent, kSegment), 0);
    Sent s = pp_inject_oracle::send_messages(pp_inj_host_socket(0), msgs);
    for (int v : s.verdicts) EXPECT_EQ(v, 1);
    return s;
}

// `req` with the 16 characters at `at` replaced by the report's id.
std::string with_parent(std::string req, size_t at, const pp_inj_host_report& r) {
    req.replace(at, 16, hex(r.subsegment_id, 16));
    return req;
}

TEST(InjectRewriteHost, ForwardedHeaderNamesTheCallInPlace) {
    const std::string req = std::string("GET /up HTTP/1.1\r\nHost: u\r\nX-Amzn-Trace-Id: Root=") +
                            kRoot + ";Parent=" + kParent + ";Sampled=1\r\nAccept: */*\r\n\r\n";
    auto s = send_after_receiving({req});
    ASSERT_EQ(s.reports.size(), 1u);
    const auto& r = s.reports[0];
    EXPECT_EQ(r.outcome, PP_INJ_REWRITTEN);
    EXPECT_NE(r.subsegment_id, 0u);
    EXPECT_EQ(r.ctx_segment_id, kSegment) << "the report names the request it forwarded";
    EXPECT_EQ(r.ctx_from_thread, 1);
    ASSERT_EQ(s.out[0].size(), req.size());
    EXPECT_EQ(s.out[0], with_parent(req, req.find(kParent), r));
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_REWRITTEN), 1u);
    EXPECT_EQ(pp_inj_host_counter(PP_INJC_APP_HEADER), 0u);
}

// Keys in any case, blanks around parts, Self and Lineage kept as they are; the body after the
// head is never touched.
TEST(InjectRewriteHost, KeysInAnyCaseAndBlanksAreRead) {
    const std::string head = std::string("POST /x HTTP/1.1\r\nx-amzn-trace-id:  self=1-abc ; ") +
                             "ROOT=" + kRoot + " ;Lineage=a:1 ; parent = " + kParent +
                             " \r\nContent-Length: 16\r\n\r\n";
    const std::string req = head + kParent;
    auto s = send_after_receiving({req});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_REWRITTEN);
    EXPECT_EQ(s.out[0], with_parent(req, head.find(kParent), s.reports[0]));
}

// A key given twice counts with its last value, as the X-Ray SDKs read it: that one is rewritten.
TEST(InjectRewriteHost, DuplicatedParentRewritesTheLastOne) {
    const std::string req = std::string("GET / HTTP/1.1\r\nX-Amzn-Trace-Id: Root=") + kRoot +
                            ";Parent=0000000000000001;Parent=" + kParent + "\r\n\r\n";
    auto s = send_after_receiving({req});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_REWRITTEN);
    EXPECT_EQ(s.out[0], with_parent(req, req.rfind(kParent), s.reports[0]));
}

// A later malformed Parent is ignored, as the kernel's context parser reads it: the valid one is
// the received one, and is rewritten.
TEST(InjectRewriteHost, MalformedLaterParentIsIgnored) {
    const std::string req = std::string("GET / HTTP/1.1\r\nX-Amzn-Trace-Id: Root=") + kRoot +
                            ";Parent=" + kParent + ";Parent=zz\r\n\r\n";
    auto s = send_after_receiving({req});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_REWRITTEN);
    EXPECT_EQ(s.out[0], with_parent(req, req.find(kParent), s.reports[0]));
}

// Headers that are not the received one stay byte-identical: another Parent (the app's own SDK
// made a subsegment), another Root, a Parent of 15 or 17 digits, a Parent that came last but
// invalid, and a header whose Parent went out in an earlier send.
TEST(InjectRewriteHost, OtherHeadersStayIdentical) {
    const std::string root = std::string("Root=") + kRoot;
    const std::vector<std::string> values = {
        root + ";Parent=53995c3f42cd8ad9",
        "Root=1-5759e988-bd862e3fe1be46a994272794;Parent=" + std::string(kParent),
        root + ";Parent=53995c3f42cd8ad",
        root + ";Parent=53995c3f42cd8ad80",
        root + ";Parent=53995c3f 42cd8ad8",
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=" + std::string(kParent),
    };
    for (const auto& v : values) {
        const std::string req = "GET / HTTP/1.1\r\nX-Amzn-Trace-Id: " + v + "\r\n\r\n";
        auto s = send_after_receiving({req});
        ASSERT_EQ(s.reports.size(), 1u) << v;
        EXPECT_EQ(s.reports[0].outcome, PP_INJ_APP_HEADER) << v;
        EXPECT_EQ(s.out[0], req) << v;
    }
    const std::string first =
        std::string("GET / HTTP/1.1\r\nX-Amzn-Trace-Id: ") + root + ";Parent=" + kParent;
    auto s = send_after_receiving({first, ";Sampled=1\r\n\r\n"});
    ASSERT_EQ(s.reports.size(), 1u);
    EXPECT_EQ(s.reports[0].outcome, PP_INJ_APP_HEADER);
    EXPECT_EQ(s.out[0] + s.out[1], first + ";Sampled=1\r\n\r\n");
}

// A head split anywhere over two sends, with Parent's digits in the second: rewritten there.
TEST(InjectRewriteHost, SplitHeadIsRewrittenWhereTheDigitsAre) {
    const std::string req = std::string("GET /s HTTP/1.1\r\nX-Amzn-Trace-Id: Root=") + kRoot +
                            ";Parent=" + kParent + "\r\nHost: h\r\n\r\n";
    const size_t digits = req.find(kParent);
    for (size_t cut = 1; cut <= digits; cut++) {
        auto s = send_after_receiving({req.substr(0, cut), req.substr(cut)});
        ASSERT_EQ(s.reports.size(), 1u) << cut;
        ASSERT_EQ(s.reports[0].outcome, PP_INJ_REWRITTEN) << cut;
        EXPECT_EQ(s.out[0] + s.out[1], with_parent(req, digits, s.reports[0])) << cut;
    }
}

}  // namespace
