#include "userspace/export/file_emitter.hpp"

#include <unistd.h>

#include "userspace/export/private_file.hpp"

namespace passport::exporter {

Result<std::unique_ptr<FileEmitter>> FileEmitter::open(const std::string& path,
                                                       Counters& counters) {
    if (path == "-") {
        return std::unique_ptr<FileEmitter>(new FileEmitter(stdout, /*owned=*/false, counters));
    }
    auto fd = open_private_file(path);
    if (!fd) return make_error("output file " + fd.error());
    std::FILE* file = ::fdopen(*fd, "w");
    if (file == nullptr) {
        ::close(*fd);
        return make_error("output file " + path + ": fdopen failed");
    }
    return std::unique_ptr<FileEmitter>(new FileEmitter(file, /*owned=*/true, counters));
}

FileEmitter::FileEmitter(std::FILE* file, bool owned, Counters& counters)
    : file_(file), owned_(owned), counters_(counters) {}

FileEmitter::~FileEmitter() {
    if (owned_) {
        std::fclose(file_);
    } else {
        std::fflush(file_);
    }
}

void FileEmitter::emit(std::string datagram) {
    std::string_view body = datagram;
    if (const size_t newline = body.find('\n'); newline != std::string_view::npos) {
        body.remove_prefix(newline + 1);
    }
    const bool ok = std::fwrite(body.data(), 1, body.size(), file_) == body.size() &&
                    std::fputc('\n', file_) != EOF && std::fflush(file_) == 0;
    counters_.add(ok ? kCounterFileDocumentsWritten : kCounterFileWriteFailed);
}

void FileEmitter::flush() { std::fflush(file_); }

}  // namespace passport::exporter
