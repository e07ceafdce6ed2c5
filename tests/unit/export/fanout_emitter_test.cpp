#include "userspace/export/fanout_emitter.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace passport::exporter {
namespace {

struct Record {
    std::vector<std::string> datagrams;
    int flushes = 0;
};

class RecordingEmitter : public Emitter {
  public:
    explicit RecordingEmitter(std::shared_ptr<Record> record) : record_(std::move(record)) {}
    void emit(std::string datagram) override { record_->datagrams.push_back(std::move(datagram)); }
    void flush() override { ++record_->flushes; }

  private:
    std::shared_ptr<Record> record_;
};

TEST(ExportFanoutEmitter, EveryEmitterGetsEveryDatagram) {
    std::vector<std::shared_ptr<Record>> records;
    std::vector<std::unique_ptr<Emitter>> emitters;
    for (int i = 0; i < 3; ++i) {
        records.push_back(std::make_shared<Record>());
        emitters.push_back(std::make_unique<RecordingEmitter>(records.back()));
    }
    FanoutEmitter fanout(std::move(emitters));
    fanout.add(nullptr);  // ignored
    EXPECT_EQ(fanout.size(), 3u);

    fanout.emit("one");
    fanout.emit("two");
    fanout.flush();
    for (const auto& r : records) {
        EXPECT_EQ(r->datagrams, (std::vector<std::string>{"one", "two"}));
        EXPECT_EQ(r->flushes, 1);
    }
}

TEST(ExportFanoutEmitter, EmptyFanoutIsHarmless) {
    FanoutEmitter fanout;
    fanout.emit("x");
    fanout.flush();
    EXPECT_EQ(fanout.size(), 0u);
}

}  // namespace
}  // namespace passport::exporter
