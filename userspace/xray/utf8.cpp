#include "userspace/xray/utf8.hpp"

namespace passport::xray {

CodePoint decode_utf8(std::string_view text, size_t pos) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(pos);
    if (lead < 0x80) return {lead, 1, true};

    size_t length = 0;
    char32_t value = 0;
    char32_t min_value = 0;  // smallest value this length may encode (rejects overlong forms)
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        value = lead & 0x1F;
        min_value = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        value = lead & 0x0F;
        min_value = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        value = lead & 0x07;
        min_value = 0x10000;
    } else {
        return {kReplacementCharacter, 1, false};  // continuation byte or 0xF8..0xFF
    }
    if (pos + length > text.size()) return {kReplacementCharacter, 1, false};
    for (size_t i = 1; i < length; ++i) {
        const unsigned char c = byte(pos + i);
        if ((c & 0xC0) != 0x80) return {kReplacementCharacter, 1, false};
        value = (value << 6) | (c & 0x3F);
    }
    if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
        return {kReplacementCharacter, 1, false};
    }
    return {value, length, true};
}

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::string_view truncate_utf8(std::string_view text, size_t max_chars) {
    // Every character is at least one byte: a text no longer than max_chars bytes fits whole.
    if (text.size() <= max_chars) return text;
    size_t pos = 0;
    for (size_t chars = 0; pos < text.size() && chars < max_chars; ++chars) {
        pos += decode_utf8(text, pos).length;
    }
    return text.substr(0, pos);
}

size_t count_utf8_chars(std::string_view text) {
    size_t chars = 0;
    for (size_t pos = 0; pos < text.size(); ++chars) {
        pos += static_cast<unsigned char>(text[pos]) < 0x80 ? 1 : decode_utf8(text, pos).length;
    }
    return chars;
}

}  // namespace passport::xray
