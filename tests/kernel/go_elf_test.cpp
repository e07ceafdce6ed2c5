// Which Go programs the net/http client handoff can probe (agent/go_elf.hpp): the version in
// `.go.buildinfo`, the register ABI, and the symbol table a stripped binary lacks. The Go fixture
// of the e2e tests is built here twice (as is, and with `-ldflags=-s -w`) when `go` is installed.
#include "agent/go_elf.hpp"

#include <unistd.h>

#include <array>
#include <filesystem>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/child_process.hpp"

namespace passport::agent {
namespace {

using passport::testing::ChildOptions;
using passport::testing::run_command;

std::vector<uint8_t> buildinfo(const std::string& version, uint8_t flags) {
    std::vector<uint8_t> b = {0xff, ' ', 'G', 'o', ' ', 'b', 'u',
                              'i',  'l', 'd', 'i', 'n', 'f', ':'};
    b.push_back(8);  // pointer size
    b.push_back(flags);
    b.resize(32, 0);
    b.push_back(static_cast<uint8_t>(version.size()));
    b.insert(b.end(), version.begin(), version.end());
    b.push_back(0);  // an empty module info string
    return b;
}

TEST(GoElf, VersionInlineInBuildInfo) {
    EXPECT_EQ(go_buildinfo_version(buildinfo("go1.19.8", 2)), "go1.19.8");
    EXPECT_FALSE(go_buildinfo_version(buildinfo("go1.16.15", 0)))
        << "before Go 1.18 the strings are behind pointers";
    auto bad = buildinfo("go1.19.8", 2);
    bad[0] = 0;
    EXPECT_FALSE(go_buildinfo_version(bad));
    auto cut = buildinfo("go1.19.8", 2);
    cut.resize(36);
    EXPECT_FALSE(go_buildinfo_version(cut)) << "a length past the section's end";
    EXPECT_FALSE(go_buildinfo_version(std::vector<uint8_t>(8, 0)));
}

TEST(GoElf, RegisterAbiFromGo117) {
    EXPECT_EQ(go_version_number("go1.19.8"), std::make_pair(1, 19));
    EXPECT_EQ(go_version_number("go1.21rc2"), std::make_pair(1, 21));
    EXPECT_FALSE(go_version_number("devel +abc"));
    EXPECT_FALSE(go_version_number("go"));
    GoBinary b{true, "go1.17", true, true};
    EXPECT_TRUE(b.usable());
    b.version = "go1.16.15";
    EXPECT_FALSE(b.usable());
    EXPECT_NE(b.why_not().find("stack"), std::string::npos);
    b.version.clear();
    EXPECT_FALSE(b.usable());
}

TEST(GoElf, ThisProgramIsNotGo) {
    std::array<char, 4096> exe{};
    const ssize_t n = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
    ASSERT_GT(n, 0);
    auto r = read_go_binary(std::string(exe.data(), static_cast<size_t>(n)));
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_FALSE(r->is_go);
    EXPECT_FALSE(read_go_binary("/nonexistent/go-program").ok());
}

TEST(GoElf, BuiltAndStrippedGoPrograms) {
    const std::string go = passport::testing::find_executable("go");
    if (go.empty()) GTEST_SKIP() << "the Go toolchain (`go`, Debian package golang-go) is missing";
    const auto out = std::filesystem::path(PASSPORT_BINARY_DIR) / "go-fixtures";
    const auto src = std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests/e2e/fixtures/go_caller";
    std::filesystem::create_directories(out);
    auto build = [&](const std::string& name, std::vector<std::string> extra) {
        std::vector<std::string> argv = {go, "build", "-o", (out / name).string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.emplace_back(".");
        auto r = run_command(ChildOptions{argv,
                                          {{"GOCACHE", (out / "cache").string()},
                                           {"GOPATH", (out / "gopath").string()},
                                           {"GOFLAGS", "-mod=mod"},
                                           {"CGO_ENABLED", "0"}},
                                          {},
                                          src,
                                          true},
                             passport::testing::deadline_in(std::chrono::seconds(240)));
        EXPECT_TRUE(r.status.success()) << r.err;
        return (out / name).string();
    };
    auto plain = read_go_binary(build("go_caller_elf", {}));
    ASSERT_TRUE(plain.ok()) << plain.error();
    EXPECT_TRUE(plain->is_go);
    EXPECT_EQ(plain->version.rfind("go1.", 0), 0U) << plain->version;
    EXPECT_TRUE(plain->usable()) << plain->why_not();
    auto stripped = read_go_binary(build("go_caller_stripped", {"-ldflags=-s -w"}));
    ASSERT_TRUE(stripped.ok()) << stripped.error();
    EXPECT_TRUE(stripped->is_go);
    EXPECT_FALSE(stripped->usable());
    EXPECT_NE(stripped->why_not().find("stripped"), std::string::npos) << stripped->why_not();
}

}  // namespace
}  // namespace passport::agent
