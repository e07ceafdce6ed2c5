#pragma once
// Files Passport writes that can hold traffic (--output, --record) are created the same way:
// open(2) with O_WRONLY|O_CREAT|O_NOFOLLOW|O_CLOEXEC and mode 0600 (the umask can only narrow
// it). A symbolic link is refused, never followed. An existing file is reused (truncated, its
// mode set to 0600) only when it is a regular file owned by the agent's user with a single link;
// anything else (a FIFO, a device, a directory, a socket, someone else's file, a hard link) is
// refused. "-" (stdout) is the caller's business, not this function's.
#include <string>

#include "userspace/common/result.hpp"

namespace passport::exporter {

// An open, empty, 0600 regular file: the fd (O_CLOEXEC, blocking), or why it was refused.
Result<int> open_private_file(const std::string& path);

}  // namespace passport::exporter
