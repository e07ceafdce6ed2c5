#pragma once
// TempDir: a fresh directory under $TMPDIR (or /tmp) that is removed with everything in it when
// the object dies. e2e tests put generated server configs, scripts, served files and logs here.
// Owned by one test; not thread-safe.
#include <filesystem>
#include <string>
#include <string_view>

namespace passport::testing {

class TempDir {
  public:
    // Creates <tmp>/<prefix>XXXXXX with mode 0755 (nginx workers drop to `nobody` and must be
    // able to traverse it). Throws std::runtime_error when the directory cannot be made.
    explicit TempDir(std::string_view prefix = "passport-test-");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const { return path_; }

    // Writes `content` to path()/relative (creating parent directories) and returns the full path.
    std::filesystem::path write_file(std::string_view relative, std::string_view content,
                                     bool executable = false) const;

    // Reads path()/relative; empty when it does not exist.
    std::string read_file(std::string_view relative) const;

  private:
    std::filesystem::path path_;
};

}  // namespace passport::testing
