#include "userspace/xray/trace_header.hpp"

#include <gtest/gtest.h>

#include <string>

namespace passport::xray {
namespace {

// Trace ids and parents as the X-Ray SDKs (Go, Node.js, Python) and OpenTelemetry write them.
constexpr const char* kGoRoot = "1-57ff426a-80c11c39b0c928905eb0828d";
constexpr const char* kNodeRoot = "1-58ed6027-14afb2e09172c337713486c0";
constexpr const char* kNodeParent = "48af77592b6dd73f";
constexpr const char* kPyRoot = "1-5759e988-bd862e3fe1be46a994272793";
constexpr const char* kPyParent = "53995c3f42cd8ad8";
constexpr const char* kOtelRoot = "1-8a3c60f7-d188f8fa79d48a391a778fa6";
constexpr const char* kOtelParent = "53995c3f42cd8ad8";

std::string s(const char* a, const char* b = "", const char* c = "", const char* d = "") {
    return std::string(a) + b + c + d;
}

// --- sdk-go header_test.go / sdk-java TraceHeaderTest ---

TEST(XrayTraceHeader, GoSampledOnly) {
    const TraceHeader h = parse_trace_header("Sampled=1");
    EXPECT_EQ(h.sampled, SampledFlag::kSampled);
    EXPECT_FALSE(h.has_root());
    EXPECT_TRUE(h.parent.empty());
    EXPECT_TRUE(h.extras.empty());
}

TEST(XrayTraceHeader, GoRequestedWithSelfAndExtra) {
    for (const char* sep : {";", "; "}) {
        const std::string value = s("Sampled=?", sep, "Root=", kGoRoot) + s(sep, "Parent=foo") +
                                  s(sep, "Self=2", sep, "Foo=bar");
        const TraceHeader h = parse_trace_header(value);
        EXPECT_EQ(h.sampled, SampledFlag::kRequested) << value;
        EXPECT_EQ(h.root, kGoRoot) << value;
        // The SDKs keep "foo"; Passport requires 16 hex so a hostile Parent cannot reach a
        // document, and "foo" is ignored.
        EXPECT_EQ(h.parent, "") << value;
        ASSERT_EQ(h.extras.size(), 1u) << value;  // Self dropped
        EXPECT_EQ(h.extras[0].first, "Foo");
        EXPECT_EQ(h.extras[0].second, "bar");
    }
}

TEST(XrayTraceHeader, GoToStringWithExtraInCanonicalOrder) {
    EXPECT_EQ(format_trace_header(kGoRoot, kPyParent, true, {{"Foo", "bar"}}),
              s("Root=", kGoRoot, ";Parent=", kPyParent) + ";Sampled=1;Foo=bar");
}

// --- sdk-node processTraceData ---

TEST(XrayTraceHeader, NodeMixedCaseKeysWithAndWithoutSpaces) {
    for (const std::string& value :
         {s("RoOt=", kNodeRoot, ";PaREnT=", kNodeParent) + ";saMpLed=1",
          s("RoOt=", kNodeRoot, "; PaREnT=", kNodeParent) + "; saMpLed=1",
          s(" RoOt = ", kNodeRoot, " ;  PaREnT=", kNodeParent) + " ;saMpLed = 1 "}) {
        const TraceHeader h = parse_trace_header(value);
        EXPECT_EQ(h.root, kNodeRoot) << value;
        EXPECT_EQ(h.parent, kNodeParent) << value;
        EXPECT_EQ(h.sampled, SampledFlag::kSampled) << value;
    }
}

TEST(XrayTraceHeader, NodeTrailingSemicolon) {
    const TraceHeader h = parse_trace_header(s("Root=", kNodeRoot, ";"));
    EXPECT_EQ(h.root, kNodeRoot);
    EXPECT_EQ(h.parent, "");
    EXPECT_EQ(h.sampled, SampledFlag::kAbsent);
    EXPECT_TRUE(h.extras.empty());
}

TEST(XrayTraceHeader, NodeMalformedPartsAreIgnored) {
    for (const char* bad : {";Parent", ";=48af77592b6dd73f", ";Parent="}) {
        const TraceHeader h = parse_trace_header(s("Root=", kNodeRoot, bad));
        EXPECT_EQ(h.root, kNodeRoot) << bad;
        EXPECT_EQ(h.parent, "") << bad;
        EXPECT_TRUE(h.extras.empty()) << bad;
    }
}

TEST(XrayTraceHeader, NodeExtraKept) {
    const TraceHeader h = parse_trace_header(s("Root=", kNodeRoot, ";Foo=bar"));
    ASSERT_EQ(h.extras.size(), 1u);
    EXPECT_EQ(h.extras[0], (std::pair<std::string, std::string>{"Foo", "bar"}));
}

TEST(XrayTraceHeader, NodeExtrasCappedAt256Bytes) {
    const std::string value = s("Root=", kNodeRoot, ";Foo=bar;Baz=") + std::string(251, 'a');
    const TraceHeader h = parse_trace_header(value);
    ASSERT_EQ(h.extras.size(), 1u);
    EXPECT_EQ(h.extras[0].first, "Foo");
    // Exactly at the cap is still kept: 3 + 253 = 256.
    const TraceHeader at_cap =
        parse_trace_header(s("Root=", kNodeRoot, ";Baz=") + std::string(253, 'a'));
    EXPECT_EQ(at_cap.extras.size(), 1u);
}

// --- sdk-python test_trace_header.py ---

TEST(XrayTraceHeader, PythonNoSampled) {
    const TraceHeader h = parse_trace_header(s("Root=", kPyRoot, ";Parent=", kPyParent));
    EXPECT_EQ(h.root, kPyRoot);
    EXPECT_EQ(h.parent, kPyParent);
    EXPECT_EQ(h.sampled, SampledFlag::kAbsent);
}

TEST(XrayTraceHeader, PythonNoParent) {
    const TraceHeader h = parse_trace_header(s("Root=", kPyRoot, ";Sampled=1"));
    EXPECT_EQ(h.root, kPyRoot);
    EXPECT_EQ(h.parent, "");
    EXPECT_EQ(h.sampled, SampledFlag::kSampled);
}

TEST(XrayTraceHeader, PythonSampledRequested) {
    const TraceHeader h =
        parse_trace_header(s("Root=", kPyRoot, ";Parent=", kPyParent) + ";Sampled=?");
    EXPECT_EQ(h.sampled, SampledFlag::kRequested);
}

TEST(XrayTraceHeader, PythonExtrasRoundTrip) {
    const TraceHeader h = parse_trace_header(s("Root=", kPyRoot, ";k1=v1;k2=v2"));
    EXPECT_EQ(format_trace_header(h.root, kPyParent, true, h.extras),
              s("Root=", kPyRoot, ";Parent=", kPyParent) + ";Sampled=1;k1=v1;k2=v2");
}

TEST(XrayTraceHeader, PythonInvalidString) {
    const TraceHeader h = parse_trace_header("some invalid string");
    EXPECT_FALSE(h.has_root());
    EXPECT_EQ(h.parent, "");
    EXPECT_EQ(h.sampled, SampledFlag::kAbsent);
    EXPECT_TRUE(h.extras.empty());
}

// --- otel-js / otel-java AWSXRayPropagator ---

TEST(XrayTraceHeader, OtelInject) {
    EXPECT_EQ(format_trace_header(kOtelRoot, kOtelParent, true),
              "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=1");
    EXPECT_EQ(format_trace_header(kOtelRoot, kOtelParent, false),
              "Root=1-8a3c60f7-d188f8fa79d48a391a778fa6;Parent=53995c3f42cd8ad8;Sampled=0");
}

TEST(XrayTraceHeader, OtelValidExtracts) {
    for (const std::string& value :
         {s("Root=", kOtelRoot, ";Parent=", kOtelParent) + ";Sampled=1",
          s("Parent=", kOtelParent, ";Sampled=1;Root=", kOtelRoot),
          s("Root=", kOtelRoot, ";Parent=", kOtelParent) + ";Sampled=1;Foo=Bar"}) {
        const TraceHeader h = parse_trace_header(value);
        EXPECT_EQ(h.root, kOtelRoot) << value;
        EXPECT_EQ(h.parent, kOtelParent) << value;
        EXPECT_EQ(h.sampled, SampledFlag::kSampled) << value;
    }
}

TEST(XrayTraceHeader, OtelInvalidRootsGiveNoRoot) {
    for (const char* root :
         {"1-abcdefgh-ijklmnopabcdefghijklmnop", "1-8a3c60f7-d188f8fa79d48a391a778fa600",
          "1*8a3c60f7+d188f8fa79d48a391a778fa6", "2-8a3c60f7-d188f8fa79d48a391a778fa6",
          "1-64fbd5a9-2202432c9dfed25ae1e6996", "1--d188f8fa79d48a391a778fa6",
          "1-8a3c60f711-d188f8fa79d48a391a778fa6"}) {
        const TraceHeader h =
            parse_trace_header(s("Root=", root, ";Parent=", kOtelParent) + ";Sampled=1");
        EXPECT_FALSE(h.has_root()) << root;
        // The rest of the header is still read: Parent/Sampled stay usable for the caller.
        EXPECT_EQ(h.parent, kOtelParent) << root;
        EXPECT_EQ(h.sampled, SampledFlag::kSampled) << root;
    }
}

TEST(XrayTraceHeader, OtelInvalidParentsAreIgnored) {
    for (const char* parent : {"abcdefghijklmnop", "53995c3f42cd8ad800"}) {
        const TraceHeader h =
            parse_trace_header(s("Root=", kOtelRoot, ";Parent=", parent) + ";Sampled=1");
        EXPECT_EQ(h.root, kOtelRoot) << parent;
        EXPECT_EQ(h.parent, "") << parent;
    }
}

TEST(XrayTraceHeader, OtelInvalidSampledIsAbsent) {
    for (const char* sampled : {"", "10220", "a"}) {
        const TraceHeader h = parse_trace_header(s("Root=", kOtelRoot, ";Parent=", kOtelParent) +
                                                 ";Sampled=" + sampled);
        EXPECT_EQ(h.sampled, SampledFlag::kAbsent) << sampled;
    }
}

TEST(XrayTraceHeader, RootWithoutParentIsKept) {
    // otel rejects this whole header; Passport continues the trace as a segment without parent.
    const TraceHeader h = parse_trace_header("Root=1-622422bf-59625fe25708d4660735d8ef");
    EXPECT_EQ(h.root, "1-622422bf-59625fe25708d4660735d8ef");
    EXPECT_EQ(h.parent, "");
}

// --- Passport's own rules ---

TEST(XrayTraceHeader, IdsAreLowercased) {
    const TraceHeader h =
        parse_trace_header("Root=1-5759E988-BD862E3FE1BE46A994272793;Parent=53995C3F42CD8AD8");
    EXPECT_EQ(h.root, "1-5759e988-bd862e3fe1be46a994272793");
    EXPECT_EQ(h.parent, "53995c3f42cd8ad8");
}

TEST(XrayTraceHeader, ZeroIdsAreInvalid) {
    const TraceHeader h = parse_trace_header(
        "Root=1-5759e988-000000000000000000000000;Parent=0000000000000000;Sampled=1");
    EXPECT_FALSE(h.has_root());
    EXPECT_EQ(h.parent, "");
    EXPECT_TRUE(is_valid_trace_id("1-00000000-000000000000000000000001"));
}

TEST(XrayTraceHeader, HostileRootNeverSurvives) {
    for (const std::string& root :
         {s(kNodeRoot, R"(","x":")"), s(kNodeRoot, "\r\nX-Evil: 1"), s(kNodeRoot, "0"),
          std::string("1-58ed6027-14afb2e09172c337713486c\""),
          std::string("1-58ed60z7-14afb2e09172c337713486c0"), std::string(kNodeRoot) + '\0'}) {
        EXPECT_FALSE(parse_trace_header("Root=" + root).has_root()) << root;
    }
    // Surrounding spaces are padding, not part of the id.
    EXPECT_EQ(parse_trace_header(s("Root=  ", kNodeRoot, "  ")).root, kNodeRoot);
}

TEST(XrayTraceHeader, ExtrasWithControlCharactersAreDropped) {
    const TraceHeader h =
        parse_trace_header(s("Root=", kNodeRoot, ";Evil=a\r\nX-Injected: 1;Ok=1;Sp ace=x"));
    ASSERT_EQ(h.extras.size(), 1u);
    EXPECT_EQ(h.extras[0].first, "Ok");
}

TEST(XrayTraceHeader, LastOccurrenceWins) {
    const TraceHeader h =
        parse_trace_header(s("Sampled=1;Root=", kPyRoot, ";Sampled=0;Root=", kNodeRoot));
    EXPECT_EQ(h.sampled, SampledFlag::kNotSampled);
    EXPECT_EQ(h.root, kNodeRoot);
    const TraceHeader repeated_extra = parse_trace_header("Lineage=a;Foo=1;Lineage=b");
    ASSERT_EQ(repeated_extra.extras.size(), 2u);
    EXPECT_EQ(repeated_extra.extras[0], (std::pair<std::string, std::string>{"Lineage", "b"}));
}

// As the kernel's scan reads them (bpf/lib/ctx_parse.bpf.h): a later malformed Root voids an
// earlier valid one, a later malformed Parent or Sampled is ignored.
TEST(XrayTraceHeader, LaterMalformedRootVoidsButMalformedParentOrSampledDoesNot) {
    EXPECT_FALSE(parse_trace_header(s("Root=", kPyRoot, ";Root=garbage;Sampled=1")).has_root());
    const TraceHeader h = parse_trace_header(s("Root=", kPyRoot, ";Parent=", kPyParent) +
                                             ";Parent=zz;Sampled=0;Sampled=x");
    EXPECT_EQ(h.root, kPyRoot);
    EXPECT_EQ(h.parent, kPyParent);
    EXPECT_EQ(h.sampled, SampledFlag::kNotSampled);
}

TEST(XrayTraceHeader, LineageIsCarriedOpaque) {
    const TraceHeader h = parse_trace_header(s("Root=", kPyRoot, ";Parent=", kPyParent) +
                                             ";Sampled=1;Lineage=a87bd80c:1|68fd508a:5");
    EXPECT_EQ(
        format_trace_header(h.root, "1234567890abcdef", true, h.extras),
        s("Root=", kPyRoot, ";Parent=1234567890abcdef;Sampled=1;Lineage=a87bd80c:1|68fd508a:5"));
}

TEST(XrayTraceHeader, OverlongInputIsIgnoredWhole) {
    const std::string base = s("Root=", kPyRoot, ";Parent=", kPyParent) + ";Sampled=1;Pad=";
    const std::string at_limit = base + std::string(kMaxTraceHeaderLength - base.size(), 'x');
    ASSERT_EQ(at_limit.size(), kMaxTraceHeaderLength);
    EXPECT_EQ(parse_trace_header(at_limit).root, kPyRoot);

    const TraceHeader over = parse_trace_header(at_limit + "x");
    EXPECT_FALSE(over.has_root());
    EXPECT_EQ(over.parent, "");
    EXPECT_EQ(over.sampled, SampledFlag::kAbsent);
    EXPECT_TRUE(over.extras.empty());

    // Many tiny parts are bounded by the same length cap.
    std::string many;
    while (many.size() < 100000) many += ";";
    EXPECT_FALSE(parse_trace_header(many).has_root());
}

TEST(XrayTraceHeader, ResponseHeaderForRequestedSampling) {
    EXPECT_EQ(format_response_trace_header(kPyRoot, true), s("Root=", kPyRoot, ";Sampled=1"));
    EXPECT_EQ(format_response_trace_header(kPyRoot, false), s("Root=", kPyRoot, ";Sampled=0"));
}

// --- W3C traceparent (https://www.w3.org/TR/trace-context/) ---

TEST(XrayTraceHeader, TraceparentMapsToXray) {
    const TraceHeader h =
        parse_traceparent("00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01");
    EXPECT_EQ(h.root, kOtelRoot);
    EXPECT_EQ(h.parent, kOtelParent);
    EXPECT_EQ(h.sampled, SampledFlag::kSampled);
    EXPECT_EQ(parse_traceparent("00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-00").sampled,
              SampledFlag::kNotSampled);
    // Only bit 0 is the sampled flag.
    EXPECT_EQ(parse_traceparent("00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-02").sampled,
              SampledFlag::kNotSampled);
}

TEST(XrayTraceHeader, TraceparentFutureVersionMayAppendFields) {
    EXPECT_EQ(
        parse_traceparent("01-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01-extra").root,
        kOtelRoot);
}

TEST(XrayTraceHeader, TraceparentInvalidValues) {
    for (const char* bad :
         {"00-8A3C60F7D188F8FA79D48A391A778FA6-53995c3f42cd8ad8-01",    // uppercase
          "00-00000000000000000000000000000000-53995c3f42cd8ad8-01",    // zero trace
          "00-8a3c60f7d188f8fa79d48a391a778fa6-0000000000000000-01",    // zero span
          "ff-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01",    // forbidden version
          "00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01-x",  // v00 has 4 fields
          "01-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01x",   // no '-' before more
          "00-8a3c60f7d188f8fa79d48a391a778fa-53995c3f42cd8ad8-01",     // short trace id
          "00_8a3c60f7d188f8fa79d48a391a778fa6_53995c3f42cd8ad8_01",
          "00-8a3c60f7000000000000000000000000-53995c3f42cd8ad8-01",  // zero X-Ray random part
          ""}) {
        EXPECT_FALSE(parse_traceparent(bad).has_root()) << bad;
    }
}

TEST(XrayTraceHeader, TraceparentFormat) {
    EXPECT_EQ(format_traceparent(kOtelRoot, kOtelParent, true),
              "00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-01");
    EXPECT_EQ(format_traceparent(kOtelRoot, kOtelParent, false),
              "00-8a3c60f7d188f8fa79d48a391a778fa6-53995c3f42cd8ad8-00");
    EXPECT_EQ(format_traceparent("bogus", kOtelParent, true), "");
    const TraceHeader back = parse_traceparent(format_traceparent(kPyRoot, kPyParent, true));
    EXPECT_EQ(back.root, kPyRoot);
    EXPECT_EQ(back.parent, kPyParent);
}

}  // namespace
}  // namespace passport::xray
