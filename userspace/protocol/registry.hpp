#pragma once
// The registry: THE list of protocols Passport understands (pixie's PROTOCOL_LIST marker, made a
// table). Adding a protocol means writing protocol/<p>/ plus its session, and adding one row in
// registry.cpp; stream/ code only ever asks the registry.
//
// Pure functions and constant data; safe from any thread.
#include <memory>
#include <span>
#include <string_view>

#include "userspace/protocol/parser.hpp"
#include "userspace/protocol/session.hpp"

namespace passport::protocol {

struct ProtocolEntry {
    std::string_view name;  // short and stable: used in counters and logs ("http1")
    Detection (*detect)(std::string_view bytes, DetectMode mode);
    std::unique_ptr<Session> (*make_session)(const SessionParams& params);
};

// Every registered protocol, in the order detection asks them.
std::span<const ProtocolEntry> registered_protocols();

struct RegistryDetection {
    Detection detection;                      // kFound, kNeedMore or kNo over all protocols
    const ProtocolEntry* protocol = nullptr;  // set when kFound
};

// First protocol that finds a message. kNeedMore if any protocol needs more bytes; kNo only when
// all say no. For kAnywhere, the reported discardable offset is the smallest any protocol gave.
RegistryDetection detect_protocol(std::string_view bytes, DetectMode mode);

}  // namespace passport::protocol
