#pragma once
// FileEmitter: writes each document body (the datagram without its header line) as one JSON
// line, flushed at once so that a reader (a test, `tail -f`, jq) sees it immediately. The agent
// creates it for --output FILE or "-" (stdout); used on the pipeline thread.
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "userspace/common/counters.hpp"
#include "userspace/common/result.hpp"
#include "userspace/export/emitter.hpp"

namespace passport::exporter {

inline constexpr std::string_view kCounterFileDocumentsWritten = "export.file_documents_written";
inline constexpr std::string_view kCounterFileWriteFailed = "export.file_write_failed";

class FileEmitter : public Emitter {
  public:
    // "-" means stdout. A file is created (or reused) by open_private_file: mode 0600, never
    // through a symbolic link, an existing file only if it is the agent user's regular file.
    static Result<std::unique_ptr<FileEmitter>> open(const std::string& path, Counters& counters);
    ~FileEmitter() override;
    FileEmitter(const FileEmitter&) = delete;
    FileEmitter& operator=(const FileEmitter&) = delete;

    void emit(std::string datagram) override;
    void flush() override;

  private:
    FileEmitter(std::FILE* file, bool owned, Counters& counters);

    std::FILE* file_;
    bool owned_;  // false for stdout
    Counters& counters_;
};

}  // namespace passport::exporter
