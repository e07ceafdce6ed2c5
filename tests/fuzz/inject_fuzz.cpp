// libFuzzer target: the kernel's sk_msg injection program (bpf/probes/inject.bpf.c, compiled as
// C against the helper model of tests/bpf_host/stub/), run on one fake socket per input.
//
// Input: byte 0 = mode. Bit 0: the socket is adopted (its state created by its first message)
// rather than marked at connect. Bits 1-2: 0 = raw stream, 1 = generated HTTP/1 requests,
// 2 = generated requests damaged in a few places, 3 = raw stream behind a first byte that is
// not an upper-case letter. The rest of the input: for raw streams, byte 1 seeds the cut points
// and the bytes after it are the stream; otherwise it drives the generator (methods, targets,
// headers, own X-Amzn-Trace-Id in random case, Content-Length bodies that may contain request
// text, chunked bodies with extensions and trailers, pipelining) and the cuts.
//
// The oracle (tests/bpf_host/inject_oracle.hpp). The stream is cut into messages at arbitrary
// points (including inside the method and between a blank line's CR and LF) and each message
// goes through inject_msg, the socket's write_seq advancing by the bytes it sent. For every
// stream:
//   * each message's output is its input with zero or more lines inserted, each a well-formed
//     93-byte "X-Amzn-Trace-Id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<1|0|?>\r\n"
//     whose Parent is the subsegment id of the next PP_INJ_INJECTED record, in order; removing
//     those lines gives the input back exactly, and each sat at the start of an input line;
//     each message's size is its input's plus 93 per line;
//   * every PP_INJ_INJECTED record has its line on the wire; no other record carries an id; the
//     injected and app-header counters equal the number of such records;
//   * no crash, no out-of-bounds access (ASan/UBSan; each bpf_msg_pull_data hands out its own
//     allocation of exactly [start, end)).
// For generated requests (mode 1), in addition: exactly one line per request without its own
// X-Amzn-Trace-Id, right after its request line when its head up to the blank line's CR lies in
// one message, otherwise right before the CR of its blank line; no line and a
// PP_INJ_APP_HEADER record for a request with its own; each record's app_pos is its request's
// first byte; no framing lost, no request skipped.
// For mode 3: the output is the input, every message.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "inject_oracle.hpp"

using namespace pp_inject_oracle;

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "inject oracle: %s\n", what.c_str());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const int adopted = data[0] & 1;
    const int mode = (data[0] >> 1) & 3;
    Result res;
    if (mode == 1 || mode == 2) {
        Source r(data + 1, size - 1, size);
        Stream st = make_stream(r, 6);
        if (mode == 1) {
            auto cuts = make_cuts(r, st.bytes, &st);
            std::string err = check_stream(st, cuts, adopted);
            if (!err.empty()) fail(err);
            return 0;
        }
        damage(r, st.bytes);
        auto cuts = make_cuts(r, st.bytes, nullptr);
        std::string err = run(st.bytes, cuts, adopted, res);
        if (!err.empty()) fail(err);
        return 0;
    }
    std::string in(reinterpret_cast<const char*>(data) + 2, size - 2);
    if (mode == 3) in.insert(0, 1, static_cast<char>(data[1] & 0x1f));  // never 'A'..'Z'
    Source r(nullptr, 0, data[1]);
    auto cuts = make_cuts(r, in, nullptr);
    std::string err = run(in, cuts, adopted, res);
    if (!err.empty()) fail(err);
    if (mode == 3 && !res.inserted.empty()) fail("a line in a stream that is not HTTP/1");
    return 0;
}
