#include "userspace/correlate/identity_provider.hpp"

namespace passport::correlate {

identity::NameSources name_sources(const ProcessInfo& info, const std::string& program,
                                   const std::string& configured) {
    identity::NameSources in;
    in.xray_tracing_name = info.xray_tracing_name;
    in.otel_service_name = info.otel_service_name;
    in.otel_resource_service_name = info.otel_resource_service_name;
    in.configured = configured;
    in.program = program;
    return in;
}

std::shared_ptr<const identity::ProcessIdentity> ProcessOnlyIdentity::identity(
    uint32_t tgid, const ProcessInfo* info) {
    if (cache_.size() >= 4096) cache_.clear();
    ProcessInfo none;
    none.pid = tgid;
    const ProcessInfo& p = info != nullptr ? *info : none;
    const std::string program = program_name(p);
    auto id = std::make_shared<const identity::ProcessIdentity>(identity::compose_identity(
        {}, identity::choose_service_name(name_sources(p, program, configured_))));
    cache_[tgid] = id;  // a process /proc no longer shows stays unnamed until exec or exit
    return id;
}

}  // namespace passport::correlate
