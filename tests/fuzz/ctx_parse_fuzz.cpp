// libFuzzer target: the kernel's server-side trace-context scan (bpf/lib/ctx_parse.bpf.h,
// compiled as C against bpf_stub/), checked against the userspace parsers
// (userspace/xray/trace_header.*) on the same request head.
//
// Input: byte 0 = flags (bit 0: the loader turned pp_head_text off; bit 1: the ring buffer is
// full; bit 2: the capture buffer's bytes past the request repeat the request, else they are
// '\n'), then the request head.
//
// The oracle. Head lines are framed as the kernel frames them (reference_lines below): the
// request line ends at the first '\n'; each later line ends at '\n' and counts only if that
// '\n' is among the scanned bytes (the head arrives in one read, scanned piece by piece up to
// PP_HEAD_BUDGET); '\r' is dropped wherever it is; a line left empty by that ends the head; a
// line's name is what precedes its first ':', matched without regard to case and nothing trimmed;
// only the first line of each name counts; its value starts after the spaces and tabs following the
// ':'. For well-formed heads (CRLF line ends, no other CR) this is the HTTP/1 parser's view. V is
// that value with trailing spaces and tabs removed (as the HTTP/1 parser hands header values on);
// |raw| is its length before that. With K the kernel's verdict (0 absent, 1 valid, 2 rejected) and
// U the userspace parse of V:
//   X-Amzn-Trace-Id, U = parse_trace_header(V):
//     K == 0  iff  no such line;
//     K == 1  implies  U has a Root, and Root, Parent (or none) and Sampled are the kernel's
//                      (Sampled=1 -> yes, 0 -> no, "?" or none -> unknown);
//     K == 2  implies  U has no Root, or |raw| > kMaxTraceHeaderLength (the kernel counts
//                      trailing blanks, userspace does not see them).
//   traceparent, U = parse_traceparent(V):
//     K == 0  iff  no such line;
//     K == 1  iff  U has a Root, except that U also rejects values longer than 512 (the kernel
//                  allows up to 1024 non-blank characters, for versions after 00), and the
//                  kernel also rejects blanks inside the value (U accepts any bytes after the
//                  flags of versions after 00);
//     K == 1  implies  Root, Parent and Sampled are the kernel's.
//   A head whose end is not among the input's bytes, shorter than PP_HEAD_BUDGET, is not decided
//   yet: no record, its scan kept for the connection's next read.
//   The context (once decided): X-Amzn-Trace-Id when valid, else traceparent when valid, else a new
//   trace with no parent and the sampling decision left to userspace (no kernel rules are loaded
//   here); each rejected header is flagged; the thread's stored context equals the record; the
//   record reaches the ring buffer unless it is full.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "ctx_parse_host.h"
#include "passport/abi.h"
#include "userspace/xray/trace_header.hpp"

namespace {

using namespace passport::xray;

void check(bool ok) {
    if (!ok) std::abort();
}

struct Lines {
    std::optional<std::string> xray;  // raw value, '\r' dropped, leading blanks skipped
    std::optional<std::string> traceparent;
    bool ended = false;  // the blank line ending the head is there
};

char fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

Lines reference_lines(std::string_view head) {
    Lines out;
    size_t at = head.find('\n');
    if (at == std::string_view::npos) return out;
    ++at;
    while (true) {
        const size_t end = head.find('\n', at);
        if (end == std::string_view::npos) return out;  // the line does not end: it does not count
        std::string line;
        for (char c : head.substr(at, end - at)) {
            if (c != '\r') line.push_back(c);
        }
        at = end + 1;
        if (line.empty()) {  // blank line: end of the head
            out.ended = true;
            return out;
        }
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (char& c : name) c = fold(c);
        size_t v = colon + 1;
        while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
        if (name == "x-amzn-trace-id" && !out.xray) out.xray = line.substr(v);
        if (name == "traceparent" && !out.traceparent) out.traceparent = line.substr(v);
    }
}

std::string trim_trailing(std::string s) {
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
    return s;
}

uint32_t kernel_sampled(SampledFlag f) {
    switch (f) {
        case SampledFlag::kSampled:
            return PP_SAMPLED_YES;
        case SampledFlag::kNotSampled:
            return PP_SAMPLED_NO;
        default:
            return PP_SAMPLED_UNKNOWN;
    }
}

uint64_t parent_value(const std::string& hex) {
    return hex.empty() ? 0 : std::stoull(hex, nullptr, 16);
}

void check_same(const pp_host_head_result& k, const TraceHeader& u) {
    check(u.has_root() && u.root == k.root);
    check(k.parent_id == parent_value(u.parent));
    check(k.sampled == kernel_sampled(u.sampled));
}

void check_xray(const pp_host_head_result& k, const std::optional<std::string>& raw) {
    check((k.xray == 0) == !raw.has_value());
    if (!raw) return;
    const TraceHeader u = parse_trace_header(trim_trailing(*raw));
    if (k.xray == 1) {
        check(k.source == PP_CTX_XRAY_HEADER);
        check_same(k, u);
    } else {
        check(!u.has_root() || raw->size() > kMaxTraceHeaderLength);
    }
}

void check_traceparent(const pp_host_head_result& k, const std::optional<std::string>& raw) {
    check((k.traceparent == 0) == !raw.has_value());
    if (!raw) return;
    const std::string v = trim_trailing(*raw);
    const TraceHeader u = parse_traceparent(v);
    if (k.traceparent == 1 && !u.has_root()) check(v.size() > 512);
    if (k.traceparent == 2 && u.has_root()) check(v.find_first_of(" \t") != std::string::npos);
    if (k.traceparent == 1 && k.xray != 1) {
        check(k.source == PP_CTX_TRACEPARENT);
        if (u.has_root()) check_same(k, u);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    const uint8_t* head = data + 1;
    const size_t len = size - 1;
    const bool head_text = !(flags & 1);
    const bool ring_full = (flags & 2) != 0;
    static const uint8_t kNewline = '\n';
    const uint8_t* stale = (flags & 4) && len ? head : &kNewline;
    const size_t stale_len = (flags & 4) && len ? len : 1;

    pp_host_head_result k{};
    pp_host_head_scan(head, len, stale, stale_len, head_text, ring_full, &k);

    const size_t captured = len < PP_HEAD_BUDGET ? len : PP_HEAD_BUDGET;
    const Lines lines =
        reference_lines(std::string_view(reinterpret_cast<const char*>(head), captured));
    if (!lines.ended && len < PP_HEAD_BUDGET) {
        check(!k.emitted && k.pending);
        return 0;
    }
    check_xray(k, lines.xray);
    check_traceparent(k, lines.traceparent);

    check(((k.rejected & PP_REJECT_XRAY) != 0) == (k.xray == 2));
    check(((k.rejected & PP_REJECT_TRACEPARENT) != 0) == (k.traceparent == 2));
    if (k.xray != 1 && k.traceparent != 1) {
        check(k.source == PP_CTX_MINTED && k.parent_id == 0 && k.sampled == PP_SAMPLED_UNKNOWN);
    }
    check(k.emitted == !ring_full);
    check(k.stored);
    return 0;
}
