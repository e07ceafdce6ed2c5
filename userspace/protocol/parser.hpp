#pragma once
// The contract every protocol parser fulfils (the idea of pixie's protocols/common/interface.h,
// made a C++20 concept so a missing piece is a compile error, not a runtime surprise).
//
// A protocol plugs in with three things:
//   1. detect(bytes, mode): does this byte string start (or, mid-stream, contain the start of) a
//      message of this protocol? Pure function of the bytes, used on a connection's first data.
//   2. a parser per direction of a connection, fed from a stream::StreamBuffer: parse() returns
//      one ParseStatus per step and leaves a complete frame in `out` on kFrame; finish() is told
//      the stream ended (some frames, like close-delimited HTTP bodies, end only then).
//   3. a protocol::Session (session.hpp) that pairs requests and responses into exchanges, made
//      by the registry (registry.hpp): the ONE list of protocols.
// Parsers see untrusted bytes: they never throw, never assert on input, count what they reject
// (Counters, "<protocol>.<what>") and do bounded work per byte.
//
// Everything here runs on the pipeline thread.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "userspace/stream/stream_buffer.hpp"

namespace passport::protocol {

enum class ParseStatus : uint8_t {
    kNeedMore,  // nothing more can be done with what is buffered (bytes may have been consumed)
    kInvalid,   // bytes that are not a valid frame were dropped (counted); parsing resynchronises
    kFrame,     // `out` holds one complete frame
    kSkip,      // bytes were consumed that carry no frame (interim response, gap, padding)
};

enum class MessageKind : uint8_t { kRequest, kResponse };

enum class DetectMode : uint8_t {
    kExact,     // the bytes are the start of the stream: a message must begin at offset 0
    kAnywhere,  // the stream was joined mid-way: look for a message start at any line start
};

enum class DetectStatus : uint8_t {
    kNeedMore,  // too few bytes to tell
    kNo,        // not this protocol (kExact), or no message start in these bytes (kAnywhere)
    kFound,     // a message of kind `kind` starts at `offset`
};

struct Detection {
    DetectStatus status = DetectStatus::kNeedMore;
    MessageKind kind = MessageKind::kRequest;
    // kFound: where the message starts. kNeedMore/kNo in kAnywhere mode: how many leading bytes
    // can be discarded because no message can start in them.
    size_t offset = 0;
};

// When the first and last byte of a frame moved (from stream::StreamBuffer::timing_at).
struct FrameTiming {
    stream::ChunkTiming first;
    stream::ChunkTiming last;
};

template <typename P>
concept StreamParser = requires(P& parser, stream::StreamBuffer& buffer, typename P::Frame& out,
                                std::string_view bytes, DetectMode mode) {
    { parser.parse(buffer, out) } -> std::same_as<ParseStatus>;
    // End of stream: true when that completed a frame (now in `out`).
    { parser.finish(out) } -> std::same_as<bool>;
    { P::detect(bytes, mode) } -> std::same_as<Detection>;
};

}  // namespace passport::protocol
