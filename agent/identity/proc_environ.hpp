#pragma once
// One variable of another process's environment, from /proc/<pid>/environ (the environment it
// was started with). Bounded: at most 1 MiB of the file is read.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace passport::identity {

std::optional<std::string> process_env(uint32_t pid, std::string_view name,
                                       const std::string& proc_root = "/proc");

// The same lookup on the text of an environ file (NUL-separated NAME=value entries).
std::optional<std::string> env_value(std::string_view environ_text, std::string_view name);

}  // namespace passport::identity
