#include "agent/identity/resolver.hpp"

#include <spdlog/spdlog.h>

#include "agent/identity/ecs.hpp"

namespace passport::identity {
namespace {

constexpr size_t kMaxCached = 16384;     // processes
constexpr size_t kMaxContainers = 4096;  // node-side pod facts
constexpr size_t kMaxEcsEndpoints = 1024;
constexpr auto kEcsBudget = std::chrono::milliseconds(1500);
constexpr auto kEcsRetry = std::chrono::seconds(60);   // a failed endpoint is asked again after
constexpr auto kNodeRetry = std::chrono::seconds(30);  // a container that showed nothing, again
constexpr size_t kMaxJobs = 4096;                      // lookups waiting for the identity thread

bool shows_nothing(const NodePodFacts& f) {
    return f.uts_hostname.empty() && f.sa_namespace.empty() && f.pod_name.empty() &&
           f.namespace_name.empty();
}

// Node facts are per container; a process in a pod's own cgroup (no container id) by pid.
std::string container_key(const correlate::ProcessInfo& info) {
    return info.pod && !info.pod->container_id.empty() ? info.pod->container_id
                                                       : "pid:" + std::to_string(info.pid);
}

// The host of an http(s) URI ("" when it has none): "http://169.254.170.2/v4/x" ->
// "169.254.170.2"; userinfo is not accepted.
std::string uri_host(std::string_view uri) {
    const size_t scheme = uri.find("://");
    if (scheme == std::string_view::npos) return "";
    std::string_view rest = uri.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (rest.find('@') != std::string_view::npos) return "";
    if (!rest.empty() && rest.front() == '[')
        return std::string(rest.substr(0, rest.find(']') + 1));
    return std::string(rest.substr(0, rest.find(':')));
}

}  // namespace

IdentityResolver::IdentityResolver(ResolverConfig cfg, const k8s::PodCache* pods)
    : cfg_(std::move(cfg)), pods_(pods) {
    status_.cluster_name = cfg_.cluster_name;
    if (!cfg_.imds) {
        ec2_->done = true;
        ec2_->facts.why_not =
            cfg_.imds_options.disabled ? "AWS_EC2_METADATA_DISABLED" : "--imds off";
    }
}

IdentityResolver::~IdentityResolver() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void IdentityResolver::start() {
    if (cfg_.imds) std::thread(run_ec2, ec2_, cfg_.imds_options).detach();
    thread_ = std::thread([this] { run(); });
}

IdentityResolver::Status IdentityResolver::status() const {
    Status st;
    {
        std::lock_guard lock(mu_);
        st = status_;
    }
    std::lock_guard lock(ec2_->mu);
    st.ec2_done = ec2_->done;
    st.ec2 = ec2_->facts.ec2;
    st.ec2_why_not = ec2_->facts.why_not;
    if (st.cluster_name.empty()) st.cluster_name = ec2_->facts.cluster_name;
    return st;
}

void IdentityResolver::run() {
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mu_);
            if (!cv_.wait_for(lock, kEcsRetry, [this] { return stop_ || !jobs_.empty(); }))
                retry_failed_ecs();
            if (stop_) return;
            if (jobs_.empty()) continue;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        run_job(job);
    }
}

void IdentityResolver::run_ec2(const std::shared_ptr<Ec2State>& state, const ImdsOptions& options) {
    Ec2Facts facts = fetch_ec2_facts(options);
    if (facts.ec2) {
        spdlog::info("identity: EC2 instance {} ({}, {}){}", facts.ec2->instance_id,
                     facts.ec2->instance_size, facts.ec2->availability_zone,
                     facts.cluster_name.empty() ? "" : ", EKS cluster " + facts.cluster_name);
    } else {
        spdlog::info("identity: no EC2 identity: {}", facts.why_not);
    }
    std::lock_guard lock(state->mu);
    state->facts = std::move(facts);
    state->done = true;
    state->cv.notify_all();
}

void IdentityResolver::run_job(const Job& job) {
    if (!job.ecs_uri.empty()) {
        auto r = fetch_ecs_identity(job.ecs_uri, kEcsBudget);
        if (!r) spdlog::warn("identity: ECS task metadata {}: {}", job.ecs_uri, r.error());
        std::lock_guard lock(mu_);
        if (ecs_.size() >= kMaxEcsEndpoints) ecs_.clear();
        EcsEntry& e = ecs_[job.ecs_uri];
        e.ecs = r ? std::optional<EcsIdentity>(std::move(*r)) : std::nullopt;
        e.at = std::chrono::steady_clock::now();
        status_.ecs_endpoints = ecs_.size();
        if (!r) ++status_.ecs_failed;
        queued_.erase(job.ecs_uri);
        ++facts_version_;
        return;
    }
    NodePodFacts facts = read_node_pod_facts(
        job.pid, job.container_key.rfind("pid:", 0) == 0 ? std::string() : job.container_key,
        cfg_.runtime_sockets, cfg_.proc_root);
    std::lock_guard lock(mu_);
    if (node_facts_.size() >= kMaxContainers) node_facts_.clear();
    node_facts_[job.container_key] = NodeEntry{std::move(facts), std::chrono::steady_clock::now()};
    status_.containers = node_facts_.size();
    queued_.erase(job.container_key);
    ++facts_version_;
}

void IdentityResolver::retry_failed_ecs() {
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [uri, entry] : ecs_)
        if (!entry.ecs && now - entry.at >= kEcsRetry) enqueue(Job{uri, 0, ""});
}

void IdentityResolver::enqueue(Job job) {
    const std::string& key = job.ecs_uri.empty() ? job.container_key : job.ecs_uri;
    if (queued_.count(key) != 0) return;
    if (jobs_.size() >= kMaxJobs) {
        if (status_.jobs_dropped++ == 0)
            spdlog::warn("identity: {} lookups waiting; later ones are not queued until it drains",
                         kMaxJobs);
        return;
    }
    queued_.insert(key);
    jobs_.push_back(std::move(job));
    cv_.notify_all();
}

uint64_t IdentityResolver::stamp() const {
    return (facts_version_ << 33) ^ (uint64_t{ec2_seen_done_} << 32) ^
           (pods_ != nullptr ? pods_->version() : 0);
}

std::shared_ptr<const ProcessIdentity> IdentityResolver::cached(uint32_t tgid) {
    std::lock_guard lock(mu_);
    note_ec2();
    auto it = cache_.find(tgid);
    return it != cache_.end() && it->second.stamp == stamp() ? it->second.id : nullptr;
}

void IdentityResolver::note_ec2() {
    if (ec2_seen_done_) return;
    std::lock_guard ec2_lock(ec2_->mu);
    ec2_seen_done_ = ec2_->done;
    ec2_seen_ = ec2_->facts.ec2;
    if (status_.cluster_name.empty()) status_.cluster_name = ec2_->facts.cluster_name;
}

std::shared_ptr<const ProcessIdentity> IdentityResolver::identity(
    uint32_t tgid, const correlate::ProcessInfo* info) {
    std::lock_guard lock(mu_);
    note_ec2();
    const uint64_t now = stamp();
    correlate::ProcessInfo none;
    none.pid = tgid;
    auto id = compose(info != nullptr ? *info : none);
    if (cache_.size() >= kMaxCached) cache_.clear();
    cache_[tgid] = Cached{now, id};
    return id;
}

void IdentityResolver::set_naming(ServiceNameOverrides overrides, std::string configured_name,
                                  std::string cluster_name) {
    std::lock_guard lock(mu_);
    cfg_.overrides = std::move(overrides);
    cfg_.configured_service_name = std::move(configured_name);
    cfg_.cluster_name = std::move(cluster_name);
    status_.cluster_name = cfg_.cluster_name;
    if (status_.cluster_name.empty() && ec2_seen_done_) {
        std::lock_guard ec2_lock(ec2_->mu);
        status_.cluster_name = ec2_->facts.cluster_name;
    }
    ++facts_version_;
}

void IdentityResolver::forget(uint32_t tgid) {
    std::lock_guard lock(mu_);
    cache_.erase(tgid);
}

std::optional<PodIdentity> IdentityResolver::pod_of(const correlate::ProcessInfo& info,
                                                    std::vector<std::string>& missing) {
    if (!info.pod || info.pod->runtime_monitor) return std::nullopt;
    const k8s::PodMeta* api = nullptr;
    std::shared_ptr<const k8s::PodCache::Map> snapshot;
    if (pods_ != nullptr) {
        snapshot = pods_->snapshot();
        auto p = snapshot->find(info.pod->pod_uid);
        if (p != snapshot->end()) api = &p->second;
    }
    const std::string key = container_key(info);
    auto n = node_facts_.find(key);
    const NodePodFacts* node = n != node_facts_.end() ? &n->second.facts : nullptr;
    // A container that showed nothing (read as it started, or its process gone) is read again.
    if (node != nullptr && shows_nothing(*node) &&
        std::chrono::steady_clock::now() - n->second.at >= kNodeRetry)
        enqueue(Job{"", info.pid, key});
    if (node == nullptr) {
        enqueue(Job{"", info.pid, key});
        if (api == nullptr) missing.emplace_back("identity.missing.pod_pending");
    }
    return pod_identity_for(*info.pod, api, node, status_.cluster_name, cfg_.node_name);
}

const EcsIdentity* IdentityResolver::ecs_of(const correlate::ProcessInfo& info,
                                            std::vector<std::string>& missing) {
    if (info.ecs_metadata_uri.empty()) return nullptr;
    if (uri_host(info.ecs_metadata_uri) != cfg_.ecs_metadata_host) {
        if (refused_.size() < kMaxEcsEndpoints && refused_.insert(info.ecs_metadata_uri).second)
            spdlog::warn(
                "identity: pid {}: ECS_CONTAINER_METADATA_URI_V4 names a host other than "
                "{} (--ecs-metadata-host): not fetched",
                info.pid, cfg_.ecs_metadata_host);
        missing.emplace_back("identity.missing.ecs_refused");
        return nullptr;
    }
    auto it = ecs_.find(info.ecs_metadata_uri);
    if (it == ecs_.end()) {
        enqueue(Job{info.ecs_metadata_uri, 0, ""});
        missing.emplace_back("identity.missing.ecs_pending");
        return nullptr;
    }
    if (it->second.ecs) return &*it->second.ecs;
    missing.emplace_back("identity.missing.ecs_failed");  // asked again every minute (run())
    return nullptr;
}

std::shared_ptr<const ProcessIdentity> IdentityResolver::compose(
    const correlate::ProcessInfo& info) {
    std::vector<std::string> missing;
    const std::optional<PodIdentity> pod = pod_of(info, missing);
    const EcsIdentity* ecs = ecs_of(info, missing);
    if (!ec2_seen_done_) missing.emplace_back("identity.missing.ec2_pending");
    const std::string program = correlate::program_name(info);
    NameSources names = correlate::name_sources(info, program, cfg_.configured_service_name);
    names.pod = pod ? &*pod : nullptr;
    names.ecs = ecs;
    names.overrides = &cfg_.overrides;
    IdentityFacts facts{ec2_seen_ ? &*ec2_seen_ : nullptr, ecs, names.pod};
    ProcessIdentity id = compose_identity(facts, choose_service_name(names));
    id.missing = std::move(missing);
    return std::make_shared<const ProcessIdentity>(std::move(id));
}

}  // namespace passport::identity
