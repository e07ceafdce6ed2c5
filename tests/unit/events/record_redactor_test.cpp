// RecordRedactor: credential header and query values in recorded payloads become '*', lengths
// and positions unchanged, across reads that split a line.
#include "userspace/events/record_redactor.hpp"

#include <gtest/gtest.h>

#include "tests/support/event_builder.hpp"

namespace passport::events {
namespace {

using passport::testing::EventBuilder;

constexpr std::string_view kRequest =
    "GET /x?token=abc123&page=2&X-Amz-Signature=ff00 HTTP/1.1\r\n"
    "Host: shop\r\n"
    "Authorization: Bearer s3cr3t\r\n"
    "Cookie: sid=c00k1e\r\n"
    "X-Api-Key: k3y\r\n"
    "X-Auth-Token: t0k\r\n"
    "X-Amz-Target: DynamoDB_20120810.GetItem\r\n"
    "User-Agent: curl/8\r\n\r\n";

std::string masked(RecordRedactor& r, Data d) {
    r.redact(d);
    return d.bytes;
}

TEST(RecordRedactor, MasksCredentialsKeepsLength) {
    RecordRedactor r(redact::Policy{});
    EventBuilder b;
    const std::string out = masked(r, b.read(kRequest, 1, 2));
    ASSERT_EQ(out.size(), kRequest.size());
    for (const char* secret : {"abc123", "ff00", "s3cr3t", "Bearer", "c00k1e", "k3y", "t0k"})
        EXPECT_EQ(out.find(secret), std::string::npos) << secret << "\n" << out;
    EXPECT_NE(out.find("GET /x?token=******&page=2&X-Amz-Signature=**** HTTP/1.1\r\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("Authorization: ****** ******\r\n"), std::string::npos) << out;
    for (const char* kept : {"Host: shop\r\n", "X-Amz-Target: DynamoDB_20120810.GetItem\r\n",
                             "User-Agent: curl/8\r\n\r\n"})
        EXPECT_NE(out.find(kept), std::string::npos) << kept;
}

TEST(RecordRedactor, SplitAtEveryByteGivesTheSameResult) {
    RecordRedactor whole(redact::Policy{});
    EventBuilder b1;
    const std::string want = masked(whole, b1.read(kRequest, 1, 2));
    RecordRedactor r(redact::Policy{});
    EventBuilder b2;
    std::string got;
    for (char c : kRequest) got += masked(r, b2.read(std::string(1, c), 1, 2));
    EXPECT_EQ(got, want);
}

TEST(RecordRedactor, ResponseSetCookieAndStatusLine) {
    RecordRedactor r(redact::Policy{});
    EventBuilder b;
    const std::string resp =
        "HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\n\r\nbody token=1\n";
    const std::string out = masked(r, b.write(resp, 1, 2));
    EXPECT_EQ(out.find("abc"), std::string::npos) << out;
    EXPECT_NE(out.find("HTTP/1.1 200 OK\r\n"), std::string::npos);
    EXPECT_NE(out.find("body token=1\n"), std::string::npos);  // not a request line
}

TEST(RecordRedactor, ExtraNamesAndConnectionsAreSeparate) {
    RecordRedactor r(redact::Policy{true, {"code"}});
    EventBuilder a(Role::kServer, {1, 3, 1});
    EventBuilder b(Role::kServer, {1, 4, 1});
    // a's header is cut mid-value; b's bytes in between must not be masked by a's state.
    EXPECT_EQ(masked(r, a.read("GET /cb?code=xyz&z=1 HTTP/1.1\r\nCookie: ab", 1, 2)),
              "GET /cb?code=***&z=1 HTTP/1.1\r\nCookie: **");
    EXPECT_EQ(masked(r, b.read("GET /p?q=1 HTTP/1.1\r\n", 1, 2)), "GET /p?q=1 HTTP/1.1\r\n");
    EXPECT_EQ(masked(r, a.read("cd\r\nAccept: x\r\n", 1, 2)), "**\r\nAccept: x\r\n");
}

}  // namespace
}  // namespace passport::events
