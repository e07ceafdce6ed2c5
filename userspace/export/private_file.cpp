#include "userspace/export/private_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace passport::exporter {
namespace {

// A FIFO or character device (/dev/null) of the agent's own user: written to as it is, nothing
// created, truncated or re-moded.
bool own_stream(const struct stat& st) {
    return (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) && st.st_uid == ::geteuid();
}

// Why an open file is not one Passport may write over; empty when it is.
std::string refusal(const struct stat& st) {
    if (own_stream(st)) return "";
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    if (st.st_uid != ::geteuid()) return "owned by another user";
    if (st.st_nlink > 1) return "has more than one hard link";
    return "";
}

}  // namespace

Result<int> open_private_file(const std::string& path) {
    // O_NONBLOCK: opening a FIFO must not wait for a reader (without one the open fails).
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                          S_IRUSR | S_IWUSR);
    if (fd < 0) {
        if (errno == ELOOP) return make_error(path + ": is a symbolic link; refusing to follow it");
        return make_error("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    std::string why = ::fstat(fd, &st) != 0 ? std::string(std::strerror(errno)) : refusal(st);
    const bool file = why.empty() && !own_stream(st);
    if (file && ::ftruncate(fd, 0) != 0) why = std::strerror(errno);
    if (file && why.empty() && (st.st_mode & 07777) != 0600 && ::fchmod(fd, 0600) != 0)
        why = std::strerror(errno);
    const int flags = ::fcntl(fd, F_GETFL);
    if (why.empty() && (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0))
        why = std::strerror(errno);
    if (!why.empty()) {
        ::close(fd);
        return make_error(path + ": " + why + "; refusing to write to it");
    }
    return fd;
}

}  // namespace passport::exporter
