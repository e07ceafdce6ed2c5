#include "userspace/aws/json_scan.hpp"

#include "userspace/common/text.hpp"

namespace passport::aws {
namespace {

class Scanner {
  public:
    explicit Scanner(std::string_view s) : s_(s) {}

    std::vector<JsonMember> members() {
        std::vector<JsonMember> out;
        ws();
        if (!eat('{')) return out;
        ws();
        if (eat('}')) return out;
        while (out.size() < kMaxJsonMembers) {
            JsonMember m;
            ws();
            if (!string(&m.name)) return out;
            ws();
            if (!eat(':')) return out;
            ws();
            const size_t start = i_;
            const bool ok = value(0, &m);
            if (ok) {
                m.complete = true;
                m.raw = s_.substr(start, i_ - start);
            }
            out.push_back(std::move(m));
            if (!ok) return out;
            ws();
            if (eat(',')) continue;
            return out;  // '}' or garbage: either way nothing more at this level
        }
        return out;
    }

  private:
    void ws() {
        while (i_ < s_.size() &&
               (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
            ++i_;
        }
    }
    bool eat(char c) {
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    static void put_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    // A string at i_; decoded into *out (bounded) when out is given. False when cut or malformed.
    bool string(std::string* out) {
        if (!eat('"')) return false;
        while (i_ < s_.size()) {
            const char c = s_[i_++];
            if (c == '"') return true;
            if (static_cast<unsigned char>(c) < 0x20) return false;
            if (c != '\\') {
                if (out && out->size() < kMaxJsonString) *out += c;
                continue;
            }
            if (i_ >= s_.size()) return false;
            const char e = s_[i_++];
            char plain = 0;
            switch (e) {
                case '"':
                    plain = '"';
                    break;
                case '\\':
                    plain = '\\';
                    break;
                case '/':
                    plain = '/';
                    break;
                case 'b':
                    plain = '\b';
                    break;
                case 'f':
                    plain = '\f';
                    break;
                case 'n':
                    plain = '\n';
                    break;
                case 'r':
                    plain = '\r';
                    break;
                case 't':
                    plain = '\t';
                    break;
                case 'u': {
                    if (i_ + 4 > s_.size()) return false;
                    uint32_t cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        const int h = text::hex_value(s_[i_++]);
                        if (h < 0) return false;
                        cp = cp * 16 + static_cast<uint32_t>(h);
                    }
                    // Surrogate pairs are not recombined: names Passport reads are ASCII.
                    if (cp >= 0xD800 && cp <= 0xDFFF) cp = '?';
                    const size_t bytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
                    if (out && out->size() + bytes <= kMaxJsonString) put_utf8(*out, cp);
                    continue;
                }
                default:
                    return false;
            }
            if (out && out->size() < kMaxJsonString) *out += plain;
        }
        return false;
    }

    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }

    bool number() {
        const size_t start = i_;
        while (i_ < s_.size()) {
            const char c = s_[i_];
            if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' ||
                c == 'E') {
                ++i_;
            } else {
                break;
            }
        }
        // A number running into the end of the prefix may be cut: not complete.
        return i_ > start && i_ < s_.size();
    }

    // The comma-separated items of an object or array, from its opening bracket at i_ through
    // `close`; `item` reads one item and says whether it was well formed.
    template <typename Item>
    bool items(char close, Item item) {
        ++i_;
        ws();
        if (eat(close)) return true;
        while (true) {
            ws();
            if (!item()) return false;
            ws();
            if (eat(',')) continue;
            return eat(close);
        }
    }

    // A value at i_. `top` (depth 0 only) receives its kind, text, keys or count.
    bool value(int depth, JsonMember* top) {
        if (depth > kMaxJsonDepth || i_ >= s_.size()) return false;
        const char c = s_[i_];
        if (c == '"') {
            if (top) top->kind = JsonKind::kString;
            return string(top ? &top->text : nullptr);
        }
        if (c == '{') {
            if (top) top->kind = JsonKind::kObject;
            return items('}', [&] {
                std::string key;
                if (!string(top ? &key : nullptr)) return false;
                if (top && top->keys.size() < kMaxJsonKeys) top->keys.push_back(std::move(key));
                ws();
                if (!eat(':')) return false;
                ws();
                return value(depth + 1, nullptr);
            });
        }
        if (c == '[') {
            if (top) top->kind = JsonKind::kArray;
            return items(']', [&] {
                if (!value(depth + 1, nullptr)) return false;
                if (top) ++top->count;
                return true;
            });
        }
        if (c == 't' || c == 'f') {
            if (top) top->kind = JsonKind::kBool;
            return literal(c == 't' ? "true" : "false");
        }
        if (c == 'n') {
            if (top) top->kind = JsonKind::kNull;
            return literal("null");
        }
        if (top) top->kind = JsonKind::kNumber;
        return number();
    }

    std::string_view s_;
    size_t i_ = 0;
};

}  // namespace

std::vector<JsonMember> scan_json_object(std::string_view body) { return Scanner(body).members(); }

const JsonMember* find_member(const std::vector<JsonMember>& members, std::string_view name) {
    for (const auto& m : members) {
        if (m.name == name) return &m;
    }
    return nullptr;
}

}  // namespace passport::aws
