// The kernel's head scan (bpf/lib/ctx_parse.bpf.h, run on the host through tests/bpf_host) and
// the userspace parsers (userspace/xray/trace_header.*) read every case of the trace-header corpus
// alike: the head arriving in one read, and in reads of 1000 bytes (a head continued from read to
// read). The e2e test TraceHeaderDifferential holds both to the X-Ray SDK for Node.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "ctx_parse_host.h"
#include "passport/abi.h"
#include "tests/support/trace_header_corpus.hpp"

namespace passport::testing {
namespace {

HeaderReading kernel_reading(const HeaderCase& c, size_t read_size) {
    const std::string head = request_head(c, "/corpus");
    pp_host_head_result r{};
    const uint8_t nl = '\n';
    pp_host_head_scan_reads(reinterpret_cast<const uint8_t*>(head.data()), head.size(), read_size,
                            &nl, 1, 1, 0, &r);
    HeaderReading out;
    if (r.source == PP_CTX_MINTED || !r.emitted) {
        out.trace = "new";
        return out;  // sampled by the rules, which sample everything here
    }
    out.trace = r.root;
    if (r.parent_id != 0) {
        std::array<char, 17> hex{};
        std::snprintf(hex.data(), hex.size(), "%016llx",
                      static_cast<unsigned long long>(r.parent_id));
        out.parent = hex.data();
    }
    out.sampled = r.sampled != PP_SAMPLED_NO;
    return out;
}

TEST(TraceHeaderCorpus, KernelScanReadsEveryCaseAsUserspaceDoes) {
    const auto cases = load_trace_header_corpus();
    ASSERT_GE(cases.size(), 60u) << "tests/fixtures/trace_header_corpus.json";
    for (const auto& c : cases) {
        const HeaderReading user = userspace_reading(c);
        EXPECT_EQ(describe(kernel_reading(c, 0)), describe(user)) << c.name << " (one read)";
        EXPECT_EQ(describe(kernel_reading(c, 1000)), describe(user))
            << c.name << " (1000-byte reads)";
    }
}

TEST(TraceHeaderCorpus, HeadEndNotSeenWithinTheBudgetKeepsWhatWasFound) {
    HeaderCase c{
        "unended", {"X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0"}, ""};
    std::string head = request_head(c, "/corpus");
    head.resize(head.size() - 2);                                      // no blank line...
    head += "Cookie: a=" + std::string(PP_HEAD_BUDGET, 'c') + "\r\n";  // ...within the budget
    pp_host_head_result r{};
    const uint8_t nl = '\n';
    pp_host_head_scan_reads(reinterpret_cast<const uint8_t*>(head.data()), head.size(), 3000, &nl,
                            1, 1, 0, &r);
    EXPECT_EQ(r.emitted, 1);
    EXPECT_EQ(r.head_ended, 0);
    EXPECT_EQ(r.pending, 0);
    EXPECT_EQ(r.source, PP_CTX_XRAY_HEADER);
    EXPECT_STREQ(r.root, "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(r.sampled, PP_SAMPLED_NO);
}

}  // namespace
}  // namespace passport::testing
