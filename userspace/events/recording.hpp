#pragma once
// Recorded event streams: one events::Event per JSON line, so a capture from a real kernel
// (`passport --record FILE`) can be replayed through the userspace pipeline in tests without
// root. Payload bytes are hex so any binary traffic survives the round trip.
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "userspace/common/result.hpp"
#include "userspace/events/event.hpp"

namespace passport::events {

std::string to_json_line(const Event& e);
Result<Event> from_json_line(const std::string& line);

// Reads every line; stops at the first bad one with its line number in the error.
Result<std::vector<Event>> read_recording(std::istream& in);

}  // namespace passport::events
