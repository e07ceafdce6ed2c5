#pragma once
// Decoder: raw ring-buffer records (bpf/include/passport/abi.h) -> events::Event. The only code
// that interprets kernel bytes. Every record is length-checked before use; a bad one is rejected
// with a reason and counted ("decode.<reason>"), never trusted.
#include <cstddef>
#include <cstdint>
#include <span>

#include "userspace/common/counters.hpp"
#include "userspace/common/result.hpp"
#include "userspace/events/event.hpp"

namespace passport::events {

Result<Event> decode(std::span<const uint8_t> record);

// decode() plus counting: "decode.ok" / "decode.rejected.<reason>"; returns false on rejection.
// A data record is decoded into `out` in place: keeping one Event across calls reuses its
// payload storage. On rejection `out` holds nothing meaningful.
bool decode_counted(std::span<const uint8_t> record, Counters& counters, Event& out);

}  // namespace passport::events
