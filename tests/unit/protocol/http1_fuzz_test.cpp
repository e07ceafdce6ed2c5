// Randomised robustness tests for the HTTP/1 parser: thousands of valid, mutated and random inputs,
// fed whole and split at random points (and, separately, with random capture gaps). Checked:
// no crash or runaway loop, bounded buffering, sane frames in stream order, and that the frames
// and error counts do not depend on how the bytes were split. Seeds are fixed, so a failure
// reproduces; the failing input is printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/protocol/http1_test_support.hpp"

namespace passport::protocol::http1 {
namespace {

using testing::describe_all;
using testing::ParserHarness;

// Long requests continue on the next line (adjacent literals), not a missing comma.
// NOLINTBEGIN(bugprone-suspicious-missing-comma)
const std::vector<std::string> kRequests = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /search?q=x HTTP/1.0\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    "POST /api HTTP/1.1\r\nContent-Length: 11\r\nContent-Type: text/plain\r\n\r\nhello world",
    "PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\n"
    "\r\n",
    "PATCH /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nT: v\r\n\r\n",
    "HEAD /h HTTP/1.1\r\nX-Amzn-Trace-Id: Root=1-abc-def;Parent=1234567890abcdef;Sampled=1\r\n"
    "\r\n",
    "POST /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
    "OPTIONS * HTTP/1.1\n\n",
    "DELETE /x HTTP/1.1\r\nX-Fold: a\r\n b\r\n\r\n",
};
// NOLINTEND(bugprone-suspicious-missing-comma)

const std::vector<std::string> kResponses = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nno",
    "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil close",
    "HTTP/1.1 404\nContent-Length: 1\n\nx",
};

const std::vector<std::string> kTokens = {
    "\r\n",
    "\r\n\r\n",
    "\n",
    ":",
    " ",
    "\t",
    "\r",
    "0\r\n\r\n",
    "HTTP/1.1 ",
    "GET / HTTP/1.1\r\n",
    "Content-Length: 999999\r\n",
    "Content-Length: 3\r\n",
    "Transfer-Encoding: chunked\r\n",
    "ffffffffffffffff\r\n",
    "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ";ext=1",
    std::string(1, '\0'),
    "\xff\xfe",
};

class Fuzzer {
  public:
    explicit Fuzzer(uint32_t seed) : rng_(seed) {}

    size_t below(size_t n) {
        return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
    }
    bool chance(int percent) { return below(100) < static_cast<size_t>(percent); }
    char byte() {
        if (chance(60)) return static_cast<char>(0x20 + below(95));
        return static_cast<char>(below(256));
    }

    std::string input(MessageKind kind) {
        std::string s;
        if (chance(10)) {
            const size_t n = below(1500);
            for (size_t i = 0; i < n; ++i) s.push_back(byte());
            return s;
        }
        const auto& corpus = kind == MessageKind::kRequest ? kRequests : kResponses;
        const size_t messages = 1 + below(4);
        for (size_t i = 0; i < messages; ++i) s += corpus[below(corpus.size())];
        const size_t mutations = below(6);
        for (size_t i = 0; i < mutations; ++i) mutate(s);
        return s;
    }

    std::vector<size_t> cuts(size_t size) {
        std::vector<size_t> out;
        const size_t n = below(10);
        for (size_t i = 0; i < n; ++i) out.push_back(below(size + 1));
        std::sort(out.begin(), out.end());
        return out;
    }

  private:
    void mutate(std::string& s) {
        switch (below(7)) {
            case 0:
                if (!s.empty()) s[below(s.size())] = byte();
                break;
            case 1:
                s.insert(s.begin() + static_cast<std::ptrdiff_t>(below(s.size() + 1)), byte());
                break;
            case 2:
                if (!s.empty()) {
                    const size_t at = below(s.size());
                    s.erase(at, 1 + below(16));
                }
                break;
            case 3:
                if (!s.empty()) {
                    const size_t at = below(s.size());
                    const std::string part = s.substr(at, 1 + below(40));
                    s.insert(below(s.size() + 1), part);
                }
                break;
            case 4:
                s.insert(below(s.size() + 1), kTokens[below(kTokens.size())]);
                break;
            case 5:
                s.resize(below(s.size() + 1));
                break;
            default:
                for (char& c : s) {
                    if (c >= 'a' && c <= 'z' && chance(2)) c = static_cast<char>(c - 32);
                }
                break;
        }
    }

    std::mt19937 rng_;
};

std::string printable(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

// Checks every invariant that holds whatever the input.
void check_sane(const ParserHarness& h, uint64_t total_positions, const std::string& input) {
    EXPECT_FALSE(h.runaway) << printable(input);
    EXPECT_LE(static_cast<uint64_t>(h.calls), 2 * total_positions + h.chunks + 2)
        << printable(input);
    EXPECT_LT(h.buf.buffered_bytes(), ParserLimits{}.max_header_bytes) << printable(input);
    EXPECT_LE(h.buf.position(), total_positions);
    uint64_t prev_end = 0;
    for (const Message& m : h.frames) {
        EXPECT_LE(prev_end, m.start_pos) << printable(input);
        EXPECT_LT(m.start_pos, m.end_pos) << printable(input);
        EXPECT_LE(m.end_pos, total_positions) << printable(input);
        prev_end = m.end_pos;
        if (m.kind == MessageKind::kRequest) {
            ASSERT_FALSE(m.request.method.empty());
            for (char c : m.request.method) {
                EXPECT_TRUE((c >= 'A' && c <= 'Z') || c == '-' || c == '_') << printable(input);
            }
            EXPECT_EQ(m.request.version.rfind("HTTP/1.", 0), 0u);
            EXPECT_LE(m.request.headers.size(), ParserLimits{}.max_headers);
            EXPECT_LE(m.request.body_bytes, total_positions);
        } else {
            EXPECT_GE(m.response.status, 100);
            EXPECT_LE(m.response.status, 599);
            EXPECT_LE(m.response.headers.size(), ParserLimits{}.max_headers);
            EXPECT_LE(m.response.body_bytes, total_positions);
        }
    }
}

void run_split_invariance(MessageKind kind, uint32_t seed, int rounds) {
    Fuzzer f(seed);
    const char* methods[] = {"GET", "HEAD", "CONNECT", ""};
    for (int round = 0; round < rounds; ++round) {
        const std::string input = f.input(kind);
        const bool mid_stream = f.chance(20);
        const char* method = methods[f.below(4)];

        ParserHarness whole(kind, mid_stream);
        whole.parser.set_request_method(method);
        whole.feed(input);
        const bool finished = whole.finish();
        check_sane(whole, input.size(), input);

        for (int variant = 0; variant < 2; ++variant) {
            ParserHarness split(kind, mid_stream);
            split.parser.set_request_method(method);
            split.feed_split(input, f.cuts(input.size()));
            EXPECT_EQ(split.finish(), finished) << printable(input);
            check_sane(split, input.size(), input);
            ASSERT_EQ(describe_all(split.frames), describe_all(whole.frames))
                << "round " << round << " input " << printable(input);
            ASSERT_EQ(split.invalid, whole.invalid) << printable(input);
            ASSERT_EQ(split.skipped, whole.skipped) << printable(input);
        }
    }
}

TEST(Http1Fuzz, RequestsParseTheSameHoweverSplit) {
    run_split_invariance(MessageKind::kRequest, 20240601, 3000);
}

TEST(Http1Fuzz, ResponsesParseTheSameHoweverSplit) {
    run_split_invariance(MessageKind::kResponse, 777, 3000);
}

TEST(Http1Fuzz, RandomCaptureGapsNeverBreakTheParser) {
    Fuzzer f(4242);
    for (int round = 0; round < 3000; ++round) {
        const MessageKind kind = f.chance(50) ? MessageKind::kRequest : MessageKind::kResponse;
        const std::string input = f.input(kind);
        ParserHarness h(kind, f.chance(20));
        // Each syscall copies a random prefix of what it moved; the rest is a gap.
        size_t from = 0;
        uint64_t positions = 0;
        for (size_t cut : f.cuts(input.size())) {
            if (cut <= from) continue;
            const std::string part = input.substr(from, cut - from);
            const size_t captured = f.chance(50) ? part.size() : f.below(part.size() + 1);
            h.feed(part.substr(0, captured), part.size());
            positions += part.size();
            from = cut;
        }
        if (from < input.size()) {
            h.feed(input.substr(from));
            positions += input.size() - from;
        }
        h.finish();
        check_sane(h, positions, input);
    }
}

TEST(Http1Fuzz, CorpusMessagesParseCleanly) {
    // The corpus itself must be valid, or the mutation tests above prove little.
    for (const auto& r : kRequests) {
        ParserHarness h(MessageKind::kRequest);
        h.feed(r);
        EXPECT_EQ(h.frames.size(), 1u) << printable(r);
        EXPECT_EQ(h.invalid, 0) << printable(r);
    }
    for (const auto& r : kResponses) {
        ParserHarness h(MessageKind::kResponse);
        h.feed(r);
        h.finish();
        const bool interim = r.find(" 100 ") != std::string::npos;
        EXPECT_EQ(h.frames.size(), interim ? 0u : 1u) << printable(r);
        EXPECT_EQ(h.skipped, interim ? 1 : 0) << printable(r);
        EXPECT_EQ(h.invalid, 0) << printable(r);
    }
}

}  // namespace
}  // namespace passport::protocol::http1
