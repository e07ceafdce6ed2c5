#pragma once
// Http1Parser: incremental HTTP/1.0 and HTTP/1.1 parser for one direction of one connection,
// written for observing traffic rather than serving it:
//   - the start line and header block are parsed all at once when complete (bounded by
//     ParserLimits), then consumed; bodies are never stored, only skipped and counted, as bytes
//     arrive, and across capture gaps when the framing says how long they are;
//   - framing follows RFC 9112 section 6: chunked (extensions and trailers allowed), then
//     Content-Length, then for responses "until the connection closes"; responses to HEAD and
//     1xx/204/304 responses have no body; 1xx interim responses (100 Continue) are skipped
//     (kSkip) so the final response pairs with the request; after 101 Switching Protocols or a
//     2xx answer to CONNECT the stream is no longer HTTP and the parser only discards it;
//   - malformed input is counted ("http.invalid_request"/"http.invalid_response" plus a reason),
//     the message is dropped, and the parser resynchronises at the next line that starts with a
//     plausible request or status line. A header block that runs into a capture gap is dropped
//     the same way ("http.headers_in_gap").
// Which bytes count as a message start depends only on stream positions, never on how the bytes
// were split into chunks, so the same stream always parses to the same messages.
//
// Owned by the HTTP session of a connection (pairing::HttpPairer); pipeline thread only.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "passport/abi.h"
#include "userspace/common/counters.hpp"
#include "userspace/protocol/http1/http1_types.hpp"
#include "userspace/protocol/parser.hpp"
#include "userspace/stream/stream_buffer.hpp"

namespace passport::protocol::http1 {

// One parsed message. Exactly one of request/response is meaningful, as `kind` says.
struct Message {
    MessageKind kind = MessageKind::kRequest;
    Request request;
    Response response;
    FrameTiming timing;      // syscalls that moved the first and the last byte
    uint64_t start_pos = 0;  // stream position of the first byte
    uint64_t end_pos = 0;    // one past the last byte
    bool chunked = false;
    bool close_delimited = false;  // response body ended by the connection closing
    // A chunk-size line fell into a capture gap: the message is known, its body length is not
    // (body_bytes counts what was framed before the gap).
    bool body_truncated = false;
};

struct ParserLimits {
    // start line + headers + the empty line; the kernel copies request heads whole up to the
    // same size (PP_HEAD_BUDGET), so a larger limit here would only ever see gaps.
    size_t max_header_bytes = static_cast<size_t>(PP_HEAD_BUDGET);
    size_t max_headers = 100;
    size_t max_chunk_line = 1024;  // chunk size + extensions
    // Body prefix, off unless set: body_interest looks at each request head and says whether
    // its body keeps its first body_prefix_bytes (Request::body_prefix) and whether the answer's
    // does (Request::response_body, handed to the response parser by the session through
    // set_keep_response_body). Everything else stays counted only, so memory does not grow with
    // traffic that does not need it.
    size_t body_prefix_bytes = 0;
    BodyInterest (*body_interest)(const Request& head) = nullptr;
};

// Why a start line at some offset is or is not plausible; exposed for tests.
enum class LineMatch : uint8_t { kNo, kPartial, kYes };
// Is `bytes` the beginning of a request line (kind kRequest) or status line (kResponse)?
// kPartial: every byte seen fits, but the line is not complete. Monotone: once kNo, more bytes
// never make it plausible.
LineMatch match_start_line(std::string_view bytes, MessageKind kind, size_t max_line);

class Http1Parser {
  public:
    using Frame = Message;

    // mid_stream: the stream was joined mid-way, so start by looking for a message boundary
    // instead of expecting one at the first byte (leading bytes are counted as http.resync_bytes,
    // not as invalid).
    Http1Parser(MessageKind kind, Counters& counters, bool mid_stream = false,
                ParserLimits limits = {});

    ParseStatus parse(stream::StreamBuffer& buffer, Message& out);
    // The stream ended: completes a response whose body was delimited by the close.
    bool finish(Message& out);

    // Response side: the method of the request the next response answers ("" when unknown).
    // HEAD and CONNECT change how a response is framed.
    void set_request_method(std::string_view method) { request_method_ = method; }
    // Response side: whether the next response keeps a body prefix (Request::response_body of
    // the request it answers).
    void set_keep_response_body(KeepBody keep) { keep_response_body_ = keep; }
    // Headers of a message were parsed and its body is still arriving.
    bool in_message() const;
    // The message being received; meaningful while in_message().
    const Message& current() const;
    // After an upgrade or a CONNECT tunnel: the rest of the stream is not HTTP.
    bool upgraded() const { return state_ == State::kOpaque; }

    static Detection detect(std::string_view bytes, DetectMode mode);

  private:
    enum class State : uint8_t {
        kStart,           // at a message boundary
        kResync,          // looking for a plausible start line
        kBodyLength,      // Content-Length body: remaining_ bytes left
        kChunkSize,       // expecting a chunk-size line
        kChunkData,       // inside a chunk: remaining_ bytes left
        kChunkDataEnd,    // the CRLF after chunk data
        kTrailers,        // after the last chunk: trailer fields and the final empty line
        kBodyUntilClose,  // response body delimited by the connection closing
        kOpaque,          // not HTTP any more (upgrade, tunnel): discard everything
    };
    // Internal step result: either keep going or return a status to the caller.
    struct Step {
        bool done = false;
        ParseStatus status = ParseStatus::kNeedMore;
    };

    Step parse_start(stream::StreamBuffer& buffer, Message& out);
    Step resync(stream::StreamBuffer& buffer);
    Step body_bytes(stream::StreamBuffer& buffer, Message& out);
    Step chunk_size(stream::StreamBuffer& buffer, Message& out);
    Step chunk_data_end(stream::StreamBuffer& buffer);
    Step trailers(stream::StreamBuffer& buffer, Message& out);
    Step body_until_close(stream::StreamBuffer& buffer);

    // Parses a complete header block (start line .. empty line) into msg_. Returns the counter
    // name of the reason on failure, empty on success.
    std::string_view parse_header_block(std::string_view block);
    // Decides the body framing of msg_ and the next state; a counter name on failure.
    std::string_view choose_framing();
    // Moves past n positions of the current message (captured or in a gap), remembering the
    // timing of its last byte.
    void take(stream::StreamBuffer& buffer, uint64_t n);
    // Finishes msg_ into `out` (or skips it, for interim responses); then state `next`.
    Step complete(Message& out, State next);
    // Drops the current message (counted under `reason`) and resynchronises.
    Step invalid(stream::StreamBuffer& buffer, std::string_view reason, size_t drop);
    // The next message's start line or headers were not captured.
    Step lost_in_gap(stream::StreamBuffer& buffer);
    // A chunk-size line was not captured: hand on what is known, then resynchronise.
    Step framing_lost(stream::StreamBuffer& buffer, Message& out);
    void drop_resync(stream::StreamBuffer& buffer, size_t n);
    // msg_'s body length as framed so far (request or response, as kind_ says).
    uint64_t& body_bytes_field() {
        return kind_ == MessageKind::kRequest ? msg().request.body_bytes
                                              : msg().response.body_bytes;
    }
    void reset_message();
    // Appends captured body bytes to the kept prefix, when one is being kept.
    void keep_body_bytes(std::string_view bytes);
    std::string& body_prefix_field() {
        return kind_ == MessageKind::kRequest ? msg().request.body_prefix
                                              : msg().response.body_prefix;
    }

    MessageKind kind_;
    Counters& counters_;
    ParserLimits limits_;
    State state_ = State::kStart;
    // The message being parsed, made when its head is: between messages (an idle keep-alive
    // connection) a parser holds none, which keeps the session of such a connection small.
    Message& msg() {
        if (!msg_) {
            msg_ = std::make_unique<Message>();
            msg_->kind = kind_;
        }
        return *msg_;
    }
    std::unique_ptr<Message> msg_;
    uint64_t remaining_ = 0;      // body or chunk bytes still to skip
    size_t scan_from_ = 0;        // where the search for the header block's end resumes
    bool prev_lf_ = true;         // resync: the byte before position() ended a line
    bool interim_ = false;        // the message being parsed is a 1xx interim response
    bool upgrade_after_ = false;  // go opaque once the current message completes
    bool cr_seen_ = false;        // kChunkDataEnd: the CR before the LF was passed
    std::string request_method_;
    KeepBody keep_response_body_ = KeepBody::kNo;
    bool keeping_body_ = false;  // msg_'s body prefix is being collected
    bool discontinuity_known_ = false;
    uint64_t seen_discontinuities_ = 0;
};

static_assert(StreamParser<Http1Parser>);

}  // namespace passport::protocol::http1
