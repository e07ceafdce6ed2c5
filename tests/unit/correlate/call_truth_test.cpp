// The rules of call_truth.hpp on their own: content_length of bodiless responses, where a call
// starts, and which call ids a served request named as its parent.
#include "userspace/correlate/call_truth.hpp"

#include <gtest/gtest.h>

#include <string>

namespace passport::correlate {
namespace {

using pairing::HttpExchange;

HttpExchange answered(const std::string& method, int status, std::optional<uint64_t> header,
                      uint64_t body_bytes) {
    HttpExchange ex;
    ex.request.method = method;
    protocol::http1::Response r;
    r.status = status;
    r.content_length = header;
    r.body_bytes = body_bytes;
    ex.response = r;
    return ex;
}

TEST(ResponseContentLength, HeadAnswerHasNoBodyWhateverItsContentLengthSays) {
    // RFC 9110 section 9.3.2: the server sends the Content-Length GET would have, and no body.
    EXPECT_EQ(response_content_length(answered("HEAD", 200, 1234, 0)), 0u);
    EXPECT_EQ(response_content_length(answered("HEAD", 404, std::nullopt, 0)), 0u);
    EXPECT_EQ(response_content_length(answered("GET", 200, 1234, 1234)), 1234u);
}

TEST(ResponseContentLength, NoContentAndNotModifiedHaveNoBody) {
    EXPECT_EQ(response_content_length(answered("GET", 204, std::nullopt, 0)), 0u);
    EXPECT_EQ(response_content_length(answered("GET", 304, 5000, 0)), 0u);
    EXPECT_EQ(response_content_length(answered("DELETE", 204, 0, 0)), 0u);
    EXPECT_TRUE(response_has_no_body("GET", 101));
    EXPECT_FALSE(response_has_no_body("GET", 200));
    EXPECT_FALSE(response_has_no_body("head", 200)) << "methods are case-sensitive (RFC 9110 9.1)";
}

TEST(ResponseContentLength, OtherwiseTheHeaderThenTheFramedBody) {
    EXPECT_EQ(response_content_length(answered("POST", 201, 7, 7)), 7u);
    EXPECT_EQ(response_content_length(answered("GET", 200, std::nullopt, 42)), 42u)
        << "chunked or close-delimited: the body as framed";
    EXPECT_FALSE(response_content_length(answered("GET", 200, std::nullopt, 0)).has_value());
    HttpExchange cut = answered("GET", 200, std::nullopt, 42);
    cut.outcome = pairing::Outcome::kConnectionClosed;
    EXPECT_FALSE(response_content_length(cut).has_value()) << "an incomplete body is no length";
    HttpExchange none;
    none.request.method = "HEAD";
    EXPECT_FALSE(response_content_length(none).has_value()) << "no response, no length";
}

HttpExchange client_exchange(uint64_t connect_ns, uint64_t request_pos, uint64_t start_ns) {
    HttpExchange ex;
    ex.role = events::Role::kClient;
    ex.connect_ns = connect_ns;
    ex.request_pos = request_pos;
    ex.request_start_ns = start_ns;
    return ex;
}

TEST(ExchangeStart, FirstCallOnAConnectionItOpenedStartsAtConnect) {
    EXPECT_EQ(exchange_start_ns(client_exchange(1'000, 0, 5'000)), 1'000u);
}

TEST(ExchangeStart, ReusedKeepAliveConnectionStartsAtTheFirstWrite) {
    EXPECT_EQ(exchange_start_ns(client_exchange(1'000, 180, 9'000)), 9'000u);
}

TEST(ExchangeStart, ConnectionsNotOpenedByConnectStartAtTheFirstWrite) {
    // Found mid-life (the agent started later): nothing says when it was opened.
    EXPECT_EQ(exchange_start_ns(client_exchange(0, 0, 5'000)), 5'000u);
    // A server's segment starts when its request's first byte was read, connect or not.
    HttpExchange served = client_exchange(1'000, 0, 5'000);
    served.role = events::Role::kServer;
    EXPECT_EQ(exchange_start_ns(served), 5'000u);
    // A connect time after the write would be another connection's: ignored.
    EXPECT_EQ(exchange_start_ns(client_exchange(6'000, 0, 5'000)), 5'000u);
}

TEST(CalleeParents, RemembersTheIdsServedRequestsNamed) {
    CalleeParents parents;
    parents.note("53995c3f42cd8ad8");
    EXPECT_TRUE(parents.named("53995c3f42cd8ad8"));
    EXPECT_TRUE(parents.named("53995C3F42CD8AD8"));
    EXPECT_FALSE(parents.named("53995c3f42cd8ad9"));
    EXPECT_FALSE(parents.named(""));
}

TEST(CalleeParents, IgnoresWhatIsNotASegmentId) {
    CalleeParents parents;
    for (const char* bad :
         {"", "53995c3f42cd8ad", "53995c3f42cd8ad8a", "53995c3f42cd8adz", "0000000000000000"})
        parents.note(bad);
    EXPECT_EQ(parents.size(), 0u);
    EXPECT_FALSE(parents.named("0000000000000000"));
}

TEST(CalleeParents, IsBoundedOldestFirst) {
    CalleeParents parents(3);
    for (const char* id : {"0000000000000001", "0000000000000002", "0000000000000003",
                           "0000000000000002", "0000000000000004"})
        parents.note(id);
    EXPECT_EQ(parents.size(), 3u);
    EXPECT_FALSE(parents.named("0000000000000001"));
    for (const char* id : {"0000000000000002", "0000000000000003", "0000000000000004"})
        EXPECT_TRUE(parents.named(id)) << id;
}

TEST(CallTraced, OnlyWhenASegmentUnderTheCallIsKnown) {
    EXPECT_FALSE(call_traced(false, false)) << "a header sent is not a segment received";
    EXPECT_TRUE(call_traced(true, false));
    EXPECT_TRUE(call_traced(false, true));
}

}  // namespace
}  // namespace passport::correlate
