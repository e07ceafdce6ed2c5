#include "agent/identity/proc_environ.hpp"

#include <fstream>

namespace passport::identity {

std::optional<std::string> env_value(std::string_view environ_text, std::string_view name) {
    size_t start = 0;
    while (start < environ_text.size()) {
        size_t end = environ_text.find('\0', start);
        if (end == std::string_view::npos) end = environ_text.size();
        std::string_view entry = environ_text.substr(start, end - start);
        if (entry.size() > name.size() && entry.substr(0, name.size()) == name &&
            entry[name.size()] == '=')
            return std::string(entry.substr(name.size() + 1));
        start = end + 1;
    }
    return std::nullopt;
}

std::optional<std::string> process_env(uint32_t pid, std::string_view name,
                                       const std::string& proc_root) {
    constexpr size_t kCap = 1 << 20;
    std::ifstream in(proc_root + "/" + std::to_string(pid) + "/environ", std::ios::binary);
    if (!in) return std::nullopt;
    std::string text(kCap, '\0');
    in.read(text.data(), static_cast<std::streamsize>(kCap));
    text.resize(static_cast<size_t>(in.gcount()));
    return env_value(text, name);
}

}  // namespace passport::identity
