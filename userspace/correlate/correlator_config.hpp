#pragma once
// The correlator's configuration and the sampling rules' view of a request (correlator.hpp).
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "userspace/correlate/identity_provider.hpp"
#include "userspace/redact/redact.hpp"

namespace passport::correlate {

// What the sampling rules see of a request that arrived without an upstream decision.
struct SamplingInput {
    std::string service_name;
    std::string host;  // Host header without port
    std::string method;
    std::string path;          // URL path without query
    std::string service_type;  // the process's origin (AWS::EC2::Instance, ...), "" off AWS
};

using SamplingDecider = std::function<bool(const SamplingInput&, std::string* rule_name)>;

struct CorrelatorConfig {
    std::string configured_service_name;  // --service-name
    std::string hostname;                 // this machine, for metadata
    // Open + recently finished contexts, per kind. Finished ones stay only so late calls and
    // late-reported callees still find them; the oldest go first (correlate.contexts_evicted
    // counts open ones lost that way).
    size_t max_contexts = 8192;
    // Subsegments an open server request keeps for its segment (about what one 64 KB document
    // holds). Calls finishing beyond that are sent at once as independent subsegments under it
    // (correlate.subsegments_flushed), or dropped when it is not sampled
    // (correlate.subsegments_dropped).
    size_t max_subsegments = 1000;
    // Names of the kernel's sampling rules by index (sample::KernelRules::names), so a segment
    // the kernel sampled names its rule as one sampled here would.
    std::vector<std::string> kernel_rule_names = {};
    // Credential values in URLs and process arguments (userspace/redact). Userinfo is always
    // removed from URLs.
    redact::Policy redaction = {};
    // Process arguments (argv after argv[0]) in metadata.passport.process.command: off by
    // default (--export-process-args); when on, credentials in them are redacted too.
    bool export_process_args = false;
    // Names and identity blocks (EC2, ECS, Kubernetes) per process; null: names from /proc
    // alone (ProcessOnlyIdentity). Not owned; outlives the correlator.
    IdentityProvider* identity = nullptr;
};

}  // namespace passport::correlate
