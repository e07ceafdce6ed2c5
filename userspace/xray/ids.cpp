#include "userspace/xray/ids.hpp"

#include <sys/random.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>

namespace passport::xray {
namespace {

class BufferedSystemRandom {
  public:
    uint64_t next() {
        if (pos_ + sizeof(uint64_t) > filled_) refill();
        uint64_t v = 0;
        std::memcpy(&v, buffer_.data() + pos_, sizeof v);
        pos_ += sizeof v;
        return v;
    }

  private:
    void refill() {
        pos_ = 0;
        filled_ = 0;
        while (filled_ < buffer_.size()) {
            const ssize_t n = getrandom(buffer_.data() + filled_, buffer_.size() - filled_, 0);
            if (n <= 0) break;
            filled_ += static_cast<size_t>(n);
        }
        if (filled_ < buffer_.size()) {
            // getrandom is unavailable (very old kernel or seccomp): random_device still reads
            // the kernel's pool through /dev/urandom.
            std::random_device device;
            for (size_t i = filled_; i < buffer_.size(); ++i) {
                buffer_[i] = static_cast<unsigned char>(device());
            }
            filled_ = buffer_.size();
        }
    }

    std::array<unsigned char, 512> buffer_{};
    size_t pos_ = 0;
    size_t filled_ = 0;
};

}  // namespace

RandomSource system_random_source() {
    auto state = std::make_shared<BufferedSystemRandom>();
    return [state] { return state->next(); };
}

std::string to_hex(uint64_t value, int digits) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(static_cast<size_t>(digits), '0');
    for (int i = digits - 1; i >= 0; --i) {
        out[static_cast<size_t>(i)] = kDigits[value & 0xF];
        value >>= 4;
    }
    return out;
}

IdGenerator::IdGenerator(RandomSource random) : random_(std::move(random)) {}

uint64_t IdGenerator::next_nonzero() {
    // A zero id is invalid everywhere (W3C, otel-js); with a real source this loop never repeats,
    // with a broken one it ends with OTel's fallback value.
    for (int attempt = 0; attempt < 8; ++attempt) {
        if (const uint64_t v = random_(); v != 0) return v;
    }
    return 1;
}

std::string IdGenerator::new_segment_id() { return to_hex(next_nonzero(), 16); }

std::string IdGenerator::new_trace_id() {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return new_trace_id(
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(now).count()));
}

std::string IdGenerator::new_trace_id(uint64_t epoch_seconds) {
    // 96 random bits: 64 from one draw and 32 from another, so the part is zero only if the high
    // draw is zero too; next_nonzero on the first draw rules that out.
    const uint64_t high = next_nonzero();
    const uint64_t low = random_();
    std::string id = "1-";
    id += to_hex(epoch_seconds & 0xFFFFFFFFu, 8);
    id += '-';
    id += to_hex(high, 16);
    id += to_hex(low & 0xFFFFFFFFu, 8);
    return id;
}

}  // namespace passport::xray
