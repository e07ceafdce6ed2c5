#pragma once
// Which OpenSSL functions an ELF file (a libssl or a program with OpenSSL linked in) defines.
// Reads .dynsym and, when present, .symtab with libelf. Used to decide what to attach uprobes to
// (agent/tls_tracer.cpp) and by `passport check-tls`. No libbpf, no root needed.
#include <string>
#include <vector>

#include "userspace/common/result.hpp"

namespace passport::agent {

struct TlsSymbols {
    bool ssl_read = false;
    bool ssl_write = false;
    bool ssl_read_ex = false;
    bool ssl_write_ex = false;
    bool ssl_set_fd = false;
    bool exported = false;  // SSL_write found in .dynsym (not only in .symtab)

    // What the uprobes need: the two classic calls. The _ex and set_fd ones are optional.
    bool usable() const { return ssl_read && ssl_write; }
    // "SSL_read SSL_write SSL_read_ex ..." for reports.
    std::string list() const;
};

Result<TlsSymbols> read_tls_symbols(const std::string& path);

// `passport check-tls PATH...`: one line per path; exit status 0 when every path is usable.
int run_check_tls(const std::vector<std::string>& paths);

}  // namespace passport::agent
