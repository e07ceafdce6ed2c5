#include "userspace/xray/document.hpp"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#include "userspace/xray/utf8.hpp"

#ifndef PASSPORT_VERSION
#define PASSPORT_VERSION "0.0.0"
#endif

namespace passport::xray {
namespace {

// Below this many elements an array inside aws/sql/annotations/service is left whole when a
// document has to be cut down.
constexpr size_t kMaxJsonArrayElements = 64;

// C.UTF-8 has full Unicode classification in glibc >= 2.35; the process locale may be "C".
locale_t utf8_ctype() {
    static const locale_t locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", nullptr);
    return locale;
}

// True when one of the 8 bytes at p is a control character, non-ASCII, '"' or '\\'. (The
// below-0x20 test can fire for a byte only when a lower byte of the word is below 0x20 too, so
// the answer for the word is exact.)
bool word_needs_escape(const char* p) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    uint64_t x;
    std::memcpy(&x, p, sizeof x);
    const auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    const uint64_t below_space = (x - 0x20 * kOnes) & ~x & kHigh;
    return ((x & kHigh) | below_space | has_zero(x ^ ('"' * kOnes)) |
            has_zero(x ^ ('\\' * kOnes))) != 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + s.size() + 2);
    out += '"';
    for (size_t pos = 0; pos < s.size();) {
        // Printable ASCII other than '"' and '\\' (nearly all of it): copied a run at a time,
        // found 8 bytes per step while no byte of the word needs attention.
        size_t run = pos;
        while (run + 8 <= s.size() && !word_needs_escape(s.data() + run)) run += 8;
        while (run < s.size()) {
            const auto r = static_cast<unsigned char>(s[run]);
            if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\') break;
            ++run;
        }
        if (run > pos) {
            out.append(s.data() + pos, run - pos);
            pos = run;
            continue;
        }
        const auto c = static_cast<unsigned char>(s[pos]);
        if (c >= 0x80) {
            const CodePoint cp = decode_utf8(s, pos);
            if (cp.valid) {
                out.append(s.substr(pos, cp.length));
            } else {
                append_utf8(out, kReplacementCharacter);
            }
            pos += cp.length;
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0xF];
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++pos;
    }
    out += '"';
}

namespace {

std::string dump_json(const nlohmann::json& j) {
    // replace: strings in these blocks may come from traffic and need not be valid UTF-8.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool is_nonempty_object(const nlohmann::json& j) { return j.is_object() && !j.empty(); }

// Writes one JSON object's members in call order; keys are literals from this file.
class ObjectWriter {
  public:
    explicit ObjectWriter(std::string& out) : out_(out) { out_ += '{'; }

    void key(std::string_view k) {
        // `,"key":` in one append: keys are short literals of this file.
        char buffer[64];
        if (k.size() + 4 > sizeof buffer) {
            if (!first_) out_ += ',';
            out_ += '"';
            out_ += k;
            out_ += "\":";
        } else {
            size_t n = 0;
            if (!first_) buffer[n++] = ',';
            buffer[n++] = '"';
            std::memcpy(buffer + n, k.data(), k.size());
            n += k.size();
            buffer[n++] = '"';
            buffer[n++] = ':';
            out_.append(buffer, n);
        }
        first_ = false;
    }
    void string(std::string_view k, std::string_view v) {
        key(k);
        append_json_string(out_, v);
    }
    // Omitted when empty; cut to max_chars characters.
    void capped(std::string_view k, std::string_view v, size_t max_chars = kMaxStringLength) {
        if (!v.empty()) string(k, truncate_utf8(v, max_chars));
    }
    void flag(std::string_view k, bool v) {
        if (v) {
            key(k);
            out_ += "true";
        }
    }
    void integer(std::string_view k, uint64_t v) {
        key(k);
        out_ += std::to_string(v);
    }
    void time(std::string_view k, double t) {
        key(k);
        append_time(out_, t);
    }
    void json_if(std::string_view k, const nlohmann::json& j) {
        if (is_nonempty_object(j)) {
            key(k);
            out_ += dump_json(j);
        }
    }
    // Writes member k as the object `write` fills in through an ObjectWriter, in place; takes
    // it back out (the member is omitted) when the object is left empty.
    template <typename Fill>
    void object_if(std::string_view k, Fill&& write) {
        const size_t mark = out_.size();
        const bool was_first = first_;
        key(k);
        ObjectWriter inner(out_);
        write(inner);
        if (inner.empty()) {
            out_.resize(mark);
            first_ = was_first;
            return;
        }
        inner.close();
    }
    bool empty() const { return first_; }
    void close() { out_ += '}'; }

  private:
    std::string& out_;
    bool first_ = true;
};

struct Independent {
    std::string_view trace_id;
    std::string_view parent_id;
};

void write_http(ObjectWriter& w, const HttpInfo& http, bool subsegment) {
    if (http.request) {
        const HttpRequestInfo& r = *http.request;
        w.object_if("request", [&](ObjectWriter& rw) {
            rw.capped("method", r.method);
            if (!r.url.empty()) rw.string("url", truncate_url_view(r.url));
            rw.capped("user_agent", r.user_agent);
            rw.capped("client_ip", r.client_ip);
            rw.flag("x_forwarded_for", r.x_forwarded_for && !r.client_ip.empty());
            if (subsegment) rw.flag("traced", r.traced.value_or(false));
        });
    }
    if (http.response) {
        const HttpResponseInfo& r = *http.response;
        w.object_if("response", [&](ObjectWriter& rw) {
            if (r.status > 0) rw.integer("status", static_cast<uint64_t>(r.status));
            if (r.content_length) rw.integer("content_length", *r.content_length);
        });
    }
}

void write_cause(std::string& out, ObjectWriter& w, const Cause& cause) {
    w.capped("working_directory", cause.working_directory);
    if (!cause.exceptions.empty()) {
        w.key("exceptions");
        out += '[';
        bool first = true;
        for (const ExceptionInfo& e : cause.exceptions) {
            if (!first) out += ',';
            first = false;
            ObjectWriter ew(out);
            ew.capped("id", e.id);
            ew.capped("message", e.message);
            ew.capped("type", e.type);
            ew.flag("remote", e.remote);
            ew.close();
        }
        out += ']';
    }
}

// Fields shared by segments and subsegments, written after the identity/timing block.
template <typename Node>
void write_outcome(std::string& out, ObjectWriter& w, const Node& node, bool subsegment) {
    if (node.http) {
        w.object_if("http", [&](ObjectWriter& hw) { write_http(hw, *node.http, subsegment); });
    }
    w.flag("error", node.error);
    w.flag("throttle", node.throttle);
    w.flag("fault", node.fault);
    if (node.cause) {
        w.object_if("cause", [&](ObjectWriter& cw) { write_cause(out, cw, *node.cause); });
    }
}

void write_timing(ObjectWriter& w, double start_time, double end_time, bool in_progress) {
    w.time("start_time", start_time);
    if (in_progress) {
        w.flag("in_progress", true);
    } else {
        w.time("end_time", end_time);
    }
}

// Characters a JSON string may hold unescaped that are also never touched by the UTF-8 check:
// such a string is written the same by any JSON writer, quotes added and nothing else.
bool is_plain_ascii(std::string_view s) {
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
    }
    return true;
}

// A key of a DOM object, exactly as nlohmann's dump writes it.
void append_dom_key(std::string& out, const std::string& key) {
    if (is_plain_ascii(key)) {
        out += '"';
        out += key;
        out += "\":";
    } else {
        out += dump_json(nlohmann::json(key));
        out += ':';
    }
}

// A DOM value, exactly as nlohmann's dump writes it; plain strings without the serializer.
void append_dom_value(std::string& out, const nlohmann::json& value) {
    if (value.is_string()) {
        const auto& text = value.get_ref<const std::string&>();
        if (is_plain_ascii(text)) {
            out += '"';
            out += text;
            out += '"';
            return;
        }
    }
    out += dump_json(value);
}

// aws.xray: the members the correlator put there (aws.xray.rule_name) with the SDK's own set
// over them, in key order (nlohmann's objects are ordered maps, which is the order the
// document had when this block was merged into a DOM copy and dumped).
void append_segment_xray(std::string& out, const nlohmann::json* xray) {
    struct Fixed {
        std::string_view key;
        std::string_view json;  // the value, already JSON
    };
    static const std::string kVersion = dump_json(PASSPORT_VERSION);
    static const std::string kSdk = dump_json(kSdkName);
    const std::array<Fixed, 3> fixed = {{
        {"auto_instrumentation", "true"},
        {"sdk", kSdk},
        {"sdk_version", kVersion},
    }};
    out += '{';
    size_t next_fixed = 0;
    bool first = true;
    auto separator = [&] {
        if (!first) out += ',';
        first = false;
    };
    auto write_fixed = [&] {
        separator();
        out += '"';
        out += fixed[next_fixed].key;
        out += "\":";
        out += fixed[next_fixed].json;
        ++next_fixed;
    };
    auto fixed_before = [&](std::string_view key) {
        while (next_fixed < fixed.size() && fixed[next_fixed].key < key) write_fixed();
    };
    if (xray != nullptr && xray->is_object()) {
        for (auto it = xray->begin(); it != xray->end(); ++it) {
            const std::string& key = it.key();
            fixed_before(key);
            if (next_fixed < fixed.size() && fixed[next_fixed].key == key) continue;  // overridden
            separator();
            append_dom_key(out, key);
            append_dom_value(out, it.value());
        }
    }
    while (next_fixed < fixed.size()) write_fixed();
    out += '}';
}

// The segment's "aws" object: the model's members with aws.xray merged as above. Written
// straight from the model (no DOM copy, no serializer for the plain strings of the common
// case: {"xray":{"rule_name":"Default"}}).
void append_segment_aws(std::string& out, const nlohmann::json& aws,
                        std::string_view leading_members) {
    out += '{';
    out += leading_members;
    bool first = leading_members.empty();
    bool xray_done = false;
    auto write_xray = [&](const nlohmann::json* xray) {
        if (!first) out += ',';
        first = false;
        out += R"("xray":)";
        append_segment_xray(out, xray);
        xray_done = true;
    };
    if (aws.is_object()) {
        for (auto it = aws.begin(); it != aws.end(); ++it) {
            const std::string& key = it.key();
            if (!xray_done && key > std::string_view("xray")) write_xray(nullptr);
            if (key == "xray") {
                write_xray(&it.value());
                continue;
            }
            if (!first) out += ',';
            first = false;
            append_dom_key(out, key);
            append_dom_value(out, it.value());
        }
    }
    if (!xray_done) write_xray(nullptr);
    out += '}';
}

// Appends the document without "subsegments" and without the closing brace, so children can be
// spliced in. "id" is always the first member.
void append_open_fields(std::string& out, const Segment& s) {
    ObjectWriter w(out);
    w.string("id", s.id);
    w.string("name", sanitize_name(s.name));
    w.string("trace_id", s.trace_id);
    w.capped("parent_id", s.parent_id);
    write_timing(w, s.start_time, s.end_time, s.in_progress);
    w.capped("origin", s.origin);
    write_outcome(out, w, s, /*subsegment=*/false);
    w.key("aws");
    append_segment_aws(out, s.aws, s.aws_members);
    w.json_if("service", s.service);
    w.json_if("annotations", s.annotations);
    if (s.passport_metadata.empty()) {
        w.json_if("metadata", s.metadata);
    } else {
        // {"passport":<already serialised>, then the other members of s.metadata}.
        w.key("metadata");
        out += "{\"passport\":";
        out += s.passport_metadata;
        if (is_nonempty_object(s.metadata)) {
            for (const auto& [name, value] : s.metadata.items()) {
                if (name == "passport") continue;
                out += ',';
                append_json_string(out, name);
                out += ':';
                out += dump_json(value);
            }
        }
        out += '}';
    }
}

void append_open_fields(std::string& out, const Subsegment& s, const Independent* independent) {
    ObjectWriter w(out);
    w.string("id", s.id);
    w.string("name", sanitize_name(s.name));
    write_timing(w, s.start_time, s.end_time, s.in_progress);
    w.capped("namespace", s.namespace_);
    if (independent != nullptr) {
        w.string("type", "subsegment");
        w.string("trace_id", independent->trace_id);
        w.string("parent_id", independent->parent_id);
    }
    write_outcome(out, w, s, /*subsegment=*/true);
    w.json_if("aws", s.aws);
    w.json_if("sql", s.sql);
    w.json_if("annotations", s.annotations);
    w.json_if("metadata", s.metadata);
}

std::string open_fields(const Segment& s) {
    std::string out;
    append_open_fields(out, s);
    return out;
}

std::string open_fields(const Subsegment& s, const Independent* independent) {
    std::string out;
    append_open_fields(out, s, independent);
    return out;
}

constexpr std::string_view kSubsegmentsKey = ",\"subsegments\":[";

void append_embedded(std::string& out, const Subsegment& s);

// Appends `,"subsegments":[…]` (if any) and the closing brace.
void close_with_children(std::string& out, const std::vector<Subsegment>& children) {
    if (!children.empty()) {
        // open_fields always writes "id" first, so a comma before "subsegments" is always right.
        out += kSubsegmentsKey;
        bool first = true;
        for (const Subsegment& child : children) {
            if (!first) out += ',';
            first = false;
            append_embedded(out, child);
        }
        out += ']';
    }
    out += '}';
}

void append_embedded(std::string& out, const Subsegment& s) {
    append_open_fields(out, s, nullptr);
    close_with_children(out, s.subsegments);
}

std::string embedded_json(const Subsegment& s) {
    std::string out;
    append_embedded(out, s);
    return out;
}

void shrink_json_strings(nlohmann::json& j) {
    if (j.is_string()) {
        const auto& s = j.get_ref<const std::string&>();
        if (s.size() > kMaxStringLength) j = std::string(truncate_utf8(s, kMaxStringLength));
    } else if (j.is_array()) {
        if (j.size() > kMaxJsonArrayElements) {
            j.erase(j.begin() + static_cast<std::ptrdiff_t>(kMaxJsonArrayElements), j.end());
        }
        for (auto& e : j) shrink_json_strings(e);
    } else if (j.is_object()) {
        for (auto& [key, value] : j.items()) shrink_json_strings(value);
    }
}

// Emits the documents for one segment, following the policy in document.hpp.
class Packer {
  public:
    Packer(size_t max_datagram, Counters* counters, std::vector<std::string>& out)
        : budget_(max_datagram > kDatagramHeader.size() + 1
                      ? max_datagram - kDatagramHeader.size() - 1
                      : 0),
          counters_(counters),
          out_(out) {}

    void pack_segment(Segment segment) {
        std::vector<Subsegment> children = std::move(segment.subsegments);
        segment.subsegments.clear();
        std::string open = fit(segment, nullptr);
        place(std::move(open), std::move(children), segment.trace_id, segment.id);
    }

  private:
    void pack_subsegment(Subsegment sub, const std::string& trace_id,
                         const std::string& parent_id) {
        count(kCounterSubsegmentsStreamed);
        std::vector<Subsegment> children = std::move(sub.subsegments);
        sub.subsegments.clear();
        const Independent independent{trace_id, parent_id};
        std::string open = fit(sub, &independent);
        place(std::move(open), std::move(children), trace_id, sub.id);
    }

    static std::string fields(const Segment& s, const Independent*) { return open_fields(s); }
    static std::string fields(const Subsegment& s, const Independent* ind) {
        return open_fields(s, ind);
    }

    // The node's own fields (no children, no closing brace), cut down until they fit with room
    // for the closing brace. Empty when they cannot fit at all.
    template <typename Node>
    std::string fit(Node& node, const Independent* ind) {
        std::string open = fields(node, ind);
        if (open.size() + 1 <= budget_) return open;

        count(kCounterDocumentTruncated);
        // Cheapest loss first: metadata is unindexed free-form data.
        const auto steps = std::to_array<void (*)(Node&)>({
            [](Node& n) {
                n.metadata = nullptr;
                if constexpr (std::is_same_v<Node, Segment>) n.passport_metadata.clear();
            },
            [](Node& n) {
                shrink_json_strings(n.aws);
                shrink_json_strings(n.annotations);
                if constexpr (std::is_same_v<Node, Segment>) {
                    shrink_json_strings(n.service);
                } else {
                    shrink_json_strings(n.sql);
                }
            },
            [](Node& n) {
                if (n.cause && n.cause->exceptions.size() > 1) n.cause->exceptions.resize(1);
            },
            [](Node& n) { n.annotations = nullptr; },
            [](Node& n) {
                if constexpr (std::is_same_v<Node, Segment>) {
                    n.service = nullptr;
                } else {
                    n.sql = nullptr;
                }
            },
            [](Node& n) {
                n.aws = nullptr;
                if constexpr (std::is_same_v<Node, Segment>) n.aws_members.clear();
            },
            [](Node& n) { n.cause.reset(); },
        });
        for (const auto& step : steps) {
            step(node);
            open = fields(node, ind);
            if (open.size() + 1 <= budget_) return open;
        }
        count(kCounterDocumentDropped);
        return {};
    }

    // Embeds children in order while they fit, emits this document, then streams the rest as
    // independent subsegments whose parent is this node.
    void place(std::string open, std::vector<Subsegment> children, const std::string& trace_id,
               const std::string& node_id) {
        std::vector<Subsegment> streamed;
        if (open.empty()) {
            streamed = std::move(children);
        } else {
            std::string embedded;
            for (Subsegment& child : children) {
                std::string json = embedded_json(child);
                const size_t separator = embedded.empty() ? kSubsegmentsKey.size() : 1;
                // +2 for the closing "]}".
                if (open.size() + embedded.size() + separator + json.size() + 2 <= budget_) {
                    embedded += embedded.empty() ? kSubsegmentsKey : std::string_view(",");
                    embedded += json;
                } else {
                    streamed.push_back(std::move(child));
                }
            }
            open += embedded;
            if (!embedded.empty()) open += ']';
            open += '}';
            out_.push_back(make_datagram(open));
        }
        for (Subsegment& child : streamed) pack_subsegment(std::move(child), trace_id, node_id);
    }

    void count(std::string_view name) {
        if (counters_ != nullptr) counters_->add(name);
    }

    size_t budget_;  // bytes available for the body
    Counters* counters_;
    std::vector<std::string>& out_;
};

}  // namespace

void append_time(std::string& out, double epoch_seconds) {
    // Clamp so that %.6f can never produce anything but a short plain decimal.
    if (!std::isfinite(epoch_seconds) || epoch_seconds < 0) epoch_seconds = 0;
    if (epoch_seconds > 1e11) epoch_seconds = 1e11;
    // Integer formatting of whole microseconds (printf's %.6f costs ~3k instructions per call
    // and is on the path of every document); same digits as %.6f for these magnitudes.
    const auto micros = static_cast<uint64_t>(std::llround(epoch_seconds * 1e6));
    uint64_t whole = micros / 1000000;
    uint64_t frac = micros % 1000000;
    char buffer[32];
    char* end = buffer + sizeof buffer;
    char* p = end;
    for (int i = 0; i < 6; i++) {
        *--p = static_cast<char>('0' + frac % 10);
        frac /= 10;
    }
    *--p = '.';
    do {
        *--p = static_cast<char>('0' + whole % 10);
        whole /= 10;
    } while (whole != 0);
    out.append(p, static_cast<size_t>(end - p));
}

std::string format_time(double epoch_seconds) {
    std::string out;
    append_time(out, epoch_seconds);
    return out;
}

double epoch_seconds_from_ns(uint64_t unix_ns) {
    const uint64_t micros = unix_ns / 1000;
    const uint64_t whole_seconds = micros / 1000000;  // split so the double keeps every microsecond
    return static_cast<double>(whole_seconds) + static_cast<double>(micros % 1000000) / 1e6;
}

std::string sanitize_name(std::string_view name, std::string_view fallback) {
    static constexpr std::string_view kAllowedPunctuation = "_.:/%&#=+\\-@";
    // The common case: only ASCII letters, digits and allowed punctuation, short enough. Nothing
    // to drop, trim or cut, so the name is kept as it is.
    static const auto kKept = [] {
        std::array<bool, 256> kept{};
        for (int c = '0'; c <= '9'; ++c) kept[static_cast<size_t>(c)] = true;
        for (int c = 'a'; c <= 'z'; ++c) kept[static_cast<size_t>(c)] = true;
        for (int c = 'A'; c <= 'Z'; ++c) kept[static_cast<size_t>(c)] = true;
        for (const char c : kAllowedPunctuation) kept[static_cast<unsigned char>(c)] = true;
        return kept;
    }();
    if (!name.empty() && name.size() <= kMaxNameLength &&
        std::all_of(name.begin(), name.end(),
                    [](char c) { return kKept[static_cast<unsigned char>(c)]; })) {
        return std::string(name);
    }
    const locale_t locale = utf8_ctype();
    std::string out;
    size_t chars = 0;
    for (size_t pos = 0; pos < name.size() && chars < kMaxNameLength;) {
        const CodePoint cp = decode_utf8(name, pos);
        const std::string_view bytes = name.substr(pos, cp.length);
        pos += cp.length;
        if (!cp.valid) continue;

        bool space = false;
        bool keep = false;
        if (cp.value < 0x80) {
            const char c = static_cast<char>(cp.value);
            space = c == ' ' || (c >= '\t' && c <= '\r');
            keep = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   kAllowedPunctuation.find(c) != std::string_view::npos;
        } else if (locale != nullptr) {
            const auto wc = static_cast<wint_t>(cp.value);
            space = iswspace_l(wc, locale) != 0;
            keep = iswalnum_l(wc, locale) != 0;
        }
        // Without a Unicode ctype table non-ASCII is dropped: a shorter name beats one the
        // service rejects.
        if (space) {
            if (out.empty()) continue;  // leading whitespace
            out += ' ';
            ++chars;
        } else if (keep) {
            out.append(bytes);
            ++chars;
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (out.empty()) return std::string(fallback);
    return out;
}

std::string_view truncate_url_view(std::string_view url, size_t max_chars) {
    if (url.size() <= max_chars || count_utf8_chars(url) <= max_chars) return url;
    if (const size_t cut = url.find_first_of("?#"); cut != std::string_view::npos) {
        url = url.substr(0, cut);
    }
    return truncate_utf8(url, max_chars);
}

std::string truncate_url(std::string_view url, size_t max_chars) {
    return std::string(truncate_url_view(url, max_chars));
}

void apply_http_status(int status, bool& error, bool& throttle, bool& fault) {
    if (status >= 400 && status <= 499) {
        error = true;
        if (status == 429) throttle = true;
    } else if (status >= 500 && status <= 599) {
        fault = true;
    }
}

std::string to_json(const Segment& segment) {
    std::string out;
    append_open_fields(out, segment);
    close_with_children(out, segment.subsegments);
    return out;
}

std::string to_json(const Subsegment& subsegment) { return embedded_json(subsegment); }

std::string to_independent_json(const Subsegment& subsegment, std::string_view trace_id,
                                std::string_view parent_id) {
    const Independent independent{trace_id, parent_id};
    std::string out;
    append_open_fields(out, subsegment, &independent);
    close_with_children(out, subsegment.subsegments);
    return out;
}

std::string make_datagram(std::string_view body) {
    std::string out;
    out.reserve(kDatagramHeader.size() + 1 + body.size());
    out += kDatagramHeader;
    out += '\n';
    out += body;
    return out;
}

bool write_datagram(const Segment& segment, std::string& out, size_t max_datagram) {
    out.clear();
    // Most documents fit: grow once instead of doubling from a few bytes.
    constexpr size_t kTypicalDatagram = 2048;
    out.reserve(kTypicalDatagram);
    out += kDatagramHeader;
    out += '\n';
    append_open_fields(out, segment);
    close_with_children(out, segment.subsegments);
    return out.size() <= max_datagram;
}

std::vector<std::string> serialize_documents(const Segment& segment, size_t max_datagram,
                                             Counters* counters) {
    std::vector<std::string> out;
    std::string whole;
    if (write_datagram(segment, whole, max_datagram)) {
        out.push_back(std::move(whole));
        return out;
    }
    Packer(max_datagram, counters, out).pack_segment(segment);
    return out;
}

}  // namespace passport::xray
