// open_private_file: 0600, never through a symlink, only regular files of our own.
#include "userspace/export/private_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/temp_dir.hpp"
#include "userspace/export/file_emitter.hpp"

namespace passport::exporter {
namespace {

mode_t mode_of(const std::filesystem::path& p) {
    struct stat st {};
    EXPECT_EQ(::lstat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
}

TEST(PrivateFile, NewFileIs0600WhateverTheUmask) {
    passport::testing::TempDir dir;
    const mode_t old = ::umask(0);
    auto fd = open_private_file((dir.path() / "new").string());
    ::umask(old);
    ASSERT_TRUE(fd.ok()) << fd.error();
    ::close(*fd);
    EXPECT_EQ(mode_of(dir.path() / "new"), 0600u);
}

TEST(PrivateFile, ExistingOwnFileIsTruncatedAndMade0600) {
    passport::testing::TempDir dir;
    const auto p = dir.write_file("old", "previous content");
    ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
    auto fd = open_private_file(p.string());
    ASSERT_TRUE(fd.ok()) << fd.error();
    ::close(*fd);
    EXPECT_EQ(mode_of(p), 0600u);
    EXPECT_EQ(std::filesystem::file_size(p), 0u);
}

TEST(PrivateFile, SymlinkIsRefusedAndItsTargetUntouched) {
    passport::testing::TempDir dir;
    const auto target = dir.write_file("target", "keep me");
    ASSERT_EQ(::chmod(target.c_str(), 0644), 0);
    std::filesystem::create_symlink(target, dir.path() / "link");
    auto fd = open_private_file((dir.path() / "link").string());
    ASSERT_FALSE(fd.ok());
    EXPECT_NE(fd.error().find("symbolic link"), std::string::npos) << fd.error();
    EXPECT_EQ(dir.read_file("target"), "keep me");
    EXPECT_EQ(mode_of(target), 0644u);
    // A dangling link is not followed into creating its target either.
    std::filesystem::create_symlink(dir.path() / "absent", dir.path() / "dangling");
    EXPECT_FALSE(open_private_file((dir.path() / "dangling").string()).ok());
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "absent"));
}

TEST(PrivateFile, NonRegularFilesAndHardLinksAreRefused) {
    passport::testing::TempDir dir;
    const auto fifo = dir.path() / "fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    auto f = open_private_file(fifo.string());
    EXPECT_FALSE(f.ok()) << "a FIFO without a reader";
    EXPECT_FALSE(open_private_file(dir.path().string()).ok());  // a directory
    const auto orig = dir.write_file("orig", "x");
    std::filesystem::create_hard_link(orig, dir.path() / "hard");
    auto h = open_private_file((dir.path() / "hard").string());
    ASSERT_FALSE(h.ok());
    EXPECT_NE(h.error().find("hard link"), std::string::npos) << h.error();
    EXPECT_EQ(dir.read_file("orig"), "x");
}

TEST(PrivateFile, DevNullOfTheAgentsUserIsWrittenAsItIs) {
    struct stat before {};
    ASSERT_EQ(::stat("/dev/null", &before), 0);
    if (before.st_uid != ::geteuid()) GTEST_SKIP() << "/dev/null belongs to another user";
    auto fd = open_private_file("/dev/null");
    ASSERT_TRUE(fd.ok()) << fd.error();
    EXPECT_EQ(::write(*fd, "x", 1), 1);
    ::close(*fd);
    struct stat after {};
    ASSERT_EQ(::stat("/dev/null", &after), 0);
    EXPECT_EQ(after.st_mode, before.st_mode) << "a device is never re-moded";
}

TEST(PrivateFile, AnotherUsersFileIsRefused) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file to another user";
    passport::testing::TempDir dir;
    const auto p = dir.write_file("theirs", "their data");
    ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
    auto fd = open_private_file(p.string());
    ASSERT_FALSE(fd.ok());
    EXPECT_NE(fd.error().find("another user"), std::string::npos) << fd.error();
    EXPECT_EQ(dir.read_file("theirs"), "their data");
}

TEST(PrivateFile, FileEmitterUsesIt) {
    passport::testing::TempDir dir;
    Counters counters;
    std::filesystem::create_symlink(dir.path() / "t", dir.path() / "l");
    EXPECT_FALSE(FileEmitter::open((dir.path() / "l").string(), counters).ok());
    auto e = FileEmitter::open((dir.path() / "docs").string(), counters);
    ASSERT_TRUE(e.ok()) << e.error();
    EXPECT_EQ(mode_of(dir.path() / "docs"), 0600u);
}

}  // namespace
}  // namespace passport::exporter
