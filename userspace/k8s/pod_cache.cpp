#include "userspace/k8s/pod_cache.hpp"

namespace passport::k8s {

void PodCache::replace(const std::vector<PodMeta>& pods) {
    auto next = std::make_shared<Map>();
    for (const auto& p : pods) (*next)[p.uid] = p;
    std::lock_guard<std::mutex> lock(mu_);
    pods_ = std::move(next);
    version_++;
    status_.synced = true;
    status_.lists++;
}

void PodCache::apply(const WatchEvent& ev) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.events++;
    const bool upsert = ev.type == WatchEventType::kAdded || ev.type == WatchEventType::kModified;
    if (!upsert && ev.type != WatchEventType::kDeleted) return;
    if (!upsert && pods_->count(ev.pod.uid) == 0) return;
    auto next = std::make_shared<Map>(*pods_);  // copy on write: readers keep their snapshot
    if (upsert) {
        (*next)[ev.pod.uid] = ev.pod;
    } else {
        next->erase(ev.pod.uid);
    }
    pods_ = std::move(next);
    version_++;
}

void PodCache::note_gone() {
    std::lock_guard<std::mutex> lock(mu_);
    status_.gone++;
}

void PodCache::note_error(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.errors++;
    status_.last_error = what;
}

std::shared_ptr<const PodCache::Map> PodCache::snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pods_;
}

uint64_t PodCache::version() const {
    std::lock_guard<std::mutex> lock(mu_);
    return version_;
}

PodCache::Status PodCache::status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
}

}  // namespace passport::k8s
