// libFuzzer target: the HTTP/1 parser (userspace/protocol/http1/). Byte 0 picks the direction,
// mid-stream start and body-prefix keeping; byte 1 seeds the chunk split; the rest is the
// stream. The stream is parsed twice, whole and cut into pieces, and both must give the same
// frames (framing depends on stream positions only). detect() sees the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/aws/aws_call.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/protocol/http1/http1_parser.hpp"
#include "userspace/stream/stream_buffer.hpp"

namespace {

using namespace passport;
using protocol::MessageKind;
using protocol::ParseStatus;
using protocol::http1::Http1Parser;
using protocol::http1::Message;

struct Run {
    Run(MessageKind kind, bool mid_stream, protocol::http1::ParserLimits limits)
        : buf(counters), parser(kind, counters, mid_stream, limits) {}

    void feed(std::string_view bytes) {
        ++chunks;
        buf.add(pos, bytes, bytes.size(), stream::ChunkTiming{chunks * 100, chunks * 100 + 50, 1});
        pos += bytes.size();
        for (int i = 0; i < 100000; ++i) {
            Message m;
            const ParseStatus s = parser.parse(buf, m);
            if (s == ParseStatus::kNeedMore) return;
            if (s == ParseStatus::kFrame) out += describe(m);
        }
        std::abort();  // no progress: a runaway loop
    }
    void finish() {
        Message m;
        if (parser.finish(m)) out += describe(m);
    }
    static std::string describe(const Message& m) {
        const bool req = m.kind == MessageKind::kRequest;
        std::string s = req ? m.request.method + " " + m.request.target + " " + m.request.version
                            : std::to_string(m.response.status) + " " + m.response.reason;
        for (const auto& [k, v] : req ? m.request.headers : m.response.headers)
            s += "|" + k + ":" + v;
        s += "|" + std::to_string(req ? m.request.body_bytes : m.response.body_bytes);
        s += "@" + std::to_string(m.start_pos) + "-" + std::to_string(m.end_pos) + "\n";
        return s;
    }

    Counters counters;
    stream::StreamBuffer buf;
    Http1Parser parser;
    uint64_t pos = 0;
    uint64_t chunks = 0;
    std::string out;
};

protocol::http1::ParserLimits limits_for(uint8_t mode) {
    protocol::http1::ParserLimits limits;
    if (mode & 4) {
        limits.body_prefix_bytes = aws::kBodyPrefixBytes;
        limits.body_interest = &aws::body_interest;
    }
    return limits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const uint8_t mode = data[0];
    uint32_t split = data[1] | 1u;
    const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
    const MessageKind kind = (mode & 1) ? MessageKind::kResponse : MessageKind::kRequest;
    const bool mid_stream = (mode & 2) != 0;

    (void)Http1Parser::detect(bytes, protocol::DetectMode::kExact);
    (void)Http1Parser::detect(bytes, protocol::DetectMode::kAnywhere);

    Run whole(kind, mid_stream, limits_for(mode));
    whole.feed(bytes);
    whole.finish();

    Run pieces(kind, mid_stream, limits_for(mode));
    for (size_t at = 0; at < bytes.size();) {
        split = split * 1103515245u + 12345u;
        const size_t n = 1 + (split >> 16) % 64;
        pieces.feed(bytes.substr(at, n));
        at += n;
    }
    pieces.finish();
    if (whole.out != pieces.out) std::abort();  // frames depend on how the bytes were cut
    return 0;
}
