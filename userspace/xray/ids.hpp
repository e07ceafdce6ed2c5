#pragma once
// IdGenerator: new X-Ray trace ids and segment/subsegment ids. The correlator owns one and calls
// it on its thread; tests inject a deterministic random source. Formats follow the AWS X-Ray
// segment documents page
// (https://docs.aws.amazon.com/xray/latest/devguide/xray-api-segmentdocuments.html): trace id
// "1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>", segment id 16 hex, never zero.
#include <cstdint>
#include <functional>
#include <string>

namespace passport::xray {

// Returns 64 uniformly random bits per call.
using RandomSource = std::function<uint64_t()>;

// A source backed by getrandom(2) (a CSPRNG: the segment documents page asks for trace ids from a
// secure random algorithm, so they cannot be predicted), read in
// blocks so that a call is usually a memcpy. Falls back to std::random_device if getrandom fails.
RandomSource system_random_source();

class IdGenerator {
  public:
    explicit IdGenerator(RandomSource random = system_random_source());

    // 16 lowercase hex digits, never all zero.
    std::string new_segment_id();
    // Uses the current wall-clock time for the epoch part.
    std::string new_trace_id();
    // epoch_seconds is truncated to 32 bits (the field is 8 hex digits).
    std::string new_trace_id(uint64_t epoch_seconds);

  private:
    uint64_t next_nonzero();

    RandomSource random_;
};

// Lowercase hex of the low `digits` nibbles of value, zero-padded.
std::string to_hex(uint64_t value, int digits);

}  // namespace passport::xray
