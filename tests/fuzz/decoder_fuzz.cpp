// libFuzzer target: the ring-buffer record decoder (userspace/events/decoder.*), the only code
// that interprets kernel bytes. Any record either decodes or is rejected with a reason; both
// entry points must agree, and decode_counted must work when one Event is reused across calls.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "userspace/common/counters.hpp"
#include "userspace/events/decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace passport;
    const std::span<const uint8_t> record(data, size);
    const auto decoded = events::decode(record);

    static Counters counters;
    static events::Event reused;  // as the agent does: payload storage is kept across records
    const bool ok = events::decode_counted(record, counters, reused);
    if (ok != decoded.ok()) std::abort();
    return 0;
}
