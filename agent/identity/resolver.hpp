#pragma once
// The agent's identity provider: for each traced process, the name and the aws/metadata blocks
// its segments carry (userspace/identity/process_identity.hpp), from
//   - the EC2 instance identity document (IMDSv2), looked up once at start;
//   - the ECS task metadata endpoint named in the process's environment, once per endpoint;
//   - the Kubernetes API server's pods of this node (k8s::PodCache, kept by the pod watcher);
//   - what the node shows of a pod (UTS hostname, service-account namespace, runtime labels),
//     once per container.
// Every lookup runs on the resolver's own thread; identity() answers at once from what is
// known, and the pipeline re-composes a process's identity when a source has changed.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "agent/identity/imds.hpp"
#include "agent/identity/pod_facts.hpp"
#include "userspace/correlate/identity_provider.hpp"
#include "userspace/identity/naming.hpp"
#include "userspace/identity/pod.hpp"
#include "userspace/k8s/pod_cache.hpp"

namespace passport::identity {

struct ResolverConfig {
    std::string configured_service_name;  // --service-name
    ServiceNameOverrides overrides;       // --service-name-override
    std::string cluster_name;             // --cluster-name; else the EKS node's tags
    std::string node_name;                // --node-name / NODE_NAME
    bool imds = true;                     // --imds off turns the EC2 lookup off
    ImdsOptions imds_options;
    RuntimeSockets runtime_sockets;
    // The host an ECS_CONTAINER_METADATA_URI_V4 must name: the value comes from a traced
    // process's environment, so the agent never fetches a URL a process could point elsewhere.
    std::string ecs_metadata_host = "169.254.170.2";
    std::string proc_root = "/proc";
};

class IdentityResolver : public correlate::IdentityProvider {
  public:
    struct Status {
        bool ec2_done = false;
        std::optional<Ec2Identity> ec2;
        std::string ec2_why_not;
        std::string cluster_name;
        size_t ecs_endpoints = 0;  // looked up (answered or failed)
        size_t ecs_failed = 0;
        size_t containers = 0;      // node-side pod facts read
        uint64_t jobs_dropped = 0;  // lookups not queued: the queue was full
    };

    // `pods` may be null (no API server); it must outlive the resolver.
    IdentityResolver(ResolverConfig cfg, const k8s::PodCache* pods);
    ~IdentityResolver() override;
    IdentityResolver(const IdentityResolver&) = delete;
    IdentityResolver& operator=(const IdentityResolver&) = delete;

    void start();
    Status status() const;

    std::shared_ptr<const ProcessIdentity> cached(uint32_t tgid) override;
    std::shared_ptr<const ProcessIdentity> identity(uint32_t tgid,
                                                    const correlate::ProcessInfo* info) override;
    void forget(uint32_t tgid) override;
    // A configuration reload: new overrides, --service-name and --cluster-name; every process's
    // identity is composed again at its next segment.
    void set_naming(ServiceNameOverrides overrides, std::string configured_name,
                    std::string cluster_name);

  private:
    struct Job {
        std::string ecs_uri;  // an ECS endpoint to look up, or
        uint32_t pid = 0;     // a process whose container's pod facts to read
        std::string container_key;
    };
    struct EcsEntry {
        std::optional<EcsIdentity> ecs;  // nullopt: failed (error logged once)
        std::chrono::steady_clock::time_point at;
    };
    struct Cached {
        uint64_t stamp = 0;
        std::shared_ptr<const ProcessIdentity> id;
    };

    // The EC2 lookup's result, shared with the thread that makes it: that thread is detached, so
    // stopping the agent never waits for a metadata endpoint that does not answer.
    struct Ec2State {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        Ec2Facts facts;
    };

    void run();
    static void run_ec2(const std::shared_ptr<Ec2State>& state, const ImdsOptions& options);
    void run_job(const Job& job);
    void enqueue(Job job);    // mu_ held
    void retry_failed_ecs();  // mu_ held
    std::shared_ptr<const ProcessIdentity> compose(const correlate::ProcessInfo& info);
    std::optional<PodIdentity> pod_of(const correlate::ProcessInfo& info,
                                      std::vector<std::string>& missing);
    const EcsIdentity* ecs_of(const correlate::ProcessInfo& info,
                              std::vector<std::string>& missing);
    uint64_t stamp() const;  // mu_ held
    void note_ec2();         // mu_ held: takes the EC2 lookup's result once it is done

    ResolverConfig cfg_;
    const k8s::PodCache* pods_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::deque<Job> jobs_;
    std::unordered_set<std::string> queued_;
    std::unordered_set<std::string> refused_;  // ECS URIs naming another host (logged once)
    uint64_t facts_version_ = 0;
    Status status_;
    std::shared_ptr<Ec2State> ec2_ = std::make_shared<Ec2State>();
    std::optional<Ec2Identity> ec2_seen_;  // the EC2 identity when the lookup is done (mu_)
    bool ec2_seen_done_ = false;
    std::map<std::string, EcsEntry> ecs_;
    struct NodeEntry {
        NodePodFacts facts;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<std::string, NodeEntry> node_facts_;
    std::unordered_map<uint32_t, Cached> cache_;
    std::thread thread_;
};

}  // namespace passport::identity
