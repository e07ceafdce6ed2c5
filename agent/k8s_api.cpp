#include "agent/k8s_api.hpp"

#include <curl/curl.h>

#include <fstream>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "userspace/k8s/api_messages.hpp"

namespace passport::agent {
namespace {

constexpr size_t kMaxListBody = size_t{64} << 20;
constexpr size_t kMaxErrorBody = size_t{64} << 10;
constexpr size_t kMaxToken = size_t{64} << 10;
constexpr long kConnectTimeoutS = 5;
constexpr long kListTimeoutS = 30;
constexpr long kWatchServerTimeoutS = 290;  // the server ends the watch; we reconnect
constexpr long kWatchTimeoutS = kWatchServerTimeoutS + 30;
constexpr int kListPageSize = 500;
constexpr auto kMaxBackoff = std::chrono::seconds(30);

void global_init_once() {
    static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
    (void)done;
}

std::string read_small_file(const std::string& path, size_t cap) {
    std::ifstream in(path, std::ios::binary);
    std::string text(cap + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > cap) return {};
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    return text;
}

std::string escape(CURL* curl, const std::string& s) {
    char* e = curl_easy_escape(curl, s.c_str(), static_cast<int>(s.size()));
    std::string out = e ? e : "";
    curl_free(e);
    return out;
}

// One request's body handling: the LIST accumulates, the WATCH parses as bytes arrive; a
// non-200 answer keeps (a bounded part of) its body for the error message.
struct Transfer {
    CURL* curl = nullptr;
    const std::atomic<bool>* stop = nullptr;
    std::string body;
    size_t cap = kMaxListBody;
    k8s::WatchStreamParser* watch = nullptr;
    k8s::PodCache* cache = nullptr;
    std::string* resource_version = nullptr;
    std::string failure;  // why the transfer was cut short by us
    bool gone = false;    // an ERROR event with code 410

    bool status_ok() const {
        long code = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        return code == 200;
    }

    size_t on_bytes(const char* data, size_t n) {
        if (watch && status_ok()) return on_watch_bytes(data, n) ? n : 0;
        const size_t limit = status_ok() ? cap : kMaxErrorBody;
        if (body.size() + n > limit) {
            if (!status_ok()) return n;  // keep the beginning of the error text
            failure = "response larger than " + std::to_string(limit) + " bytes";
            return 0;
        }
        body.append(data, n);
        return n;
    }

    bool on_watch_bytes(const char* data, size_t n) {
        std::vector<k8s::WatchEvent> events;
        auto ok = watch->feed({data, n}, events);
        for (const auto& ev : events) {
            if (ev.type == k8s::WatchEventType::kError) {
                if (ev.status_code == 410) {
                    gone = true;
                } else {
                    failure = "watch error " + std::to_string(ev.status_code) + ": " + ev.message;
                }
                return false;
            }
            cache->apply(ev);
            if (!ev.resource_version.empty()) *resource_version = ev.resource_version;
        }
        if (!ok) failure = ok.error();
        return static_cast<bool>(ok);
    }
};

size_t write_cb(char* data, size_t size, size_t n, void* user) {
    return static_cast<Transfer*>(user)->on_bytes(data, size * n);
}

int progress_cb(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Transfer*>(user)->stop->load() ? 1 : 0;  // non-zero aborts the transfer
}

using CurlPtr = std::unique_ptr<CURL, void (*)(CURL*)>;
using HeaderList = std::unique_ptr<curl_slist, void (*)(curl_slist*)>;

// Performs GET `url` into `t`. Returns the HTTP status, or an error for transport failures.
Result<long> perform(const ApiEndpoint& ep, const std::string& url, long timeout_s, Transfer& t) {
    HeaderList headers(curl_slist_append(nullptr, "Accept: application/json"), curl_slist_free_all);
    if (std::string token = read_small_file(ep.token_file, kMaxToken); !token.empty())
        headers.reset(
            curl_slist_append(headers.release(), ("Authorization: Bearer " + token).c_str()));
    CURL* c = t.curl;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_CAINFO, ep.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
    const CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK && !t.gone) {
        std::string why = t.failure.empty() ? curl_easy_strerror(rc) : t.failure;
        return make_error(why);
    }
    return code;
}

std::string http_error(long code, const std::string& body) {
    std::string text = "HTTP " + std::to_string(code);
    if (!body.empty()) text += ": " + body.substr(0, 300);
    return text;
}

}  // namespace

Result<ApiEndpoint> resolve_api_endpoint(const std::string& setting, const char* env_host,
                                         const char* env_port, const std::string& sa_dir,
                                         const std::string& node_name) {
    if (setting == "off") return make_error("API off (--k8s-api off)");
    ApiEndpoint ep;
    if (setting == "auto") {
        if (!env_host || !*env_host)
            return make_error("not in a cluster (KUBERNETES_SERVICE_HOST unset)");
        const std::string host = env_host;
        const bool v6 = host.find(':') != std::string::npos;
        ep.base_url = "https://" + (v6 ? "[" + host + "]" : host) + ":" +
                      (env_port && *env_port ? env_port : "443");
    } else {
        ep.base_url = setting;
        while (!ep.base_url.empty() && ep.base_url.back() == '/') ep.base_url.pop_back();
    }
    if (node_name.empty())
        return make_error(
            "node name unknown (--node-name or NODE_NAME): cannot list this node's pods");
    ep.token_file = sa_dir + "/token";
    ep.ca_file = sa_dir + "/ca.crt";
    ep.node_name = node_name;
    return ep;
}

PodWatcher::PodWatcher(ApiEndpoint endpoint, k8s::PodCache& cache)
    : endpoint_(std::move(endpoint)), cache_(cache) {
    global_init_once();
}

PodWatcher::~PodWatcher() {
    stop_ = true;
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void PodWatcher::start() {
    thread_ = std::thread([this] { run(); });
}

bool PodWatcher::wait_first_attempt(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return attempted_; });
}

void PodWatcher::first_attempt_done() {
    std::lock_guard<std::mutex> lock(mu_);
    attempted_ = true;
    cv_.notify_all();
}

void PodWatcher::backoff_wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff_, [this] { return stop_.load(); });
    backoff_ = std::min(backoff_ * 2, std::chrono::seconds(kMaxBackoff));
}

void PodWatcher::run() {
    std::string rv;
    while (!stop_) {
        if (rv.empty()) {
            auto listed = list_pods();  // on success, the cache holds the pods already
            if (!listed) {
                cache_.note_error("list pods: " + listed.error());
                spdlog::warn("kubernetes: list pods on node {}: {}", endpoint_.node_name,
                             listed.error());
                first_attempt_done();
                backoff_wait();
                continue;
            }
            first_attempt_done();
            rv = *listed;
            backoff_ = std::chrono::seconds(1);
        }
        const auto started = std::chrono::steady_clock::now();
        switch (watch_pods(rv)) {
            case WatchEnd::kEnded:
                // A server that ends watches at once must not make this a busy loop.
                if (std::chrono::steady_clock::now() - started < std::chrono::seconds(1))
                    backoff_wait();
                break;
            case WatchEnd::kGone:
                cache_.note_gone();
                spdlog::info(
                    "kubernetes: watch resourceVersion {} expired (410 Gone): listing again", rv);
                rv.clear();
                break;
            case WatchEnd::kFailed:
                if (!stop_) backoff_wait();
                break;
        }
    }
}

Result<std::string> PodWatcher::list_pods() {
    CurlPtr curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return make_error("curl_easy_init failed");
    std::vector<k8s::PodMeta> pods;
    std::string cont, rv;
    size_t rejected = 0;
    do {
        Transfer t;
        t.curl = curl.get();
        t.stop = &stop_;
        std::string url = endpoint_.base_url + "/api/v1/pods?fieldSelector=" +
                          escape(curl.get(), "spec.nodeName=" + endpoint_.node_name) +
                          "&limit=" + std::to_string(kListPageSize);
        if (!cont.empty()) url += "&continue=" + escape(curl.get(), cont);
        auto code = perform(endpoint_, url, kListTimeoutS, t);
        if (!code) return make_error(code.error());
        if (*code != 200) return make_error(http_error(*code, t.body));
        auto list = k8s::parse_pod_list(t.body);
        if (!list) return make_error(list.error());
        for (auto& p : list->pods) pods.push_back(std::move(p));
        rejected += list->rejected_items;
        cont = list->continue_token;
        rv = list->resource_version;
    } while (!cont.empty() && !stop_);
    if (rejected > 0) spdlog::warn("kubernetes: {} pod list item(s) were not valid pods", rejected);
    cache_.replace(pods);
    spdlog::debug("kubernetes: {} pod(s) on node {} at resourceVersion {}", pods.size(),
                  endpoint_.node_name, rv);
    return rv;
}

PodWatcher::WatchEnd PodWatcher::watch_pods(std::string& resource_version) {
    CurlPtr curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return WatchEnd::kFailed;
    k8s::WatchStreamParser parser;
    Transfer t;
    t.curl = curl.get();
    t.stop = &stop_;
    t.watch = &parser;
    t.cache = &cache_;
    t.resource_version = &resource_version;
    const std::string url =
        endpoint_.base_url + "/api/v1/pods?watch=1&allowWatchBookmarks=true" +
        "&resourceVersion=" + escape(curl.get(), resource_version) +
        "&timeoutSeconds=" + std::to_string(kWatchServerTimeoutS) +
        "&fieldSelector=" + escape(curl.get(), "spec.nodeName=" + endpoint_.node_name);
    auto code = perform(endpoint_, url, kWatchTimeoutS, t);
    if (t.gone || (code && *code == 410)) return WatchEnd::kGone;
    std::string why;
    if (!code) {
        why = code.error();
    } else if (*code != 200) {
        why = http_error(*code, t.body);
    }
    if (why.empty()) return WatchEnd::kEnded;
    if (stop_) return WatchEnd::kFailed;
    cache_.note_error("watch pods: " + why);
    spdlog::warn("kubernetes: watch pods on node {}: {}", endpoint_.node_name, why);
    return WatchEnd::kFailed;
}

}  // namespace passport::agent
