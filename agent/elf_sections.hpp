#pragma once
// Walks the section headers of an ELF file (libelf), for the readers of TLS symbols
// (tls_elf.cpp) and Go binaries (go_elf.cpp).
#include <gelf.h>
#include <libelf.h>

#include <functional>
#include <string>

#include "userspace/common/result.hpp"

namespace passport::agent {

// Calls visit(elf, section, header) for every section of the ELF file at `path`, in file order.
// An error names the path when it cannot be opened or is not an ELF file.
Result<bool> for_each_elf_section(
    const std::string& path, const std::function<void(Elf*, Elf_Scn*, const GElf_Shdr&)>& visit);

}  // namespace passport::agent
