#pragma once
// Builds the X-Ray documents of the correlator's contexts, as an X-Ray SDK would write them: a
// server request's segment (build_segment), a call's subsegment (build_subsegment), and the
// names, origin, aws blocks and metadata.passport of a process's segment (fill_identity).
// Depends on the correlator's contexts, so it lives here rather than in userspace/xray/.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "userspace/common/clock.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/correlate/contexts.hpp"
#include "userspace/correlate/correlator_config.hpp"
#include "userspace/correlate/identity_provider.hpp"
#include "userspace/correlate/process_info.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/xray/ids.hpp"
#include "userspace/xray/segment.hpp"

namespace passport::correlate {

// A Host header's value without its port ("[v6]:port" gives "v6").
std::string host_without_port(std::string_view host);

class XrayDocumentBuilder {
  public:
    // `cfg` outlives the builder.
    XrayDocumentBuilder(const CorrelatorConfig& cfg, ProcessInfoCache& processes,
                        xray::IdGenerator& ids, const ClockOffset& clock, Counters& counters);

    // The segment of a resolved server request `ctx` answered by `ex` (without subsegments).
    void build_segment(const ServerContext& ctx, const pairing::HttpExchange& ex, xray::Segment& s);
    // The subsegment of `call`, `traced` when a segment naming it as parent is known to exist.
    xray::Subsegment build_subsegment(const CallContext& call, const pairing::HttpExchange& ex,
                                      bool traced);
    // Name, origin, aws blocks and metadata.passport of a segment of process `tgid`.
    void fill_identity(xray::Segment& s, uint32_t tgid, uint32_t tid, const events::Endpoint& local,
                       const events::Endpoint& remote);
    std::string service_name(uint32_t tgid);
    std::string origin(uint32_t tgid);  // the service type sampling rules match
    // The process exec'd or exited: its cached name and facts are stale.
    void forget_process(uint32_t tgid);

  private:
    std::shared_ptr<const identity::ProcessIdentity> identity_of(uint32_t tgid);
    // metadata.passport, serialised (xray::Segment::passport_metadata).
    std::string process_metadata(uint32_t tgid, uint32_t tid, const events::Endpoint& local,
                                 const events::Endpoint& remote);
    std::string process_facts(uint32_t tgid);  // the per-process part, cached below

    const CorrelatorConfig& cfg_;
    ProcessInfoCache& processes_;
    xray::IdGenerator& ids_;
    const ClockOffset& clock_;
    Counters& counters_;
    // Per process: `"command":…,"exe":…,"pid":N` (the members of metadata.passport.process
    // before "tid", in the order nlohmann::json would write them), serialised once.
    std::unordered_map<uint32_t, std::string> process_json_;
    std::unique_ptr<IdentityProvider> own_identity_;  // when the config gives none
    IdentityProvider* identity_ = nullptr;
};

}  // namespace passport::correlate
