// Credential redaction: the name rule, URLs (query, fragment, userinfo) and process arguments.
#include "userspace/redact/redact.hpp"

#include <gtest/gtest.h>

namespace passport::redact {
namespace {

const Policy kOn{};

TEST(CredentialName, WordsAndPrefix) {
    for (const char* n : {"token",
                          "TOKEN",
                          "access_token",
                          "accessToken",
                          "id_token",
                          "key",
                          "api_key",
                          "api-key",
                          "apikey",
                          "apiKey",
                          "X-Api-Key",
                          "secret",
                          "client_secret",
                          "password",
                          "db.password",
                          "passwd",
                          "pwd",
                          "pass",
                          "signature",
                          "sig",
                          "auth",
                          "authToken",
                          "credential",
                          "credentials",
                          "session",
                          "sessionid",
                          "PHPSESSID",
                          "AWSAccessKeyId",
                          "X-Amz-Signature",
                          "x-amz-credential",
                          "X-Amz-Security-Token",
                          "X-Amz-Date",
                          "authorization",
                          "private.key",
                          "keys"}) {
        EXPECT_TRUE(is_credential_name(n, kOn)) << n;
    }
    for (const char* n : {"page", "monkey", "keyboard", "author", "design", "signal", "id", "q",
                          "passenger", "x-amzn-trace-id", "", "sort", "compass"}) {
        EXPECT_FALSE(is_credential_name(n, kOn)) << n;
    }
}

TEST(CredentialName, MatchedAfterPercentDecoding) {
    EXPECT_TRUE(is_credential_name("%74oken", kOn));    // %74 = 't'
    EXPECT_TRUE(is_credential_name("api%5Fkey", kOn));  // %5F = '_'
    EXPECT_TRUE(is_credential_name("X%2DAmz%2DSignature", kOn));
    EXPECT_TRUE(is_credential_name("api+key", kOn));  // '+' is a space: two words
    EXPECT_FALSE(is_credential_name("%6Donkey", kOn));
}

TEST(CredentialName, ExtraNamesAreExactAndCaseInsensitive) {
    Policy p{true, {"code", "State"}};
    EXPECT_TRUE(is_credential_name("code", p));
    EXPECT_TRUE(is_credential_name("CODE", p));
    EXPECT_TRUE(is_credential_name("state", p));
    EXPECT_FALSE(is_credential_name("zipcode", p));
    EXPECT_FALSE(is_credential_name("code", kOn));
}

TEST(RedactUrl, ReplacesOnlyCredentialValues) {
    EXPECT_EQ(redact_url("http://h/x?token=abc123&page=2", kOn),
              "http://h/x?token=REDACTED&page=2");
    EXPECT_EQ(redact_url("/x?page=2&API_KEY=k&sort=asc", kOn),
              "/x?page=2&API_KEY=REDACTED&sort=asc");
    EXPECT_EQ(redact_url("http://h/x?monkey=1&key=2", kOn), "http://h/x?monkey=1&key=REDACTED");
}

TEST(RedactUrl, RepeatedEmptyBareAndSemicolon) {
    EXPECT_EQ(redact_url("/a?token=1&token=2", kOn), "/a?token=REDACTED&token=REDACTED");
    EXPECT_EQ(redact_url("/a?token=&b=1", kOn), "/a?token=&b=1");
    EXPECT_EQ(redact_url("/a?token&b=1", kOn), "/a?token&b=1");
    EXPECT_EQ(redact_url("/a?sig=x;b=1;password=p", kOn), "/a?sig=REDACTED;b=1;password=REDACTED");
    EXPECT_EQ(redact_url("/a?&&token=x&", kOn), "/a?&&token=REDACTED&");
    EXPECT_EQ(redact_url("/a?token=a=b&c=d", kOn), "/a?token=REDACTED&c=d");
}

TEST(RedactUrl, EncodedNamesKeepTheirSpelling) {
    EXPECT_EQ(redact_url("/a?%74oken=zz&x=1", kOn), "/a?%74oken=REDACTED&x=1");
    EXPECT_EQ(redact_url("/a?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ff", kOn),
              "/a?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED");
}

TEST(RedactUrl, NoQueryAndFragment) {
    EXPECT_EQ(redact_url("http://h/x", kOn), "http://h/x");
    EXPECT_EQ(redact_url("http://h/x?", kOn), "http://h/x?");
    EXPECT_EQ(redact_url("/x?a=1#frag", kOn), "/x?a=1#frag");
    EXPECT_EQ(redact_url("/x?token=1#access_token=2&s=3", kOn),
              "/x?token=REDACTED#access_token=REDACTED&s=3");
    EXPECT_EQ(redact_url("/x#token=2", kOn), "/x#token=REDACTED");
}

TEST(RedactUrl, UserinfoAlwaysRemoved) {
    EXPECT_EQ(redact_url("http://user:pass@host:8080/p?q=1", kOn), "http://host:8080/p?q=1");
    EXPECT_EQ(redact_url("https://a@b@host/", kOn), "https://host/");
    EXPECT_EQ(redact_url("http://host/p?u=a@b", kOn), "http://host/p?u=a@b");
    EXPECT_EQ(redact_url("/p@x", kOn), "/p@x");
    Policy off{false, {}};
    EXPECT_EQ(redact_url("http://user:pass@host/x?token=1", off), "http://host/x?token=1");
}

TEST(RedactUrl, OffKeepsQuery) {
    Policy off{false, {}};
    EXPECT_EQ(redact_url("/x?token=abc&page=2", off), "/x?token=abc&page=2");
}

TEST(RedactArgs, EqualsSpaceAndUrls) {
    std::vector<std::string> argv = {"python3",
                                     "app.py",
                                     "--db-password=hunter2",
                                     "--token",
                                     "t0k",
                                     "--port",
                                     "8080",
                                     "-v",
                                     "API_KEY=zz",
                                     "--monkey=1",
                                     "--db-url=postgres://u:pw@db/x?sslpassword=k"};
    auto out = redact_args(argv, kOn);
    std::vector<std::string> want = {"python3",
                                     "app.py",
                                     "--db-password=REDACTED",
                                     "--token",
                                     "REDACTED",
                                     "--port",
                                     "8080",
                                     "-v",
                                     "API_KEY=REDACTED",
                                     "--monkey=1",
                                     "--db-url=postgres://db/x?sslpassword=REDACTED"};
    EXPECT_EQ(out, want);
}

TEST(RedactArgs, FlagFollowedByFlagOrNothing) {
    std::vector<std::string> argv = {"srv", "--secret", "--verbose", "--password"};
    EXPECT_EQ(redact_args(argv, kOn), argv);
    std::vector<std::string> first = {"--password=x"};  // argv[0] is never changed
    EXPECT_EQ(redact_args(first, kOn), first);
}

}  // namespace
}  // namespace passport::redact
