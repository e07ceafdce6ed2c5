#pragma once
// Where the correlator gets a process's name and identity blocks (userspace/identity). The
// agent's provider knows EC2, ECS and Kubernetes (agent/identity/resolver.hpp); without one the
// correlator names processes from what /proc shows (ProcessOnlyIdentity). Called on the
// pipeline thread for every segment: it must answer at once from what it already knows.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "userspace/correlate/process_info.hpp"
#include "userspace/identity/process_identity.hpp"

namespace passport::correlate {

class IdentityProvider {
  public:
    virtual ~IdentityProvider() = default;
    // The identity of `tgid` when the provider has one that is still current, else null: the
    // caller then reads the process and asks identity(). Never blocks.
    virtual std::shared_ptr<const identity::ProcessIdentity> cached(uint32_t tgid) = 0;
    // Composes (and caches) the identity of `tgid`. Never null, never blocks. `info` is null
    // when /proc no longer shows the process.
    virtual std::shared_ptr<const identity::ProcessIdentity> identity(uint32_t tgid,
                                                                      const ProcessInfo* info) = 0;
    // The process exec'd or exited.
    virtual void forget(uint32_t tgid) = 0;
};

// Names from the process alone (environment, --service-name, program); no aws blocks.
class ProcessOnlyIdentity : public IdentityProvider {
  public:
    explicit ProcessOnlyIdentity(std::string configured_name)
        : configured_(std::move(configured_name)) {}
    std::shared_ptr<const identity::ProcessIdentity> cached(uint32_t tgid) override {
        auto it = cache_.find(tgid);
        return it == cache_.end() ? nullptr : it->second;
    }
    std::shared_ptr<const identity::ProcessIdentity> identity(uint32_t tgid,
                                                              const ProcessInfo* info) override;
    void forget(uint32_t tgid) override { cache_.erase(tgid); }

  private:
    std::string configured_;
    std::unordered_map<uint32_t, std::shared_ptr<const identity::ProcessIdentity>> cache_;
};

// The naming sources of a process (the pod and ECS task come from the caller).
identity::NameSources name_sources(const ProcessInfo& info, const std::string& program,
                                   const std::string& configured);

}  // namespace passport::correlate
