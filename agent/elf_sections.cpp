#include "agent/elf_sections.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace passport::agent {

Result<bool> for_each_elf_section(
    const std::string& path, const std::function<void(Elf*, Elf_Scn*, const GElf_Shdr&)>& visit) {
    if (elf_version(EV_CURRENT) == EV_NONE) return make_error("libelf initialisation failed");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(path + ": " + std::strerror(errno));
    Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
    if (!elf || elf_kind(elf) != ELF_K_ELF) {
        if (elf) elf_end(elf);
        ::close(fd);
        return make_error(path + ": not an ELF file");
    }
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
        GElf_Shdr shdr;
        if (gelf_getshdr(scn, &shdr)) visit(elf, scn, shdr);
    }
    elf_end(elf);
    ::close(fd);
    return true;
}

}  // namespace passport::agent
