#pragma once
// The pods of this node from the Kubernetes API server: LIST, then WATCH from the list's
// resourceVersion with bookmarks, filtered by spec.nodeName, on a thread of its own
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
// A 410 Gone (as an HTTP status or as an ERROR event) lists again; any other failure retries
// with backoff (1 s doubling to 30 s). Every read is bounded (LIST body 64 MiB, a watch line
// 4 MiB, an error body 64 KiB) and every request has a timeout. The agent's pipeline thread only
// reads the cache's snapshots: no pod lookup ever waits for the network.
//
// Credentials as a pod gets them (in-cluster configuration,
// https://kubernetes.io/docs/tasks/run-application/access-api-from-pod/#directly-accessing-the-rest-api):
// https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the bearer token in
// <service-account dir>/token (read again at every connection: bound tokens rotate) and the
// cluster CA in <service-account dir>/ca.crt.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "userspace/common/result.hpp"
#include "userspace/k8s/pod_cache.hpp"

namespace passport::agent {

struct ApiEndpoint {
    std::string base_url;    // https://HOST:PORT, no trailing slash
    std::string token_file;  // may not exist: then no Authorization header
    std::string ca_file;     // the CA the server's certificate must chain to
    std::string node_name;   // spec.nodeName of the pods to watch
};

// Where the API server is: `setting` is --k8s-api (auto, off or a URL); `env_host`/`env_port`
// are KUBERNETES_SERVICE_HOST/PORT (nullptr when unset). An error says why there is none
// (off, not in a cluster, no node name).
Result<ApiEndpoint> resolve_api_endpoint(const std::string& setting, const char* env_host,
                                         const char* env_port, const std::string& sa_dir,
                                         const std::string& node_name);

class PodWatcher {
  public:
    PodWatcher(ApiEndpoint endpoint, k8s::PodCache& cache);
    ~PodWatcher();
    PodWatcher(const PodWatcher&) = delete;
    PodWatcher& operator=(const PodWatcher&) = delete;

    void start();
    // Waits until the first LIST has succeeded or failed, at most `timeout`. True when done.
    bool wait_first_attempt(std::chrono::milliseconds timeout);
    const ApiEndpoint& endpoint() const { return endpoint_; }

  private:
    enum class WatchEnd { kEnded, kGone, kFailed };
    void run();
    Result<std::string> list_pods();  // returns the list's resourceVersion
    WatchEnd watch_pods(std::string& resource_version);
    void first_attempt_done();
    void backoff_wait();

    ApiEndpoint endpoint_;
    k8s::PodCache& cache_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::condition_variable cv_;
    bool attempted_ = false;
    std::chrono::seconds backoff_{1};
    std::thread thread_;
};

}  // namespace passport::agent
