// The oracle for the sk_msg injection program run on the host (inject_host.h): request streams
// with known framing, cut into messages, and the checks on what the program sent. Shared by the
// unit tests (tests/unit/bpf/inject_host_test.cpp) and the inject fuzz target.
//
// Checked, for every stream (any bytes, any cuts):
//   * each message's output is its input with zero or more 93-byte lines inserted, each line
//     well formed ("X-Amzn-Trace-Id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<1|0|?>\r\n"),
//     and its Parent is the subsegment id of the next PP_INJ_INJECTED record, in order; removing
//     them gives the input back exactly; every line goes at the start of an input line (after
//     an LF);
//   * every PP_INJ_INJECTED record has its line on the wire, and the counters agree with the
//     records (injected, app header).
// For generated HTTP/1 streams, in addition: exactly one line per request without its own
// X-Amzn-Trace-Id, right after its request line when its head up to the blank line's CR is in
// one message, otherwise right before the CR of its blank line; none, and a PP_INJ_APP_HEADER
// record, for a request with its own; each record's app_pos is its request's first byte; the
// socket is never given up (no framing lost).
// For streams whose first byte is not an upper-case letter: output identical to input.
#ifndef PASSPORT_INJECT_ORACLE_HPP
#define PASSPORT_INJECT_ORACLE_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "inject_host.h"
#include "passport/abi.h"

namespace pp_inject_oracle
{

// Random choices: from the given bytes while they last, then from a fixed generator.
class Source
{
  public:
    Source(const uint8_t *data, size_t size, uint64_t seed) : p_(data), n_(size), s_(seed)
    {
    }
    uint32_t below(uint32_t k)
    {
        if (k <= 1)
            return 0;
        uint32_t v;
        if (n_ >= 2) {
            v = static_cast<uint32_t>(p_[0]) | static_cast<uint32_t>(p_[1]) << 8;
            p_ += 2;
            n_ -= 2;
        } else {
            s_ += 0x9e3779b97f4a7c15ULL;
            uint64_t z = s_;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            v = static_cast<uint32_t>((z ^ (z >> 31)) >> 16);
        }
        return v % k;
    }
    bool chance(uint32_t in)
    {
        return below(in) == 0;
    }

  private:
    const uint8_t *p_;
    size_t n_;
    uint64_t s_;
};

struct Request {
    size_t start = 0;        // first byte
    size_t reqline_end = 0;  // just after the request line's LF
    size_t blank = 0;        // the CR of the head's blank line
    bool own_header = false; // carries X-Amzn-Trace-Id
};

struct Stream {
    std::string bytes;
    std::vector<Request> requests;
};

/* What the program sent for each message written on socket `sock`, its verdicts, and every
 * PP_EV_INJECT record since the last reset. */
struct Sent {
    std::vector<std::string> out;
    std::vector<int> verdicts;
    std::vector<pp_inj_host_report> reports;
};

inline Sent send_messages(int sock, const std::vector<std::string> &msgs)
{
    Sent s;
    for (const auto &m : msgs) {
        const uint8_t *o = nullptr;
        size_t n = 0;
        s.verdicts.push_back(
            pp_inj_host_send(sock, reinterpret_cast<const uint8_t *>(m.data()), m.size(), &o, &n));
        s.out.emplace_back(reinterpret_cast<const char *>(o), n);
    }
    s.reports.resize(pp_inj_host_reports(nullptr, 0));
    pp_inj_host_reports(s.reports.data(), s.reports.size());
    return s;
}

inline std::string random_case(Source &r, std::string s)
{
    for (auto &c : s)
        if (c >= 'a' && c <= 'z' && r.chance(2))
            c = static_cast<char>(c - 32);
    return s;
}

inline std::string hex(uint64_t v, int digits)
{
    static const char d[] = "0123456789abcdef";
    std::string s(static_cast<size_t>(digits), '0');
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        s[static_cast<size_t>(i)] = d[v & 15];
    return s;
}

inline std::string body_text(Source &r, size_t n)
{
    static const char *pieces[] = {
        "GET / HTTP/1.1\r\n",          "Host: x\r\n",           "\r\n", "0\r\n\r\n",
        "X-Amzn-Trace-Id: Root=1\r\n", "Content-Length: 5\r\n", "abc"};
    std::string s;
    while (s.size() < n) {
        if (r.chance(3))
            s += pieces[r.below(7)];
        else
            s += static_cast<char>(r.below(256));
    }
    s.resize(n);
    return s;
}

// Appends one HTTP/1 request to st.
inline void add_request(Source &r, Stream &st)
{
    static const char *methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
    static const char *targets[] = {"/", "/a/b?c=d", "/x?GET%20/%20HTTP/1.1", "*",
                                    "http://h.example/p"};
    Request q;
    std::string &b = st.bytes;
    q.start = b.size();
    b += methods[r.below(7)];
    b += ' ';
    b += targets[r.below(5)];
    if (r.chance(3))
        b += "/" + std::string(r.below(5000), 'p');
    b += r.chance(4) ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
    q.reqline_end = b.size();
    int body = static_cast<int>(r.below(3)); // 0 none, 1 Content-Length, 2 chunked
    size_t cl = 0;
    if (body == 1)
        cl = r.chance(4) ? 4096 + r.below(20000) : r.below(300);
    q.own_header = r.chance(4);
    std::vector<std::string> headers;
    if (r.chance(5) == false)
        headers.push_back(random_case(r, "host") + ": h.example:8080");
    for (uint32_t n = r.below(4); n > 0; n--)
        headers.push_back(random_case(r, "x-other-" + std::to_string(r.below(100))) + ":v" +
                          std::to_string(r.below(1000)));
    if (r.chance(8))
        headers.push_back(random_case(r, "x-amzn-trace-idx") + ": no");
    if (r.chance(8))
        headers.push_back(random_case(r, "content-lengthy") + ": 7");
    if (body == 1)
        headers.push_back(random_case(r, "content-length") + ":" + (r.chance(2) ? " " : "") +
                          std::to_string(cl));
    if (body == 2)
        headers.push_back(random_case(r, "transfer-encoding") + ": " +
                          (r.chance(3) ? "gzip, " : "") + random_case(r, "chunked"));
    if (q.own_header)
        headers.push_back(random_case(r, "x-amzn-trace-id") +
                          ": Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8");
    for (size_t i = headers.size(); i > 1; i--)
        std::swap(headers[i - 1], headers[r.below(static_cast<uint32_t>(i))]);
    for (const auto &h : headers)
        b += h + "\r\n";
    q.blank = b.size();
    b += "\r\n";
    if (body == 1)
        b += body_text(r, cl);
    if (body == 2) {
        for (uint32_t n = r.below(4); n > 0; n--) {
            size_t sz = r.chance(4) ? 4096 + r.below(9000) : 1 + r.below(200);
            int digits = 1;
            while ((sz >> (4 * digits)) != 0)
                digits++;
            b += random_case(r, hex(sz, digits + static_cast<int>(r.below(3)))); // leading zeros
            if (r.chance(3))
                b += ";ext=" + std::to_string(r.below(10));
            b += "\r\n" + body_text(r, sz) + "\r\n";
        }
        b += r.chance(2) ? "0\r\n" : "0;last\r\n";
        if (r.chance(3))
            b += "X-Trailer: t\r\n";
        b += "\r\n";
    }
    st.requests.push_back(q);
}

inline Stream make_stream(Source &r, uint32_t max_requests)
{
    Stream st;
    for (uint32_t n = 1 + r.below(max_requests); n > 0; n--)
        add_request(r, st);
    return st;
}

// Cut points: increasing, inside (0, size).
// Damages a stream in 1 to 4 places: a byte changed, a few bytes dropped, or a few CR, LF, ':',
// '0' or ';' inserted.
inline void damage(Source &r, std::string &in)
{
    for (uint32_t n = 1 + r.below(4); n > 0 && !in.empty(); n--) {
        size_t at = r.below(static_cast<uint32_t>(in.size()));
        uint32_t how = r.below(3);
        if (how == 0)
            in[at] = static_cast<char>(r.below(256));
        else if (how == 1)
            in.erase(at, 1 + r.below(20));
        else
            in.insert(at, std::string(1 + r.below(3), "\r\n:0;"[r.below(5)]));
    }
}

inline std::vector<size_t> make_cuts(Source &r, const std::string &s, const Stream *st)
{
    std::vector<size_t> cuts;
    size_t at = 0;
    while (true) {
        size_t step;
        uint32_t how = r.below(8);
        if (how == 0)
            step = 1 + r.below(8);                          // tiny pieces
        else if (how <= 2 && st && !st->requests.empty()) { // around a request's blank line
            const Request &q = st->requests[r.below(static_cast<uint32_t>(st->requests.size()))];
            size_t target = q.blank + r.below(4);
            if (target <= at)
                continue;
            step = target - at;
        } else
            step = 1 + r.below(how == 7 ? 20000 : 600);
        at += step;
        if (at >= s.size())
            break;
        cuts.push_back(at);
        if (cuts.size() > 400)
            break;
    }
    return cuts;
}

struct Inserted {
    size_t msg;      // message index
    size_t in_pos;   // input offset it precedes
    uint64_t parent; // its Parent
};

struct Result {
    std::vector<Inserted> inserted;
    std::vector<pp_inj_host_report> reports;
    std::vector<size_t> msg_of_byte_end; // end offset (input) of each message
};

inline bool is_hex(std::string_view s, size_t at, size_t n)
{
    for (size_t i = at; i < at + n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

// The well-formed line at out[o], or false.
inline bool line_at(const std::string &out, size_t o, uint64_t *parent)
{
    if (out.size() - o < PP_INJECT_LINE_LEN || out[o] != 'X')
        return false;
    std::string_view l(out.data() + o, PP_INJECT_LINE_LEN);
    if (l.substr(0, 24) != "X-Amzn-Trace-Id: Root=1-" || !is_hex(l, 24, 8) || l[32] != '-' ||
        !is_hex(l, 33, 24) || l.substr(57, 8) != ";Parent=" || !is_hex(l, 65, 16) ||
        l.substr(81, 9) != ";Sampled=" || (l[90] != '1' && l[90] != '0' && l[90] != '?') ||
        l[91] != '\r' || l[92] != '\n')
        return false;
    uint64_t v = 0;
    for (size_t i = 65; i < 81; i++)
        v = v << 4 | static_cast<uint64_t>(l[i] <= '9' ? l[i] - '0' : l[i] - 'a' + 10);
    *parent = v;
    return true;
}

// Runs the stream, cut at cuts, through a new socket; fills res; "" or what failed.
inline std::string run(const std::string &in, const std::vector<size_t> &cuts, int adopted,
                       Result &res)
{
    pp_inj_host_reset();
    int sock = pp_inj_host_socket(adopted);
    std::vector<std::string> outs;
    size_t from = 0;
    for (size_t k = 0; k <= cuts.size(); k++) {
        size_t to = k < cuts.size() ? cuts[k] : in.size();
        const uint8_t *o = nullptr;
        size_t olen = 0;
        if (pp_inj_host_send(sock, reinterpret_cast<const uint8_t *>(in.data()) + from, to - from,
                             &o, &olen) != 1)
            return "verdict not SK_PASS";
        outs.emplace_back(reinterpret_cast<const char *>(o), olen);
        res.msg_of_byte_end.push_back(to);
        from = to;
    }
    size_t n = pp_inj_host_reports(nullptr, 0);
    res.reports.resize(n);
    pp_inj_host_reports(res.reports.data(), n);
    std::vector<uint64_t> ids;
    size_t app_header = 0;
    for (const auto &rep : res.reports) {
        if (rep.outcome == PP_INJ_INJECTED)
            ids.push_back(rep.subsegment_id);
        if (rep.outcome == PP_INJ_APP_HEADER)
            app_header++;
        if (rep.outcome != PP_INJ_INJECTED && rep.subsegment_id != 0)
            return "subsegment id in a record without a line";
    }
    // Strip the lines the records name, message by message.
    size_t next = 0, i = 0;
    for (size_t k = 0; k < outs.size(); k++) {
        const std::string &out = outs[k];
        size_t end = res.msg_of_byte_end[k], lines = 0;
        for (size_t o = 0; o < out.size();) {
            uint64_t parent = 0;
            if (next < ids.size() && line_at(out, o, &parent) && parent == ids[next]) {
                if (i == 0 || in[i - 1] != '\n')
                    return "line not at the start of an input line, at input " + std::to_string(i);
                res.inserted.push_back({k, i, parent});
                next++;
                lines++;
                o += PP_INJECT_LINE_LEN;
                continue;
            }
            if (i >= end || out[o] != in[i])
                return "message " + std::to_string(k) + ": output differs from input at input " +
                       std::to_string(i);
            i++;
            o++;
        }
        if (i != end)
            return "message " + std::to_string(k) + ": input bytes missing";
        if (out.size() != (end - (k ? res.msg_of_byte_end[k - 1] : 0)) + lines * PP_INJECT_LINE_LEN)
            return "message " + std::to_string(k) + ": size accounting";
    }
    if (next != ids.size())
        return "an injected record has no line on the wire";
    if (pp_inj_host_counter(PP_INJC_INJECTED) != ids.size())
        return "injected counter";
    if (pp_inj_host_counter(PP_INJC_APP_HEADER) != app_header)
        return "app header counter";
    return "";
}

// The generated-stream checks on top of run(); "" or what failed.
inline std::string check_stream(const Stream &st, const std::vector<size_t> &cuts, int adopted)
{
    Result res;
    std::string err = run(st.bytes, cuts, adopted, res);
    if (!err.empty())
        return err;
    auto msg_of = [&](size_t pos) {
        size_t k = 0;
        while (k < cuts.size() && cuts[k] <= pos)
            k++;
        return k;
    };
    size_t ins = 0, rep = 0;
    for (size_t n = 0; n < st.requests.size(); n++) {
        const Request &q = st.requests[n];
        std::string who = "request " + std::to_string(n) + ": ";
        while (rep < res.reports.size() && res.reports[rep].outcome == PP_INJ_LEAVE)
            rep++;
        if (rep == res.reports.size())
            return who + "no record";
        const auto &r = res.reports[rep++];
        if (r.app_pos != q.start)
            return who + "record app_pos " + std::to_string(r.app_pos);
        if (q.own_header) {
            if (r.outcome != PP_INJ_APP_HEADER)
                return who + "own header, outcome " + std::to_string(r.outcome);
            continue;
        }
        if (r.outcome != PP_INJ_INJECTED)
            return who + "outcome " + std::to_string(r.outcome);
        if (ins == res.inserted.size())
            return who + "no line";
        const Inserted &l = res.inserted[ins++];
        size_t want = msg_of(q.start) == msg_of(q.blank) ? q.reqline_end : q.blank;
        if (l.in_pos != want)
            return who + "line at " + std::to_string(l.in_pos) + ", expected " +
                   std::to_string(want);
        if (l.parent != r.subsegment_id)
            return who + "Parent differs from the record";
    }
    if (ins != res.inserted.size())
        return "more lines than requests";
    if (rep != res.reports.size())
        return "more records than requests";
    if (pp_inj_host_counter(PP_INJC_FRAMING_LOST) != 0 ||
        pp_inj_host_counter(PP_INJC_NOT_HTTP) != 0)
        return "framing lost";
    if (pp_inj_host_counter(PP_INJC_SKIP_SPLIT) != 0 ||
        pp_inj_host_counter(PP_INJC_SKIP_FAILED) != 0)
        return "skipped";
    return "";
}

} // namespace pp_inject_oracle

#endif // PASSPORT_INJECT_ORACLE_HPP
