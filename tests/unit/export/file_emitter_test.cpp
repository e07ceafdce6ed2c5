#include "userspace/export/file_emitter.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "userspace/xray/document.hpp"

namespace passport::exporter {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(ExportFileEmitter, WritesBodiesAsJsonLines) {
    const std::string path = testing::TempDir() + "passport_file_emitter_test.jsonl";
    Counters counters;
    auto emitter = FileEmitter::open(path, counters);
    ASSERT_TRUE(emitter.ok()) << emitter.error();

    (*emitter)->emit(xray::make_datagram(R"({"id":"1","name":"a"})"));
    // Flushed per line: visible before the emitter is closed.
    EXPECT_EQ(read_file(path), "{\"id\":\"1\",\"name\":\"a\"}\n");
    (*emitter)->emit(xray::make_datagram(R"({"id":"2"})"));
    (*emitter)->emit(R"({"id":"3"})");  // already a bare body
    emitter->reset();

    EXPECT_EQ(read_file(path), "{\"id\":\"1\",\"name\":\"a\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n");
    EXPECT_EQ(counters.get(kCounterFileDocumentsWritten), 3u);
    EXPECT_EQ(counters.get(kCounterFileWriteFailed), 0u);
    std::remove(path.c_str());
}

TEST(ExportFileEmitter, TruncatesExistingFile) {
    const std::string path = testing::TempDir() + "passport_file_emitter_truncate.jsonl";
    {
        std::ofstream out(path);
        out << "old content\n";
    }
    Counters counters;
    auto emitter = FileEmitter::open(path, counters);
    ASSERT_TRUE(emitter.ok());
    (*emitter)->emit("h\n{}");
    EXPECT_EQ(read_file(path), "{}\n");
    std::remove(path.c_str());
}

TEST(ExportFileEmitter, DashIsStdout) {
    Counters counters;
    testing::internal::CaptureStdout();
    {
        auto emitter = FileEmitter::open("-", counters);
        ASSERT_TRUE(emitter.ok());
        (*emitter)->emit(xray::make_datagram(R"({"id":"x"})"));
    }
    EXPECT_EQ(testing::internal::GetCapturedStdout(), "{\"id\":\"x\"}\n");
    EXPECT_EQ(counters.get(kCounterFileDocumentsWritten), 1u);
}

TEST(ExportFileEmitter, OpenFailureIsAnError) {
    Counters counters;
    const auto emitter = FileEmitter::open("/nonexistent-dir/passport/out.jsonl", counters);
    ASSERT_FALSE(emitter.ok());
    EXPECT_NE(emitter.error().find("/nonexistent-dir/passport/out.jsonl"), std::string::npos);
}

TEST(ExportFileEmitter, WriteFailureIsCounted) {
    Counters counters;
    auto emitter = FileEmitter::open("/dev/full", counters);
    if (!emitter.ok()) GTEST_SKIP() << "/dev/full not available: " << emitter.error();
    (*emitter)->emit("h\n{}");
    EXPECT_EQ(counters.get(kCounterFileWriteFailed), 1u);
    EXPECT_EQ(counters.get(kCounterFileDocumentsWritten), 0u);
}

}  // namespace
}  // namespace passport::exporter
