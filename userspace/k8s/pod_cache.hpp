#pragma once
// The pods of this node as the API server last described them, keyed by pod UID. One thread
// (the API watcher) writes; the agent's pipeline thread reads immutable snapshots, so a read
// never waits for the network and never sees a half-applied change.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "userspace/k8s/api_messages.hpp"

namespace passport::k8s {

class PodCache {
  public:
    using Map = std::unordered_map<std::string, PodMeta>;

    struct Status {
        bool synced = false;  // a LIST has completed since start
        uint64_t lists = 0;   // LISTs completed (the first one and every relist)
        uint64_t gone = 0;    // 410 Gone answers (each followed by a relist)
        uint64_t events = 0;  // watch events applied (bookmarks included)
        uint64_t errors = 0;  // failed requests, broken streams
        std::string last_error;
    };

    PodCache() : pods_(std::make_shared<const Map>()) {}

    // After a LIST: the node's pods are exactly these.
    void replace(const std::vector<PodMeta>& pods);
    // One watch event (ADDED/MODIFIED add or replace, DELETED removes; the others change nothing).
    void apply(const WatchEvent& ev);
    void note_gone();
    void note_error(const std::string& what);

    std::shared_ptr<const Map> snapshot() const;
    // Incremented by every change of the pod set: readers re-evaluate when it moved.
    uint64_t version() const;
    Status status() const;

  private:
    mutable std::mutex mu_;
    std::shared_ptr<const Map> pods_;
    uint64_t version_ = 0;
    Status status_;
};

}  // namespace passport::k8s
