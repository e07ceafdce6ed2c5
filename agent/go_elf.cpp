#include "agent/go_elf.hpp"

#include "agent/elf_sections.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace passport::agent {

namespace {

constexpr std::string_view kBuildInfoMagic = "\xff Go buildinf:";
constexpr size_t kBuildInfoHeader = 32;  // magic (14), pointer size, flags, then padding
constexpr uint8_t kFlagInline = 2;       // strings follow the header (Go >= 1.18)
constexpr std::string_view kRoundTrip = "net/http.(*persistConn).roundTrip";
constexpr std::string_view kRequestWrite = "net/http.(*Request).write";

// One unsigned LEB128 varint at `pos`; false when it runs past the end or is too long.
bool read_uvarint(std::span<const uint8_t> b, size_t& pos, uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64 && pos < b.size(); shift += 7) {
        const uint8_t byte = b[pos++];
        out |= uint64_t{byte & 0x7fU} << shift;
        if ((byte & 0x80U) == 0) return true;
    }
    return false;
}

void scan_symtab(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, GoBinary& out) {
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || shdr.sh_entsize == 0) return;
    const size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF) continue;
        const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
        if (!name) continue;
        const std::string_view n = name;
        if (n == kRoundTrip) out.roundtrip = true;
        if (n == kRequestWrite) out.request_write = true;
    }
}

void read_buildinfo(Elf_Scn* scn, GoBinary& out) {
    out.is_go = true;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf) return;
    const std::span<const uint8_t> bytes(static_cast<const uint8_t*>(data->d_buf), data->d_size);
    if (auto v = go_buildinfo_version(bytes)) out.version = *v;
}

}  // namespace

bool GoBinary::register_abi() const {
    auto v = go_version_number(version);
    return v && (v->first > 1 || (v->first == 1 && v->second >= 17));
}

std::string GoBinary::why_not() const {
    if (!is_go) return "not a Go program";
    if (!register_abi())
        return version.empty() ? "Go version unknown (before Go 1.18)"
                               : version + " passes arguments on the stack (before Go 1.17)";
    if (!roundtrip && !request_write) return "no symbol table naming net/http (stripped?)";
    if (!roundtrip || !request_write) return "net/http's client functions not all found";
    return {};
}

std::optional<std::string> go_buildinfo_version(std::span<const uint8_t> section) {
    if (section.size() < kBuildInfoHeader ||
        std::memcmp(section.data(), kBuildInfoMagic.data(), kBuildInfoMagic.size()) != 0)
        return std::nullopt;
    if ((section[kBuildInfoMagic.size() + 1] & kFlagInline) == 0) return std::nullopt;
    size_t pos = kBuildInfoHeader;
    uint64_t len = 0;
    if (!read_uvarint(section, pos, len) || len > section.size() - pos || len > 64)
        return std::nullopt;
    return std::string(reinterpret_cast<const char*>(section.data() + pos), len);
}

std::optional<std::pair<int, int>> go_version_number(const std::string& version) {
    if (version.rfind("go", 0) != 0) return std::nullopt;
    int major = 0;
    int minor = 0;
    size_t i = 2;
    auto number = [&](int& out) {
        const size_t start = i;
        while (i < version.size() && version[i] >= '0' && version[i] <= '9' && i - start < 6)
            out = out * 10 + (version[i++] - '0');
        return i > start;
    };
    if (!number(major) || i >= version.size() || version[i] != '.') return std::nullopt;
    i++;
    if (!number(minor)) return std::nullopt;
    return std::make_pair(major, minor);
}

Result<GoBinary> read_go_binary(const std::string& path) {
    GoBinary out;
    auto walked = for_each_elf_section(path, [&](Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr) {
        size_t shstrndx = 0;
        const char* name = elf_getshdrstrndx(elf, &shstrndx) == 0
                               ? elf_strptr(elf, shstrndx, shdr.sh_name)
                               : nullptr;
        if (name && std::string_view(name) == ".go.buildinfo") read_buildinfo(scn, out);
        if (shdr.sh_type == SHT_SYMTAB) scan_symtab(elf, scn, shdr, out);
    });
    if (!walked) return make_error(walked.error());
    return out;
}

}  // namespace passport::agent
