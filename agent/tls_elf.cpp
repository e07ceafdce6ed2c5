#include "agent/tls_elf.hpp"

#include "agent/elf_sections.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

namespace passport::agent {

std::string TlsSymbols::list() const {
    std::string out;
    auto add = [&](bool have, const char* name) {
        if (!have) return;
        if (!out.empty()) out += ' ';
        out += name;
    };
    add(ssl_read, "SSL_read");
    add(ssl_write, "SSL_write");
    add(ssl_read_ex, "SSL_read_ex");
    add(ssl_write_ex, "SSL_write_ex");
    add(ssl_set_fd, "SSL_set_fd");
    return out;
}

namespace {

// Marks the functions of `section` (a symbol table) that are defined here (not imports).
void scan_symbols(Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr, TlsSymbols& out, bool dynamic) {
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || shdr.sh_entsize == 0) return;
    const size_t count = shdr.sh_size / shdr.sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym)) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
            continue;
        const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
        if (!name || std::strncmp(name, "SSL_", 4) != 0) continue;
        const char* rest = name + 4;
        if (std::strcmp(rest, "read") == 0)
            out.ssl_read = true;
        else if (std::strcmp(rest, "write") == 0) {
            out.ssl_write = true;
            if (dynamic) out.exported = true;
        } else if (std::strcmp(rest, "read_ex") == 0)
            out.ssl_read_ex = true;
        else if (std::strcmp(rest, "write_ex") == 0)
            out.ssl_write_ex = true;
        else if (std::strcmp(rest, "set_fd") == 0)
            out.ssl_set_fd = true;
    }
}

}  // namespace

Result<TlsSymbols> read_tls_symbols(const std::string& path) {
    TlsSymbols out;
    auto walked = for_each_elf_section(path, [&](Elf* elf, Elf_Scn* scn, const GElf_Shdr& shdr) {
        if (shdr.sh_type == SHT_DYNSYM) scan_symbols(elf, scn, shdr, out, true);
        if (shdr.sh_type == SHT_SYMTAB) scan_symbols(elf, scn, shdr, out, false);
    });
    if (!walked) return make_error(walked.error());
    return out;
}

int run_check_tls(const std::vector<std::string>& paths) {
    if (paths.empty()) {
        spdlog::error("check-tls needs at least one PATH (usage: passport check-tls PATH...)");
        return 2;
    }
    int status = 0;
    for (const auto& path : paths) {
        auto syms = read_tls_symbols(path);
        if (!syms) {
            std::printf("%s: error: %s\n", path.c_str(), syms.error().c_str());
            status = 1;
        } else if (syms->usable()) {
            std::printf("%s: yes: HTTPS through this binary can be traced (%s%s)\n", path.c_str(),
                        syms->list().c_str(), syms->exported ? "" : "; found in .symtab only");
        } else {
            std::printf(
                "%s: no: SSL_read and SSL_write are not both defined here (%s); if it loads "
                "libssl.so.* (`ldd %s | grep libssl`, or /proc/PID/maps of the running "
                "program), that library is traced instead: check it\n",
                path.c_str(), syms->list().empty() ? "no OpenSSL functions" : syms->list().c_str(),
                path.c_str());
            status = 1;
        }
    }
    return status;
}

}  // namespace passport::agent
