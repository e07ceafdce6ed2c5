#pragma once
// Shared by the HTTP/1 parser tests: a parser fed chunk by chunk from a StreamBuffer, recording
// what it returned. Each chunk is one pretend syscall, timed enter = 100 * n, exit = 100 * n + 50,
// tid = 1000 + n for the n-th chunk (1-based).
#include <string>
#include <string_view>
#include <vector>

#include "userspace/common/counters.hpp"
#include "userspace/protocol/http1/http1_parser.hpp"
#include "userspace/stream/stream_buffer.hpp"

namespace passport::protocol::http1::testing {

struct ParserHarness {
    explicit ParserHarness(MessageKind kind, bool mid_stream = false, ParserLimits limits = {})
        : buf(counters), parser(kind, counters, mid_stream, limits) {}

    // One syscall that moved `len` bytes (default: all of `bytes`), of which `bytes` were copied.
    void feed(std::string_view bytes, uint64_t len = 0) {
        ++chunks;
        if (len < bytes.size()) len = bytes.size();
        buf.add(pos, bytes, len,
                stream::ChunkTiming{100 * chunks, 100 * chunks + 50,
                                    static_cast<uint32_t>(1000 + chunks)});
        pos += len;
        drain();
    }
    void drain() {
        for (int i = 0; i < 100000; ++i) {
            Message m;
            const ParseStatus s = parser.parse(buf, m);
            if (s == ParseStatus::kNeedMore) return;
            ++calls;
            statuses.push_back(s);
            if (s == ParseStatus::kFrame) frames.push_back(std::move(m));
            if (s == ParseStatus::kInvalid) ++invalid;
            if (s == ParseStatus::kSkip) ++skipped;
        }
        runaway = true;
    }
    // Feeds `text` split at `cuts` (ascending offsets).
    void feed_split(std::string_view text, const std::vector<size_t>& cuts) {
        size_t from = 0;
        for (size_t c : cuts) {
            if (c > from && c <= text.size()) {
                feed(text.substr(from, c - from));
                from = c;
            }
        }
        if (from < text.size()) feed(text.substr(from));
    }
    bool finish() {
        Message m;
        if (!parser.finish(m)) return false;
        frames.push_back(std::move(m));
        return true;
    }

    Counters counters;
    stream::StreamBuffer buf;
    Http1Parser parser;
    uint64_t pos = 0;
    uint64_t chunks = 0;
    std::vector<Message> frames;
    std::vector<ParseStatus> statuses;
    int invalid = 0;
    int skipped = 0;
    int calls = 0;
    bool runaway = false;
};

// Everything about a message that must not depend on how its bytes were chunked.
inline std::string describe(const Message& m) {
    std::string s;
    if (m.kind == MessageKind::kRequest) {
        s = "REQ " + m.request.method + " " + m.request.target + " " + m.request.version +
            " body=" + std::to_string(m.request.body_bytes);
        for (const auto& [k, v] : m.request.headers)
            s.append(" [").append(k).append(":").append(v).append("]");
    } else {
        s = "RESP " + std::to_string(m.response.status) + " " + m.response.reason + " " +
            m.response.version + " body=" + std::to_string(m.response.body_bytes);
        if (m.response.content_length) s += " cl=" + std::to_string(*m.response.content_length);
        for (const auto& [k, v] : m.response.headers)
            s.append(" [").append(k).append(":").append(v).append("]");
    }
    s += " @" + std::to_string(m.start_pos) + "-" + std::to_string(m.end_pos);
    if (m.chunked) s += " chunked";
    if (m.close_delimited) s += " close";
    if (m.body_truncated) s += " truncated";
    return s;
}

inline std::vector<std::string> describe_all(const std::vector<Message>& frames) {
    std::vector<std::string> out;
    out.reserve(frames.size());
    for (const auto& f : frames) out.push_back(describe(f));
    return out;
}

}  // namespace passport::protocol::http1::testing
