#pragma once
// The configuration file (--config FILE): YAML, so JSON too. One key per long option of the
// table parse_args uses: the flag without "--", dashes turned to underscores
// (--daemon-address -> daemon_address); a "--no-X" switch is key X with false (--no-tls ->
// tls: false), another switch is its key with true (--verbose -> verbose: true); a repeatable
// option takes a list. Errors name the file, the line and the key.
#include <string>

#include "agent/config.hpp"
#include "userspace/common/result.hpp"

namespace passport::agent {

struct ConfigKey {
    std::string name;      // empty: the flag has no key (a short flag)
    bool negated = false;  // "--no-X": key X, false applies the flag
    bool empty() const { return name.empty(); }
};

// The key of a long flag: "--max-connections" -> "max_connections", "--no-tls" -> "tls".
ConfigKey config_key(const std::string& flag);

// Applies the keys of `path` to `c`, except those whose flag is in `given` (the command line's
// flags, which win). `applied` receives what each applied key set, by key. Errors: the file
// cannot be read or parsed, a key is unknown or repeated, a value has the wrong type or is
// refused by its option; each names the file and line, and the key.
Result<bool> apply_config_file(const std::string& path, Config& c, const Settings& given,
                               Settings& applied);

}  // namespace passport::agent
