// The kernel's server-side trace-context scan (bpf/lib/ctx_parse.bpf.h), run on the host through
// tests/bpf_host, on heads whose reading must match the userspace parsers
// (userspace/xray/trace_header.*). The ctx_parse fuzz target checks the same relation on
// arbitrary heads.
#include <gtest/gtest.h>

#include <string>

#include "ctx_parse_host.h"
#include "passport/abi.h"

namespace {

constexpr const char* kRoot = "1-5759e988-bd862e3fe1be46a994272793";

pp_host_head_result scan(const std::string& head) {
    pp_host_head_result r{};
    const uint8_t nl = '\n';
    pp_host_head_scan(reinterpret_cast<const uint8_t*>(head.data()), head.size(), &nl, 1, 1, 0, &r);
    return r;
}

std::string with_trace_header(const std::string& value) {
    return "GET / HTTP/1.1\r\nHost: a\r\nX-Amzn-Trace-Id: " + value + "\r\n\r\n";
}

TEST(CtxParseHost, ReadsRootParentAndSampled) {
    const auto r = scan(
        with_trace_header(std::string("Root=") + kRoot + ";Parent=53995c3f42cd8ad8;Sampled=1"));
    EXPECT_EQ(r.xray, 1u);
    EXPECT_EQ(r.source, PP_CTX_XRAY_HEADER);
    EXPECT_STREQ(r.root, kRoot);
    EXPECT_EQ(r.parent_id, 0x53995c3f42cd8ad8ULL);
    EXPECT_EQ(r.sampled, PP_SAMPLED_YES);
    EXPECT_EQ(r.emitted, 1);
    EXPECT_EQ(r.stored, 1);
}

TEST(CtxParseHost, ReadsTraceparent) {
    const auto r = scan(
        "GET / HTTP/1.1\r\ntraceparent: "
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
    EXPECT_EQ(r.traceparent, 1u);
    EXPECT_EQ(r.source, PP_CTX_TRACEPARENT);
    EXPECT_STREQ(r.root, "1-4bf92f35-77b34da6a3ce929d0e0e4736");
    EXPECT_EQ(r.parent_id, 0x00f067aa0ba902b7ULL);
    EXPECT_EQ(r.sampled, PP_SAMPLED_YES);
}

// Userspace takes only "1", "0" and "?" as a Sampled value and ignores any other; the kernel
// used to take the decision from the first character of a longer value.
TEST(CtxParseHost, MalformedSampledValueIsNoDecision) {
    for (const char* sampled : {"1Sampled=1", "1x", "0 0", "?1"}) {
        const auto r =
            scan(with_trace_header(std::string("Root=") + kRoot + ";Sampled=" + sampled));
        EXPECT_EQ(r.xray, 1u) << sampled;
        EXPECT_EQ(r.sampled, PP_SAMPLED_UNKNOWN) << sampled;
    }
    const auto ok = scan(with_trace_header(std::string("Root=") + kRoot + ";Sampled=0 "));
    EXPECT_EQ(ok.sampled, PP_SAMPLED_NO);
}

// Userspace trims blanks around a key but not inside it: "Ro ot" is not Root. The kernel used
// to skip blanks anywhere in a key.
TEST(CtxParseHost, BlankInsideKeyIsNotTheKey) {
    const auto r = scan(with_trace_header(std::string("Ro ot=") + kRoot));
    EXPECT_EQ(r.xray, 2u);
    EXPECT_EQ(r.source, PP_CTX_MINTED);
    const auto parent =
        scan(with_trace_header(std::string("Root=") + kRoot + ";Pa rent=53995c3f42cd8ad8"));
    EXPECT_EQ(parent.xray, 1u);
    EXPECT_EQ(parent.parent_id, 0u);
    const auto padded =
        scan(with_trace_header(std::string(" Root =\t") + kRoot + " ; Sampled = 1 "));
    EXPECT_EQ(padded.xray, 1u);
    EXPECT_STREQ(padded.root, kRoot);
    EXPECT_EQ(padded.sampled, PP_SAMPLED_YES);
}

}  // namespace
