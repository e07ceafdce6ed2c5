#include "userspace/protocol/http1/http1_parser.hpp"

#include <algorithm>
#include <array>
#include <limits>

#include "userspace/common/text.hpp"

namespace passport::protocol::http1 {

namespace {

using text::hex_value;

constexpr size_t kMaxMethodLen = 20;
// A parse() call returns on every frame; this only guards against a bug looping forever.
constexpr int kMaxStepsPerCall = 1 << 16;
// Chunk sizes beyond 15 hex digits (2^60 bytes) are nonsense, and would overflow.
constexpr size_t kMaxChunkSizeDigits = 15;
constexpr size_t kMaxContentLengthDigits = 18;

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// RFC 9110 tchar, as a table: checked for every character of every header name.
constexpr std::array<bool, 256> kTchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; c++) t[c] = true;
    for (int c = 'a'; c <= 'z'; c++) t[c] = true;
    for (int c = 'A'; c <= 'Z'; c++) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}();

bool is_tchar(char ch) { return kTchar[static_cast<unsigned char>(ch)]; }

// Methods are case-sensitive tokens and are uppercase in practice; requiring that keeps binary
// data and body text from looking like a request during resynchronisation.
bool is_method_char(char c, size_t index) {
    return is_upper(c) || (index > 0 && (c == '-' || c == '_'));
}

// Request targets are visible ASCII; raw UTF-8 from sloppy clients is tolerated.
bool is_target_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u != 0x7f;
}

bool is_reason_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);
}

// Field values as servers accept them, not as RFC 9110 allows them: Python's http.server, nginx
// and Node answer requests whose header values carry control bytes (\x01, ESC, DEL), so such a
// request was served and must be traced. Only NUL and a bare CR are refused: they mark binary
// data or a broken line ending, not a header.
bool is_field_value(std::string_view v) {
    return v.find('\0') == std::string_view::npos && v.find('\r') == std::string_view::npos;
}

std::string_view strip_cr(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
}

// End of line at `i`: optional CR, then LF.
LineMatch match_line_end(std::string_view s, size_t i) {
    if (i == s.size()) return LineMatch::kPartial;
    if (s[i] == '\r') {
        ++i;
        if (i == s.size()) return LineMatch::kPartial;
    }
    return s[i] == '\n' ? LineMatch::kYes : LineMatch::kNo;
}

// Matches `literal` at s[i..], advancing i. kYes when all of it matched.
LineMatch match_literal(std::string_view s, size_t& i, std::string_view literal) {
    for (char c : literal) {
        if (i == s.size()) return LineMatch::kPartial;
        if (s[i] != c) return LineMatch::kNo;
        ++i;
    }
    return LineMatch::kYes;
}

LineMatch match_request_line(std::string_view s) {
    size_t i = 0;
    while (i < s.size() && i < kMaxMethodLen && is_method_char(s[i], i)) ++i;
    if (i == s.size()) return LineMatch::kPartial;
    if (i == 0 || s[i] != ' ') return LineMatch::kNo;
    ++i;
    const size_t target_start = i;
    while (i < s.size() && is_target_char(s[i])) ++i;
    if (i == s.size()) return LineMatch::kPartial;
    if (i == target_start || s[i] != ' ') return LineMatch::kNo;
    ++i;
    if (auto m = match_literal(s, i, "HTTP/1."); m != LineMatch::kYes) return m;
    if (i == s.size()) return LineMatch::kPartial;
    if (!is_digit(s[i])) return LineMatch::kNo;
    return match_line_end(s, i + 1);
}

LineMatch match_status_line(std::string_view s) {
    size_t i = 0;
    if (auto m = match_literal(s, i, "HTTP/1."); m != LineMatch::kYes) return m;
    if (i == s.size()) return LineMatch::kPartial;
    if (!is_digit(s[i])) return LineMatch::kNo;
    ++i;
    if (auto m = match_literal(s, i, " "); m != LineMatch::kYes) return m;
    for (int d = 0; d < 3; ++d, ++i) {
        if (i == s.size()) return LineMatch::kPartial;
        if (!is_digit(s[i]) || (d == 0 && (s[i] < '1' || s[i] > '5'))) return LineMatch::kNo;
    }
    if (i == s.size()) return LineMatch::kPartial;
    if (s[i] == ' ') {
        ++i;
        while (i < s.size() && s[i] != '\r' && s[i] != '\n' && is_reason_char(s[i])) ++i;
    }
    return match_line_end(s, i);
}

// Index one past the empty line that ends a header (or trailer) block, searching LFs from
// `from`; npos if not (yet) there. Only ends within `limit` bytes count. `resume` gets where a
// later search can start without missing anything.
size_t find_block_end(std::string_view s, size_t from, size_t limit, size_t& resume) {
    const size_t stop = std::min(s.size(), limit);
    for (size_t i = s.find('\n', from); i != std::string_view::npos && i < stop;
         i = s.find('\n', i + 1)) {
        if (i + 1 < s.size() && s[i + 1] == '\n')
            return i + 2 <= limit ? i + 2 : std::string_view::npos;
        if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') {
            return i + 3 <= limit ? i + 3 : std::string_view::npos;
        }
    }
    resume = s.size() >= 2 ? s.size() - 2 : 0;
    return std::string_view::npos;
}

// Content-Length: one or more headers, each possibly a comma list, all the same number.
bool parse_content_length(const Headers& headers, std::optional<uint64_t>& out, bool& present) {
    present = false;
    std::optional<uint64_t> value;
    for (const auto& [name, raw] : headers) {
        if (!text::iequals(name, "content-length")) continue;
        present = true;
        std::string_view rest = raw;
        while (true) {
            const size_t comma = rest.find(',');
            const std::string_view item = text::trim(rest.substr(0, comma));
            if (item.empty() || item.size() > kMaxContentLengthDigits) return false;
            uint64_t v = 0;
            for (char c : item) {
                if (!is_digit(c)) return false;
                v = v * 10 + static_cast<uint64_t>(c - '0');
            }
            if (value && *value != v) return false;
            value = v;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    out = value;
    return true;
}

// Transfer-Encoding: is the final coding "chunked"? `present` tells whether there was any.
bool final_coding_is_chunked(const Headers& headers, bool& present) {
    present = false;
    std::string_view last;
    for (const auto& [name, raw] : headers) {
        if (!text::iequals(name, "transfer-encoding")) continue;
        present = true;
        std::string_view rest = raw;
        while (!rest.empty()) {
            const size_t comma = rest.find(',');
            std::string_view item = rest.substr(0, comma);
            item = text::trim(item.substr(0, item.find(';')));
            if (!item.empty()) last = item;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return text::iequals(last, "chunked");
}

}  // namespace

LineMatch match_start_line(std::string_view bytes, MessageKind kind, size_t max_line) {
    const LineMatch m =
        kind == MessageKind::kRequest ? match_request_line(bytes) : match_status_line(bytes);
    if (m == LineMatch::kPartial && bytes.size() >= max_line) return LineMatch::kNo;
    if (m == LineMatch::kYes && bytes.find('\n') >= max_line) return LineMatch::kNo;
    return m;
}

Detection Http1Parser::detect(std::string_view bytes, DetectMode mode) {
    const size_t max_line = ParserLimits{}.max_header_bytes;
    // One candidate position: is a request or a status line starting there?
    auto at = [&](size_t c) -> Detection {
        const std::string_view s = bytes.substr(c);
        const LineMatch rq = match_start_line(s, MessageKind::kRequest, max_line);
        if (rq == LineMatch::kYes) return {DetectStatus::kFound, MessageKind::kRequest, c};
        const LineMatch rs = match_start_line(s, MessageKind::kResponse, max_line);
        if (rs == LineMatch::kYes) return {DetectStatus::kFound, MessageKind::kResponse, c};
        if (rq == LineMatch::kPartial || rs == LineMatch::kPartial) {
            return {DetectStatus::kNeedMore, MessageKind::kRequest, c};
        }
        return {DetectStatus::kNo, MessageKind::kRequest, c};
    };
    if (mode == DetectMode::kExact) {
        Detection d = at(0);
        d.offset = 0;
        return d;
    }
    size_t c = 0;
    while (true) {
        const Detection d = at(c);
        // kNeedMore: the candidate line is unfinished, so no later line start exists yet.
        if (d.status != DetectStatus::kNo) return d;
        const size_t lf = bytes.find('\n', c);
        if (lf == std::string_view::npos) break;
        c = lf + 1;
    }
    return {DetectStatus::kNo, MessageKind::kRequest, bytes.size()};
}

Http1Parser::Http1Parser(MessageKind kind, Counters& counters, bool mid_stream, ParserLimits limits)
    : kind_(kind), counters_(counters), limits_(limits) {
    if (mid_stream) {
        state_ = State::kResync;
        prev_lf_ = true;  // the first captured byte follows a syscall boundary: a fair candidate
    }
}

bool Http1Parser::in_message() const {
    switch (state_) {
        case State::kBodyLength:
        case State::kChunkSize:
        case State::kChunkData:
        case State::kChunkDataEnd:
        case State::kTrailers:
        case State::kBodyUntilClose:
            return true;
        case State::kStart:
        case State::kResync:
        case State::kOpaque:
            return false;
    }
    return false;
}

ParseStatus Http1Parser::parse(stream::StreamBuffer& buffer, Message& out) {
    if (!discontinuity_known_) {
        discontinuity_known_ = true;
        seen_discontinuities_ = buffer.discontinuities();
    } else if (buffer.discontinuities() != seen_discontinuities_) {
        // Bytes vanished under us (buffer overflow): whatever we were in the middle of is lost.
        seen_discontinuities_ = buffer.discontinuities();
        if (state_ != State::kOpaque) {
            if (in_message()) counters_.add("http.dropped_by_overflow");
            reset_message();
            state_ = State::kResync;
            prev_lf_ = true;
        }
    }
    for (int i = 0; i < kMaxStepsPerCall; ++i) {
        Step step;
        switch (state_) {
            case State::kStart:
                step = parse_start(buffer, out);
                break;
            case State::kResync:
                step = resync(buffer);
                break;
            case State::kBodyLength:
            case State::kChunkData:
                step = body_bytes(buffer, out);
                break;
            case State::kChunkSize:
                step = chunk_size(buffer, out);
                break;
            case State::kChunkDataEnd:
                step = chunk_data_end(buffer);
                break;
            case State::kTrailers:
                step = trailers(buffer, out);
                break;
            case State::kBodyUntilClose:
                step = body_until_close(buffer);
                break;
            case State::kOpaque:
                buffer.skip(std::numeric_limits<uint64_t>::max());
                return ParseStatus::kNeedMore;
        }
        if (step.done) return step.status;
    }
    counters_.add("http.parse_step_limit");
    return ParseStatus::kNeedMore;
}

const Message& Http1Parser::current() const {
    static const Message kNone{};
    return msg_ ? *msg_ : kNone;
}

bool Http1Parser::finish(Message& out) {
    if (state_ != State::kBodyUntilClose) return false;
    msg().close_delimited = true;
    complete(out, State::kStart);
    return true;
}

Http1Parser::Step Http1Parser::parse_start(stream::StreamBuffer& buffer, Message& out) {
    std::string_view head = buffer.head();
    if (head.empty()) {
        // The next message begins in bytes that were never captured: it is lost.
        if (buffer.gap_ahead() > 0) return lost_in_gap(buffer);
        return {true, ParseStatus::kNeedMore};
    }
    // Empty lines before a message are tolerated (RFC 9112 section 2.2).
    size_t blank = 0;
    while (blank < head.size() && (head[blank] == '\r' || head[blank] == '\n')) ++blank;
    if (blank > 0) {
        buffer.consume(blank);
        scan_from_ = 0;
        return {};
    }
    const LineMatch m = match_start_line(head, kind_, limits_.max_header_bytes);
    if (m == LineMatch::kNo) return invalid(buffer, "http.bad_start_line", 1);
    if (m == LineMatch::kPartial) {
        if (buffer.gap_ahead() > 0) return lost_in_gap(buffer);
        return {true, ParseStatus::kNeedMore};
    }
    size_t resume = 0;
    const size_t end = find_block_end(head, scan_from_, limits_.max_header_bytes, resume);
    if (end == std::string_view::npos) {
        if (head.size() >= limits_.max_header_bytes) {
            return invalid(buffer, "http.headers_too_large", 1);
        }
        if (buffer.gap_ahead() > 0) return lost_in_gap(buffer);
        scan_from_ = resume;
        return {true, ParseStatus::kNeedMore};
    }
    scan_from_ = 0;
    reset_message();
    if (auto reason = parse_header_block(head.substr(0, end)); !reason.empty()) {
        return invalid(buffer, reason, 1);
    }
    if (auto reason = choose_framing(); !reason.empty()) return invalid(buffer, reason, 1);
    if (limits_.body_prefix_bytes > 0) {
        if (kind_ == MessageKind::kRequest) {
            if (limits_.body_interest) {
                const BodyInterest interest = limits_.body_interest(msg().request);
                msg().request.body_prefix_kept = interest.request;
                msg().request.response_body = interest.response;
            }
            keeping_body_ = msg().request.body_prefix_kept;
        } else {
            keeping_body_ =
                keep_response_body_ == KeepBody::kYes ||
                (keep_response_body_ == KeepBody::kIfError && msg().response.status >= 400);
        }
    }
    msg().start_pos = buffer.position();
    msg().timing.first = buffer.timing_at(buffer.position()).value_or(stream::ChunkTiming{});
    take(buffer, end);
    if (state_ == State::kStart) return complete(out, State::kStart);
    return {};
}

std::string_view Http1Parser::parse_header_block(std::string_view block) {
    size_t line_start = 0;
    auto next_line = [&]() {
        const size_t lf = block.find('\n', line_start);
        const std::string_view line = strip_cr(block.substr(line_start, lf - line_start));
        line_start = lf + 1;
        return line;
    };
    const std::string_view start = next_line();
    if (kind_ == MessageKind::kRequest) {
        const size_t sp1 = start.find(' ');
        const size_t sp2 = start.find(' ', sp1 + 1);
        msg().request.method.assign(start.substr(0, sp1));
        msg().request.target.assign(start.substr(sp1 + 1, sp2 - sp1 - 1));
        msg().request.version.assign(start.substr(sp2 + 1));
    } else {
        msg().response.version.assign(start.substr(0, 8));
        msg().response.status = (start[9] - '0') * 100 + (start[10] - '0') * 10 + (start[11] - '0');
        if (start.size() > 13) msg().response.reason.assign(start.substr(13));
    }
    Headers& headers =
        kind_ == MessageKind::kRequest ? msg().request.headers : msg().response.headers;
    auto header_line = [&](std::string_view line) -> std::string_view {
        if (line.front() == ' ' || line.front() == '\t') {
            // Obsolete line folding: the line continues the previous field's value.
            if (headers.empty()) return "http.bad_header";
            const std::string_view more = text::trim(line);
            if (!is_field_value(more)) return "http.bad_header";
            headers.back().second.append(" ").append(more);
            return {};
        }
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return "http.bad_header";
        const std::string_view name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), is_tchar)) return "http.bad_header";
        const std::string_view value = text::trim(line.substr(colon + 1));
        if (!is_field_value(value)) return "http.bad_header";
        if (headers.size() >= limits_.max_headers) return "http.too_many_headers";
        headers.emplace_back(std::string(name), std::string(value));
        return {};
    };
    // The lines are split first, up to a stack's worth, so the header list is allocated once.
    constexpr size_t kStackLines = 32;
    std::array<std::string_view, kStackLines> lines;
    size_t count = 0;
    bool ended = false;
    while (line_start < block.size() && count < kStackLines) {
        const std::string_view line = next_line();
        if (line.empty()) {
            ended = true;
            break;
        }
        lines[count++] = line;
    }
    headers.reserve(std::min(count + (ended ? 0 : kStackLines), limits_.max_headers));
    for (size_t i = 0; i < count; ++i) {
        if (const std::string_view reason = header_line(lines[i]); !reason.empty()) return reason;
    }
    while (!ended && line_start < block.size()) {
        const std::string_view line = next_line();
        if (line.empty()) break;
        if (const std::string_view reason = header_line(line); !reason.empty()) return reason;
    }
    return {};
}

std::string_view Http1Parser::choose_framing() {
    state_ = State::kStart;  // no body unless decided otherwise below
    remaining_ = 0;
    bool te_present = false;
    const bool chunked = kind_ == MessageKind::kRequest
                             ? final_coding_is_chunked(msg().request.headers, te_present)
                             : final_coding_is_chunked(msg().response.headers, te_present);
    bool cl_present = false;
    std::optional<uint64_t> length;
    const bool cl_ok = parse_content_length(
        kind_ == MessageKind::kRequest ? msg().request.headers : msg().response.headers, length,
        cl_present);

    auto body_of_length = [&](uint64_t n) {
        remaining_ = n;
        body_bytes_field() = n;
        if (n > 0) state_ = State::kBodyLength;
    };
    auto body_chunked = [&] {
        msg().chunked = true;
        state_ = State::kChunkSize;
    };

    if (kind_ == MessageKind::kRequest) {
        // RFC 9112 6.3: Transfer-Encoding wins over Content-Length; a request without either has
        // no body; a request whose final coding is not chunked cannot be framed.
        if (te_present) {
            if (!chunked) return "http.bad_transfer_encoding";
            body_chunked();
        } else if (cl_present) {
            if (!cl_ok) return "http.bad_content_length";
            body_of_length(*length);
        }
        return {};
    }

    if (cl_present && cl_ok) msg().response.content_length = length;
    const int status = msg().response.status;
    if (status >= 100 && status < 200) {
        // 101 answers the request and ends HTTP on this connection; other 1xx are interim.
        if (status == 101) {
            upgrade_after_ = true;
        } else {
            interim_ = true;
        }
        return {};
    }
    if (request_method_ == "HEAD" || status == 204 || status == 304) return {};
    if (request_method_ == "CONNECT" && status >= 200 && status < 300) {
        upgrade_after_ = true;  // a tunnel: what follows is the tunnelled protocol
        return {};
    }
    if (te_present) {
        if (chunked) {
            body_chunked();
        } else {
            state_ = State::kBodyUntilClose;
        }
        return {};
    }
    if (cl_present) {
        if (!cl_ok) return "http.bad_content_length";
        body_of_length(*length);
        return {};
    }
    state_ = State::kBodyUntilClose;
    return {};
}

void Http1Parser::take(stream::StreamBuffer& buffer, uint64_t n) {
    if (n == 0) return;
    if (auto timing = buffer.timing_at(buffer.position() + n - 1)) msg().timing.last = *timing;
    buffer.skip(n);
    msg().end_pos = buffer.position();
}

Http1Parser::Step Http1Parser::body_bytes(stream::StreamBuffer& buffer, Message& out) {
    if (remaining_ > 0) {
        const std::string_view head = buffer.head();
        if (!head.empty()) {
            const uint64_t n = std::min<uint64_t>(head.size(), remaining_);
            keep_body_bytes(head.substr(0, n));
            take(buffer, n);
            remaining_ -= n;
        } else if (const uint64_t gap = buffer.gap_ahead(); gap > 0) {
            // Bytes never captured, but the framing says how many belong to this body. A kept
            // prefix stops here: bytes after a hole would not continue it.
            keeping_body_ = false;
            const uint64_t n = std::min(gap, remaining_);
            take(buffer, n);
            remaining_ -= n;
            counters_.add("http.body_gap_bytes", n);
        } else {
            return {true, ParseStatus::kNeedMore};
        }
    }
    if (remaining_ > 0) return {};
    if (state_ == State::kBodyLength) return complete(out, State::kStart);
    state_ = State::kChunkDataEnd;
    cr_seen_ = false;
    return {};
}

Http1Parser::Step Http1Parser::chunk_size(stream::StreamBuffer& buffer, Message& out) {
    const std::string_view head = buffer.head();
    const size_t window = std::min(head.size(), limits_.max_chunk_line);
    const size_t lf = head.substr(0, window).find('\n');
    if (lf == std::string_view::npos) {
        if (head.size() >= limits_.max_chunk_line) return invalid(buffer, "http.bad_chunk", 1);
        if (buffer.gap_ahead() > 0) return framing_lost(buffer, out);
        return {true, ParseStatus::kNeedMore};
    }
    const std::string_view line = strip_cr(head.substr(0, lf));
    size_t i = 0;
    uint64_t size = 0;
    while (i < line.size() && hex_value(line[i]) >= 0) {
        if (i == kMaxChunkSizeDigits) return invalid(buffer, "http.bad_chunk", 1);
        size = size * 16 + static_cast<uint64_t>(hex_value(line[i]));
        ++i;
    }
    if (i == 0) return invalid(buffer, "http.bad_chunk", 1);
    std::string_view rest = line.substr(i);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (!rest.empty()) {
        // Chunk extensions (";name=value") carry nothing we need; only check they are text.
        if (rest.front() != ';') return invalid(buffer, "http.bad_chunk", 1);
        for (char c : rest) {
            if (is_ctl(static_cast<unsigned char>(c)) && c != '\t') {
                return invalid(buffer, "http.bad_chunk", 1);
            }
        }
    }
    take(buffer, lf + 1);
    if (size == 0) {
        state_ = State::kTrailers;
        scan_from_ = 0;
    } else {
        remaining_ = size;
        body_bytes_field() += size;
        state_ = State::kChunkData;
    }
    return {};
}

Http1Parser::Step Http1Parser::chunk_data_end(stream::StreamBuffer& buffer) {
    // CRLF (or a bare LF) after the chunk data. Positions in a capture gap are assumed to be it.
    while (true) {
        const std::string_view head = buffer.head();
        if (head.empty()) {
            if (buffer.gap_ahead() == 0) return {true, ParseStatus::kNeedMore};
            take(buffer, 1);
            if (cr_seen_) break;
            cr_seen_ = true;
            continue;
        }
        if (!cr_seen_ && head.front() == '\r') {
            take(buffer, 1);
            cr_seen_ = true;
            continue;
        }
        if (head.front() == '\n') {
            take(buffer, 1);
            break;
        }
        return invalid(buffer, "http.bad_chunk", 1);
    }
    cr_seen_ = false;
    state_ = State::kChunkSize;
    return {};
}

Http1Parser::Step Http1Parser::trailers(stream::StreamBuffer& buffer, Message& out) {
    const std::string_view head = buffer.head();
    if (head.empty()) {
        // The body is complete; only the end of the trailer section went uncaptured.
        if (buffer.gap_ahead() > 0) return complete(out, State::kResync);
        return {true, ParseStatus::kNeedMore};
    }
    if (head.front() == '\n') {
        take(buffer, 1);
        return complete(out, State::kStart);
    }
    if (head.front() == '\r') {
        if (head.size() == 1) {
            if (buffer.gap_ahead() > 0) return complete(out, State::kResync);
            return {true, ParseStatus::kNeedMore};
        }
        if (head[1] != '\n') return invalid(buffer, "http.bad_chunk", 1);
        take(buffer, 2);
        return complete(out, State::kStart);
    }
    size_t resume = 0;
    const size_t end = find_block_end(head, scan_from_, limits_.max_header_bytes, resume);
    if (end == std::string_view::npos) {
        if (head.size() >= limits_.max_header_bytes) {
            return invalid(buffer, "http.headers_too_large", 1);
        }
        if (buffer.gap_ahead() > 0) return complete(out, State::kResync);
        scan_from_ = resume;
        return {true, ParseStatus::kNeedMore};
    }
    // Trailer fields are not kept; check they are fields at all, so garbage is not swallowed.
    std::string_view block = head.substr(0, end);
    size_t start = 0;
    while (start < block.size()) {
        const size_t lf = block.find('\n', start);
        const std::string_view line = strip_cr(block.substr(start, lf - start));
        start = lf + 1;
        if (line.empty()) break;
        const size_t colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos ||
            !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon),
                         is_tchar)) {
            return invalid(buffer, "http.bad_trailer", 1);
        }
    }
    counters_.add("http.trailers");
    scan_from_ = 0;
    take(buffer, end);
    return complete(out, State::kStart);
}

Http1Parser::Step Http1Parser::body_until_close(stream::StreamBuffer& buffer) {
    const std::string_view head = buffer.head();
    uint64_t n = head.size();
    if (n == 0) {
        n = buffer.gap_ahead();
        keeping_body_ = false;
    } else {
        keep_body_bytes(head);
    }
    if (n == 0) return {true, ParseStatus::kNeedMore};
    take(buffer, n);
    body_bytes_field() += n;
    return {};
}

Http1Parser::Step Http1Parser::framing_lost(stream::StreamBuffer& buffer, Message& out) {
    // A chunk-size line was not captured, so where this body ends is unknown. The message itself
    // is known: hand it on with the body seen so far, then look for the next message.
    (void)buffer;
    counters_.add("http.chunk_framing_in_gap");
    msg().body_truncated = true;
    return complete(out, State::kResync);
}

Http1Parser::Step Http1Parser::resync(stream::StreamBuffer& buffer) {
    const std::string_view head = buffer.head();
    if (head.empty()) {
        const uint64_t gap = buffer.gap_ahead();
        if (gap == 0) return {true, ParseStatus::kNeedMore};
        buffer.skip(gap);
        prev_lf_ = true;  // the first byte after a gap starts a syscall: a fair candidate
        return {};
    }
    size_t c = 0;
    if (!prev_lf_) {
        const size_t lf = head.find('\n');
        c = lf == std::string_view::npos ? std::string_view::npos : lf + 1;
    }
    while (c != std::string_view::npos) {
        const LineMatch m = match_start_line(head.substr(c), kind_, limits_.max_header_bytes);
        if (m == LineMatch::kYes) {
            drop_resync(buffer, c);
            state_ = State::kStart;
            scan_from_ = 0;
            return {};
        }
        if (m == LineMatch::kPartial && buffer.gap_ahead() == 0) {
            // Could be a start line once more bytes arrive; keep it.
            drop_resync(buffer, c);
            prev_lf_ = true;
            return {true, ParseStatus::kNeedMore};
        }
        const size_t lf = head.find('\n', c);
        c = lf == std::string_view::npos ? std::string_view::npos : lf + 1;
    }
    prev_lf_ = head.back() == '\n';
    drop_resync(buffer, head.size());
    return buffer.gap_ahead() > 0 ? Step{} : Step{true, ParseStatus::kNeedMore};
}

void Http1Parser::drop_resync(stream::StreamBuffer& buffer, size_t n) {
    if (n == 0) return;
    counters_.add("http.resync_bytes", n);
    buffer.consume(n);
}

Http1Parser::Step Http1Parser::lost_in_gap(stream::StreamBuffer& buffer) {
    counters_.add("http.headers_in_gap");
    const size_t n = buffer.head().size();
    if (n > 0) counters_.add("http.resync_bytes", n);
    buffer.consume(n);
    reset_message();
    state_ = State::kResync;
    prev_lf_ = true;
    return {true, ParseStatus::kInvalid};
}

Http1Parser::Step Http1Parser::invalid(stream::StreamBuffer& buffer, std::string_view reason,
                                       size_t drop) {
    counters_.add(kind_ == MessageKind::kRequest ? "http.invalid_request"
                                                 : "http.invalid_response");
    counters_.add(reason);
    const std::string_view head = buffer.head();
    if (!head.empty()) {
        const size_t n = std::clamp<size_t>(drop, 1, head.size());
        prev_lf_ = head[n - 1] == '\n';
        buffer.consume(n);
    } else {
        buffer.skip(buffer.gap_ahead());
        prev_lf_ = true;
    }
    reset_message();
    state_ = State::kResync;
    return {true, ParseStatus::kInvalid};
}

Http1Parser::Step Http1Parser::complete(Message& out, State next) {
    if (interim_) {
        counters_.add("http.interim_responses");
        reset_message();
        state_ = next;
        return {true, ParseStatus::kSkip};
    }
    counters_.add(kind_ == MessageKind::kRequest ? "http.requests" : "http.responses");
    state_ = next;
    if (upgrade_after_) {
        counters_.add("http.upgrades");
        state_ = State::kOpaque;
    }
    out = std::move(msg());
    msg_.reset();  // an idle connection holds no message
    reset_message();
    return {true, ParseStatus::kFrame};
}

void Http1Parser::keep_body_bytes(std::string_view bytes) {
    if (!keeping_body_) return;
    std::string& prefix = body_prefix_field();
    const size_t room =
        limits_.body_prefix_bytes - std::min(prefix.size(), limits_.body_prefix_bytes);
    prefix.append(bytes.substr(0, room));
    if (prefix.size() >= limits_.body_prefix_bytes) keeping_body_ = false;
}

void Http1Parser::reset_message() {
    keeping_body_ = false;
    if (msg_) {
        *msg_ = Message{};
        msg_->kind = kind_;
    }
    remaining_ = 0;
    interim_ = false;
    upgrade_after_ = false;
    cr_seen_ = false;
}

}  // namespace passport::protocol::http1
