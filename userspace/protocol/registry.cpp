#include "userspace/protocol/registry.hpp"

#include <array>

#include "userspace/pairing/http_pairer.hpp"
#include "userspace/protocol/http1/http1_parser.hpp"

namespace passport::protocol {

namespace {

// THE protocol list. A new protocol adds one row; order is the order detection asks them.
constexpr std::array kProtocols = {
    ProtocolEntry{"http1", &http1::Http1Parser::detect, &pairing::make_http_session},
};

}  // namespace

std::span<const ProtocolEntry> registered_protocols() { return kProtocols; }

RegistryDetection detect_protocol(std::string_view bytes, DetectMode mode) {
    RegistryDetection found;
    bool any_found = false;
    bool any_need_more = false;
    size_t discard = bytes.size();
    for (const ProtocolEntry& entry : kProtocols) {
        const Detection d = entry.detect(bytes, mode);
        switch (d.status) {
            case DetectStatus::kFound:
                // Earliest start wins: nothing before it may be thrown away.
                if (!any_found || d.offset < found.detection.offset) {
                    found.detection = d;
                    found.protocol = &entry;
                    any_found = true;
                }
                break;
            case DetectStatus::kNeedMore:
                any_need_more = true;
                discard = std::min(discard, d.offset);
                break;
            case DetectStatus::kNo:
                discard = std::min(discard, d.offset);
                break;
        }
    }
    if (any_found) return found;
    found.detection.status = any_need_more ? DetectStatus::kNeedMore : DetectStatus::kNo;
    found.detection.offset = mode == DetectMode::kAnywhere ? discard : 0;
    return found;
}

}  // namespace passport::protocol
