#pragma once
// What a Go executable offers the net/http client handoff probes (bpf/probes/go_http.bpf.c):
// its Go version (the `.go.buildinfo` section, where Go >= 1.18 writes it inline) and whether its
// symbol table still names the two functions probed. A stripped binary has no .symtab: it cannot
// be probed. No libbpf.
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "userspace/common/result.hpp"

namespace passport::agent {

struct GoBinary {
    bool is_go = false;          // a .go.buildinfo section
    std::string version;         // "go1.19.8"; empty when the section does not hold it inline
    bool roundtrip = false;      // net/http.(*persistConn).roundTrip in .symtab
    bool request_write = false;  // net/http.(*Request).write in .symtab

    // The probes read arguments from registers (Go's register ABI on amd64, Go >= 1.17).
    bool register_abi() const;
    bool usable() const { return is_go && register_abi() && roundtrip && request_write; }
    // Why not usable, for logs ("stripped: no symbol table", ...); empty when usable.
    std::string why_not() const;
};

// The Go version inline in a `.go.buildinfo` section's bytes (Go >= 1.18: "\xff Go buildinf:",
// pointer size, flags with bit 2 set, then two varint-length strings: version, module info).
std::optional<std::string> go_buildinfo_version(std::span<const uint8_t> section);
// (major, minor) of "go1.19.8" / "go1.21rc2"; nullopt when it is not of that form.
std::optional<std::pair<int, int>> go_version_number(const std::string& version);

Result<GoBinary> read_go_binary(const std::string& path);

}  // namespace passport::agent
