// The document writer against reference renderings built with nlohmann's DOM, for randomized
// segments. The writer once built the segment's "aws" block (aws.xray with the SDK members
// merged in) and the "http"/"cause" objects as separate strings or a DOM copy; it now writes them
// in place. These tests hold the direct writer to the DOM path's output: the same members and
// values, and for "aws" the same bytes.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "userspace/xray/document.hpp"
#include "userspace/xray/utf8.hpp"

namespace passport::xray {
namespace {

using nlohmann::json;

// What the DOM path did: copy the model's aws, force aws.xray to an object, set the SDK members.
json reference_segment_aws(const json& aws) {
    json out = aws.is_object() ? aws : json::object();
    json& xray = out["xray"];
    if (!xray.is_object()) xray = json::object();
    xray["sdk"] = kSdkName;
    xray["sdk_version"] = PASSPORT_VERSION;
    xray["auto_instrumentation"] = true;
    return out;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// The reference holds raw (possibly invalid UTF-8) strings; the document holds them as written,
// invalid bytes replaced: compare with the reference after the same dump and parse.
json normalized(const json& j) { return json::parse(dump(j)); }

class Random {
  public:
    explicit Random(uint32_t seed) : gen_(seed) {}

    size_t below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(gen_); }
    bool coin() { return below(2) == 0; }

    // Keys chosen to land before, between and after "xray" and the SDK's own members, plus
    // ones that need escaping (quotes, controls, non-ASCII, invalid UTF-8).
    std::string key() {
        static const std::vector<std::string> kKeys = {"account_id",
                                                       "a",
                                                       "xray",
                                                       "xrax",
                                                       "xray0",
                                                       "z",
                                                       "rule_name",
                                                       "sdk",
                                                       "sdk_version",
                                                       "auto_instrumentation",
                                                       "sampling_rule_name",
                                                       "sdk0",
                                                       "sdj",
                                                       "",
                                                       "q\"uote",
                                                       "tab\tkey",
                                                       "caf\xC3\xA9",
                                                       "bad\xC3",
                                                       "\x7f",
                                                       "ecs",
                                                       "ec2",
                                                       "~",
                                                       "AUTO"};
        return kKeys[below(kKeys.size())];
    }

    std::string text() {
        static const std::vector<std::string> kTexts = {"Default",
                                                        "checkout",
                                                        "",
                                                        R"(with "quotes" and \)",
                                                        "line\nbreak",
                                                        "\x01\x1f",
                                                        "\xE2\x82\xAC euro",
                                                        "broken \xC3",
                                                        "\xFF\xFE",
                                                        std::string(300, 'x'),
                                                        "123"};
        return kTexts[below(kTexts.size())];
    }

    json value(int depth) {
        switch (below(depth > 0 ? 8 : 6)) {
            case 0:
                return text();
            case 1:
                return static_cast<int64_t>(below(1000000)) - 500000;
            case 2:
                return coin();
            case 3:
                return nullptr;
            case 4:
                return 0.25 * static_cast<double>(below(100));
            case 5:
                return text();
            case 6: {
                json a = json::array();
                for (size_t i = below(4); i > 0; --i) a.push_back(value(depth - 1));
                return a;
            }
            default:
                return object(depth - 1);
        }
    }

    json object(int depth) {
        json o = json::object();
        for (size_t i = below(5); i > 0; --i) o[key()] = value(depth);
        return o;
    }

    // The segment's aws as the model may hold it: usually {"xray":{"rule_name":...}}, sometimes
    // other members, an xray that is not an object, or not an object at all.
    json aws() {
        switch (below(7)) {
            case 0:
                return nullptr;
            case 1:
                return json::object();
            case 2:
                return json::array({1, 2});
            case 3:
                return {{"xray", {{"rule_name", text()}}}};
            case 4:
                return {{"xray", value(1)}};
            case 5: {
                json a = object(2);
                a["xray"] = object(1);
                return a;
            }
            default:
                return object(2);
        }
    }

  private:
    std::mt19937 gen_;
};

Segment base_segment() {
    Segment s;
    s.name = "frontend";
    s.id = "8ccfde972631dd2b";
    s.trace_id = "1-6b04d9f3-bd291da1988d76ab96ed1c01";
    s.start_time = 1795480050.858123;
    s.end_time = 1795480050.876;
    return s;
}

TEST(XrayWriterReference, SegmentAwsBlockMatchesTheDomPathByteForByte) {
    Random random(20261125);
    for (int i = 0; i < 3000; ++i) {
        Segment s = base_segment();
        s.aws = random.aws();
        const std::string body = to_json(s);
        const json reference = reference_segment_aws(s.aws);
        SCOPED_TRACE("aws: " + dump(s.aws));
        // The same bytes as dumping the merged DOM...
        EXPECT_NE(body.find("\"aws\":" + dump(reference) + "}"), std::string::npos) << body;
        // ...so the same value once parsed.
        const json parsed = json::parse(body);
        EXPECT_TRUE(parsed["aws"] == normalized(reference)) << dump(parsed["aws"]);
        std::string datagram;
        ASSERT_TRUE(write_datagram(s, datagram));
        EXPECT_EQ(datagram, std::string(kDatagramHeader) + "\n" + body);
    }
}

// The "http" and "cause" members by the rules of document.hpp, as a DOM.
json reference_http(const HttpInfo& http, bool subsegment) {
    json out = json::object();
    if (http.request) {
        const HttpRequestInfo& r = *http.request;
        json req = json::object();
        if (!r.method.empty())
            req["method"] = std::string(truncate_utf8(r.method, kMaxStringLength));
        if (!r.url.empty()) req["url"] = truncate_url(r.url);
        if (!r.user_agent.empty()) {
            req["user_agent"] = std::string(truncate_utf8(r.user_agent, kMaxStringLength));
        }
        if (!r.client_ip.empty()) {
            req["client_ip"] = std::string(truncate_utf8(r.client_ip, kMaxStringLength));
        }
        if (r.x_forwarded_for && !r.client_ip.empty()) req["x_forwarded_for"] = true;
        if (subsegment && r.traced.value_or(false)) req["traced"] = true;
        if (!req.empty()) out["request"] = req;
    }
    if (http.response) {
        json resp = json::object();
        if (http.response->status > 0) resp["status"] = http.response->status;
        if (http.response->content_length) resp["content_length"] = *http.response->content_length;
        if (!resp.empty()) out["response"] = resp;
    }
    return out;
}

json reference_cause(const Cause& cause) {
    json out = json::object();
    if (!cause.working_directory.empty()) {
        out["working_directory"] =
            std::string(truncate_utf8(cause.working_directory, kMaxStringLength));
    }
    if (!cause.exceptions.empty()) {
        json list = json::array();
        for (const ExceptionInfo& e : cause.exceptions) {
            json x = json::object();
            if (!e.id.empty()) x["id"] = e.id;
            if (!e.message.empty())
                x["message"] = std::string(truncate_utf8(e.message, kMaxStringLength));
            if (!e.type.empty()) x["type"] = e.type;
            if (e.remote) x["remote"] = true;
            list.push_back(x);
        }
        out["exceptions"] = list;
    }
    return out;
}

HttpInfo random_http(Random& random) {
    HttpInfo http;
    if (random.below(4) != 0) {
        HttpRequestInfo r;
        if (random.coin()) r.method = random.coin() ? "GET" : random.text();
        if (random.coin())
            r.url = random.coin() ? "http://h/p?q=" + std::string(400, 'q') : random.text();
        if (random.coin()) r.user_agent = random.text();
        if (random.coin()) r.client_ip = random.coin() ? "10.0.0.1" : "";
        r.x_forwarded_for = random.coin();
        if (random.coin()) r.traced = random.coin();
        http.request = r;
    }
    if (random.below(4) != 0) {
        HttpResponseInfo r;
        if (random.coin()) r.status = static_cast<int>(random.below(600));
        if (random.coin()) r.content_length = random.below(100000);
        http.response = r;
    }
    return http;
}

TEST(XrayWriterReference, HttpAndCauseWrittenInPlaceMatchTheirDom) {
    Random random(5);
    for (int i = 0; i < 3000; ++i) {
        Segment s = base_segment();
        Subsegment sub;
        sub.id = "116d0ca9e8f29204";
        sub.name = "callee";
        sub.start_time = 1795480050.862;
        sub.end_time = 1795480050.869;
        if (random.coin()) s.http = random_http(random);
        if (random.coin()) sub.http = random_http(random);
        if (random.coin()) {
            Cause c;
            if (random.coin()) c.working_directory = random.text();
            for (size_t n = random.below(3); n > 0; --n) {
                ExceptionInfo e;
                if (random.coin()) e.id = "0123456789abcdef";
                if (random.coin()) e.message = random.text();
                if (random.coin()) e.type = "Error";
                e.remote = random.coin();
                c.exceptions.push_back(e);
            }
            s.cause = c;
        }
        s.error = random.coin();
        s.subsegments.push_back(sub);

        const json doc = json::parse(to_json(s));
        const json http = s.http ? reference_http(*s.http, false) : json::object();
        if (http.empty()) {
            EXPECT_FALSE(doc.contains("http"));
        } else {
            EXPECT_TRUE(doc["http"] == normalized(http)) << dump(doc["http"]);
        }
        const json cause = s.cause ? reference_cause(*s.cause) : json::object();
        if (cause.empty()) {
            EXPECT_FALSE(doc.contains("cause"));
        } else {
            EXPECT_TRUE(doc["cause"] == normalized(cause)) << dump(doc["cause"]);
        }
        const json& child = doc["subsegments"][0];
        const json sub_http = sub.http ? reference_http(*sub.http, true) : json::object();
        if (sub_http.empty()) {
            EXPECT_FALSE(child.contains("http"));
        } else {
            EXPECT_TRUE(child["http"] == normalized(sub_http)) << dump(child["http"]);
        }
        // Members after an omitted object keep their commas right.
        EXPECT_EQ(doc.contains("error"), s.error);
    }
}

}  // namespace
}  // namespace passport::xray

namespace passport::xray {
namespace {

// append_json_string scans 8 bytes at a time while nothing needs escaping: every kind of byte
// that does (controls, quote, backslash, DEL and non-ASCII, valid or not) at every offset of
// the word, against nlohmann's writer with the same replacement policy.
TEST(XrayWriterReference, JsonStringsMatchNlohmannAtEveryOffset) {
    const std::vector<std::string> specials = {std::string(1, '\0'),
                                               "\x01",
                                               "\x1f",
                                               "\"",
                                               "\\",
                                               "\x7f",
                                               "\n",
                                               "\t",
                                               "\xC3\xA9",
                                               "\xE2\x82\xAC",
                                               "\xF0\x9F\x98\x80",
                                               "\xC3",
                                               "\xFF",
                                               "\x80",
                                               " ",
                                               "/"};
    for (size_t length = 0; length <= 40; ++length) {
        for (size_t at = 0; at <= length; ++at) {
            for (const std::string& special : specials) {
                std::string text(length, 'a');
                for (size_t i = 0; i < length; ++i) text[i] = static_cast<char>('a' + (i * 7) % 26);
                text.insert(at, special);
                std::string written;
                append_json_string(written, text);
                const std::string reference = nlohmann::json(text).dump(
                    -1, ' ', false, nlohmann::json::error_handler_t::replace);
                ASSERT_EQ(written, reference) << "length " << length << " at " << at;
            }
        }
    }
}

TEST(XrayWriterReference, PlainNamesAreKeptAsTheyAre) {
    EXPECT_EQ(sanitize_name("inventory.local:8080"), "inventory.local:8080");
    EXPECT_EQ(sanitize_name("a_b-c@d/e%f&g#h=i+j\\k"), "a_b-c@d/e%f&g#h=i+j\\k");
    EXPECT_EQ(sanitize_name(std::string(kMaxNameLength, 'n')), std::string(kMaxNameLength, 'n'));
    EXPECT_EQ(sanitize_name(std::string(kMaxNameLength + 1, 'n')),
              std::string(kMaxNameLength, 'n'));
    EXPECT_EQ(sanitize_name(" padded "), "padded");
    EXPECT_EQ(sanitize_name("a!b"), "ab");
    EXPECT_EQ(sanitize_name(""), std::string(kDefaultName));
}

}  // namespace
}  // namespace passport::xray
