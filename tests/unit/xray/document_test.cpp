#include "userspace/xray/document.hpp"

#include <gtest/gtest.h>

#include <string>

#include "userspace/xray/utf8.hpp"

namespace passport::xray {
namespace {

using nlohmann::json;

constexpr const char* kTraceId = "1-6b04d9f3-bd291da1988d76ab96ed1c01";
const std::string kXrayBlock =
    std::string(R"({"xray":{"auto_instrumentation":true,"sdk":"Passport","sdk_version":")") +
    PASSPORT_VERSION + "\"}}";

Segment minimal_segment() {
    Segment s;
    s.name = "frontend";
    s.id = "8ccfde972631dd2b";
    s.trace_id = kTraceId;
    s.start_time = 1795480050.858123;
    s.end_time = 1795480050.876;
    return s;
}

Subsegment remote_call(std::string id = "116d0ca9e8f29204") {
    Subsegment sub;
    sub.id = std::move(id);
    sub.name = "127.0.0.1";
    sub.start_time = 1795480050.862;
    sub.end_time = 1795480050.869;
    sub.namespace_ = "remote";
    HttpRequestInfo request;
    request.method = "GET";
    request.url = "http://127.0.0.1/api/items";
    request.traced = true;
    sub.http = HttpInfo{request, HttpResponseInfo{200, std::nullopt}};
    return sub;
}

json parse(const std::string& body) { return json::parse(body); }

// --- times ---

TEST(XrayDocument, TimesHaveExactlySixDecimals) {
    EXPECT_EQ(format_time(1795480050.858123), "1795480050.858123");
    EXPECT_EQ(format_time(1795480050.876), "1795480050.876000");
    // From kernel nanoseconds: quantised to microseconds first, so the digits are exact.
    EXPECT_EQ(format_time(epoch_seconds_from_ns(1795480050858123456ull)), "1795480050.858123");
    EXPECT_EQ(format_time(epoch_seconds_from_ns(1795480050999999999ull)), "1795480050.999999");
    EXPECT_EQ(format_time(epoch_seconds_from_ns(1795480051000000000ull)), "1795480051.000000");
    // A naive ns / 1e9 lands between microseconds here and prints the next one.
    EXPECT_EQ(format_time(static_cast<double>(1795480050858123456ull) / 1e9), "1795480050.858124");
    EXPECT_EQ(format_time(0), "0.000000");
    EXPECT_EQ(format_time(std::nan("")), "0.000000");
    EXPECT_EQ(format_time(-5), "0.000000");
    EXPECT_EQ(format_time(1e300), "100000000000.000000");
}

TEST(XrayDocument, MinimalSegmentExactBytes) {
    EXPECT_EQ(to_json(minimal_segment()),
              std::string(R"({"id":"8ccfde972631dd2b","name":"frontend",)") +
                  R"("trace_id":"1-6b04d9f3-bd291da1988d76ab96ed1c01",)" +
                  R"("start_time":1795480050.858123,"end_time":1795480050.876000,"aws":)" +
                  kXrayBlock + "}");
}

TEST(XrayDocument, InProgressReplacesEndTime) {
    Segment s = minimal_segment();
    s.in_progress = true;
    const json j = parse(to_json(s));
    EXPECT_EQ(j["in_progress"], true);
    EXPECT_FALSE(j.contains("end_time"));
}

// --- a segment with an embedded remote subsegment, as Passport writes it ---

TEST(XrayDocument, SegmentWithEmbeddedRemoteSubsegment) {
    Segment s = minimal_segment();
    s.parent_id = "53995c3f42cd8ad8";
    s.origin = "AWS::EC2::Instance";
    HttpRequestInfo request;
    request.method = "GET";
    request.url = "http://127.0.0.1:42002/call";
    request.user_agent = "curl-test/1.0";
    request.client_ip = "127.0.0.1";
    s.http = HttpInfo{request, HttpResponseInfo{200, 17}};
    s.annotations = {{"customer_tier", "gold"}, {"cart_items", 3}};
    s.metadata = {{"myapp", {{"debug", {{"k", "v"}}}}}};
    s.service = {{"version", "unknown"}};
    s.subsegments.push_back(remote_call());

    const std::string body = to_json(s);
    ASSERT_TRUE(body.starts_with(R"({"id":"8ccfde972631dd2b",)")) << body;
    const json j = parse(body);
    EXPECT_EQ(j["name"], "frontend");
    EXPECT_EQ(j["trace_id"], kTraceId);
    EXPECT_EQ(j["parent_id"], "53995c3f42cd8ad8");
    EXPECT_EQ(j["origin"], "AWS::EC2::Instance");
    EXPECT_EQ(j["http"],
              json::parse(R"({"request":{"method":"GET","url":"http://127.0.0.1:42002/call",
        "user_agent":"curl-test/1.0","client_ip":"127.0.0.1"},"response":{"status":200,"content_length":17}})"));
    EXPECT_EQ(j["annotations"]["cart_items"], 3);
    EXPECT_EQ(j["metadata"]["myapp"]["debug"]["k"], "v");
    EXPECT_EQ(j["service"]["version"], "unknown");
    EXPECT_EQ(j["aws"], json::parse(kXrayBlock));
    for (const char* absent : {"error", "throttle", "fault", "cause", "in_progress", "type"}) {
        EXPECT_FALSE(j.contains(absent)) << absent;
    }

    ASSERT_EQ(j["subsegments"].size(), 1u);
    const json& sub = j["subsegments"][0];
    EXPECT_EQ(sub, json::parse(R"({"id":"116d0ca9e8f29204","name":"127.0.0.1",
        "start_time":1795480050.862,"end_time":1795480050.869,"namespace":"remote",
        "http":{"request":{"method":"GET","url":"http://127.0.0.1/api/items","traced":true},
                "response":{"status":200}}})"));
    // Embedded subsegments are not independent documents.
    EXPECT_FALSE(sub.contains("trace_id"));
    // Only segments carry the SDK block.
    EXPECT_FALSE(sub.contains("aws"));
}

TEST(XrayDocument, FlagsOnlyWhenTrueAndCause) {
    Subsegment sub = remote_call();
    sub.http->response.reset();
    sub.fault = true;
    sub.error = false;
    sub.cause = Cause{"",
                      {ExceptionInfo{"0123456789abcdef", "connect ECONNREFUSED", "Error", true},
                       ExceptionInfo{"fedcba9876543210", "", "", false}}};
    const json j = parse(to_json(sub));
    EXPECT_EQ(j["fault"], true);
    EXPECT_FALSE(j.contains("error"));
    EXPECT_FALSE(j.contains("throttle"));
    EXPECT_FALSE(j["http"].contains("response"));
    EXPECT_EQ(j["cause"], json::parse(R"({"exceptions":[
        {"id":"0123456789abcdef","message":"connect ECONNREFUSED","type":"Error","remote":true},
        {"id":"fedcba9876543210"}]})"));
}

TEST(XrayDocument, TracedFalseAndEmptyBlocksOmitted) {
    Subsegment sub = remote_call();
    sub.http->request->traced = false;
    sub.aws = json::object();
    sub.annotations = nullptr;
    sub.sql = json::array();                  // not an object: ignored
    sub.http->response = HttpResponseInfo{};  // status 0: nothing to say
    const json j = parse(to_json(sub));
    EXPECT_FALSE(j["http"]["request"].contains("traced"));
    EXPECT_FALSE(j["http"].contains("response"));
    EXPECT_FALSE(j.contains("aws"));
    EXPECT_FALSE(j.contains("sql"));
    EXPECT_FALSE(j.contains("annotations"));

    Subsegment local;
    local.id = "0000000000000abc";
    local.name = "compute";
    local.http = HttpInfo{};
    const json l = parse(to_json(local));
    EXPECT_FALSE(l.contains("namespace"));
    EXPECT_FALSE(l.contains("http"));
}

TEST(XrayDocument, SegmentRequestNeverCarriesTraced) {
    Segment s = minimal_segment();
    HttpRequestInfo request;
    request.method = "GET";
    request.traced = true;
    s.http = HttpInfo{request, std::nullopt};
    EXPECT_FALSE(parse(to_json(s))["http"]["request"].contains("traced"));
}

TEST(XrayDocument, XForwardedForNeedsClientIp) {
    Segment s = minimal_segment();
    HttpRequestInfo request;
    request.client_ip = "203.0.113.7";
    request.x_forwarded_for = true;
    s.http = HttpInfo{request, HttpResponseInfo{404, std::nullopt}};
    EXPECT_EQ(parse(to_json(s))["http"]["request"]["x_forwarded_for"], true);
    s.http->request->client_ip.clear();
    EXPECT_FALSE(parse(to_json(s))["http"].contains("request"));
}

TEST(XrayDocument, IndependentSubsegment) {
    const std::string body =
        to_independent_json(remote_call("44fc4e65da0f03af"), kTraceId, "f2e8cd5a94758c3e");
    ASSERT_TRUE(body.starts_with(R"({"id":"44fc4e65da0f03af",)")) << body;
    const json j = parse(body);
    EXPECT_EQ(j["type"], "subsegment");
    EXPECT_EQ(j["trace_id"], kTraceId);
    EXPECT_EQ(j["parent_id"], "f2e8cd5a94758c3e");
    EXPECT_EQ(j["namespace"], "remote");
}

TEST(XrayDocument, SegmentAwsKeepsCallerKeysAndAddsSdk) {
    Segment s = minimal_segment();
    s.aws = {{"account_id", "123456789012"},
             {"xray", {{"sampling_rule_name", "checkout"}, {"sdk", "x"}}}};
    const json j = parse(to_json(s));
    EXPECT_EQ(j["aws"]["account_id"], "123456789012");
    EXPECT_EQ(j["aws"]["xray"]["sampling_rule_name"], "checkout");
    EXPECT_EQ(j["aws"]["xray"]["sdk"], "Passport");
    EXPECT_EQ(j["aws"]["xray"]["sdk_version"], PASSPORT_VERSION);
    EXPECT_EQ(j["aws"]["xray"]["auto_instrumentation"], true);
}

TEST(XrayDocument, UntrustedStringsStayValidJson) {
    Segment s = minimal_segment();
    HttpRequestInfo request;
    request.method = "G\"ET";
    request.url = "/a\"b\\c\n\x01\x7f\xC3";  // quote, backslash, controls, broken UTF-8
    request.user_agent = std::string("ua\0x", 4);
    s.http = HttpInfo{request, std::nullopt};
    s.annotations = {{"k", std::string("bad \xFF utf8")}};
    const std::string body = to_json(s);
    EXPECT_EQ(body.find('\n'), std::string::npos);
    const json j = parse(body);
    EXPECT_EQ(j["http"]["request"]["method"], "G\"ET");
    EXPECT_EQ(j["http"]["request"]["url"], "/a\"b\\c\n\x01\x7f\xEF\xBF\xBD");
    EXPECT_EQ(j["http"]["request"]["user_agent"], std::string("ua\0x", 4));
    EXPECT_EQ(j["annotations"]["k"], "bad \xEF\xBF\xBD utf8");
}

TEST(XrayDocument, LongStringsAreCapped) {
    Segment s = minimal_segment();
    HttpRequestInfo request;
    request.user_agent = std::string(1000, 'u');
    request.url = "http://example.com/path?" + std::string(1000, 'q');
    s.http = HttpInfo{request, std::nullopt};
    const json j = parse(to_json(s));
    EXPECT_EQ(j["http"]["request"]["user_agent"], std::string(kMaxStringLength, 'u'));
    EXPECT_EQ(j["http"]["request"]["url"], "http://example.com/path");
}

TEST(XrayDocument, TruncateUrl) {
    EXPECT_EQ(truncate_url("http://h/p?q=1"), "http://h/p?q=1");  // short: unchanged
    EXPECT_EQ(truncate_url("http://h/p#" + std::string(300, 'f')), "http://h/p");
    const std::string long_path = "http://h/" + std::string(400, 'p');
    EXPECT_EQ(truncate_url(long_path), long_path.substr(0, kMaxUrlLength));
    EXPECT_EQ(truncate_url(long_path + "?x", 20), long_path.substr(0, 20));
}

// --- names ---

TEST(XraySanitizeName, KeepsAllowedCharacters) {
    EXPECT_EQ(sanitize_name("frontend"), "frontend");
    EXPECT_EQ(sanitize_name("orders@db.internal:5432"), "orders@db.internal:5432");
    EXPECT_EQ(sanitize_name("a_b.c:d/e%f&g#h=i+j\\k-l@m n"), "a_b.c:d/e%f&g#h=i+j\\k-l@m n");
    EXPECT_EQ(sanitize_name("caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xD9\xA0"),
              "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xD9\xA0");
}

TEST(XraySanitizeName, DropsEverythingElse) {
    EXPECT_EQ(sanitize_name("my<svc>!\"';*()[]{}$^~`|?,"), "mysvc");
    EXPECT_EQ(sanitize_name("a\xF0\x9F\x98\x80"
                            "b\xE2\x80\x94"
                            "c"),
              "abc");  // emoji, em dash
    EXPECT_EQ(sanitize_name("a\xFF\xC3"
                            "b"),
              "ab");  // invalid UTF-8
    EXPECT_EQ(sanitize_name("a\x01"
                            "b\x7f"
                            "c"),
              "abc");  // controls
}

TEST(XraySanitizeName, WhitespaceBecomesSpaceAndIsTrimmed) {
    EXPECT_EQ(sanitize_name("\t a\tb\nc \r\n"), "a b c");
    EXPECT_EQ(sanitize_name("a\xE3\x80\x80"
                            "b"),
              "a b");  // ideographic space
}

TEST(XraySanitizeName, FallbackWhenEmpty) {
    EXPECT_EQ(sanitize_name(""), "unknown");
    EXPECT_EQ(sanitize_name("<>!"), "unknown");
    EXPECT_EQ(sanitize_name("  ", "span"), "span");
}

TEST(XraySanitizeName, TruncatesToTwoHundredCharactersOnCodePoints) {
    EXPECT_EQ(sanitize_name(std::string(300, 'a')), std::string(200, 'a'));
    std::string e_acute;
    for (int i = 0; i < 250; ++i) e_acute += "\xC3\xA9";
    const std::string out = sanitize_name(e_acute);
    EXPECT_EQ(out.size(), 400u);
    EXPECT_EQ(count_utf8_chars(out), 200u);
    const std::string mixed = std::string(199, 'a') +
                              "\xE4\xB8\xAD"
                              "bbb";
    EXPECT_EQ(sanitize_name(mixed), std::string(199, 'a') + "\xE4\xB8\xAD");
}

TEST(XrayDocument, NamesAreSanitizedInDocuments) {
    Segment s = minimal_segment();
    s.name = "<script>";
    Subsegment sub = remote_call();
    sub.name = "";
    s.subsegments.push_back(sub);
    const json j = parse(to_json(s));
    EXPECT_EQ(j["name"], "script");
    EXPECT_EQ(j["subsegments"][0]["name"], "unknown");
}

// --- HTTP status ---

TEST(XrayDocument, ApplyHttpStatus) {
    struct Case {
        int status;
        bool error, throttle, fault;
    };
    for (const Case c : {Case{200, false, false, false}, Case{302, false, false, false},
                         Case{399, false, false, false}, Case{400, true, false, false},
                         Case{404, true, false, false}, Case{429, true, true, false},
                         Case{499, true, false, false}, Case{500, false, false, true},
                         Case{503, false, false, true}, Case{599, false, false, true},
                         Case{600, false, false, false}, Case{0, false, false, false}}) {
        bool error = false, throttle = false, fault = false;
        apply_http_status(c.status, error, throttle, fault);
        EXPECT_EQ(error, c.error) << c.status;
        EXPECT_EQ(throttle, c.throttle) << c.status;
        EXPECT_EQ(fault, c.fault) << c.status;
    }
}

TEST(XrayDocument, ApplyHttpStatusCompounds) {
    bool error = false, throttle = false, fault = true;  // e.g. a checksum failure after a 429
    apply_http_status(429, error, throttle, fault);
    EXPECT_TRUE(error && throttle && fault);
    apply_http_status(200, error, throttle, fault);
    EXPECT_TRUE(error && throttle && fault);
}

}  // namespace
}  // namespace passport::xray
