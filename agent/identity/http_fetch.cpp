#include "agent/identity/http_fetch.hpp"

#include <curl/curl.h>

#include <memory>

namespace passport::identity {
namespace {

// Below this rate for HttpRequest::low_speed_time the transfer is dropped (a slow-loris body); a
// metadata answer is a few KiB sent at once.
constexpr long kLowSpeedBytesPerSecond = 64;

void global_init_once() {
    static const bool done = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
    (void)done;
}

struct Sink {
    std::string body;
    size_t cap = 0;
    bool over = false;
};

size_t write_cb(char* data, size_t size, size_t n, void* user) {
    auto* sink = static_cast<Sink*>(user);
    const size_t bytes = size * n;
    if (sink->body.size() + bytes > sink->cap) {
        sink->over = true;
        return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
    }
    sink->body.append(data, bytes);
    return bytes;
}

size_t empty_upload(char*, size_t, size_t, void*) { return 0; }

using CurlPtr = std::unique_ptr<CURL, void (*)(CURL*)>;
using HeaderList = std::unique_ptr<curl_slist, void (*)(curl_slist*)>;

void set_limits(CURL* c, const HttpRequest& r) {
    const auto ms = static_cast<long>(r.budget.count());
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, kLowSpeedBytesPerSecond);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(r.low_speed_time.count()));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(r.body_cap));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
}

void set_method(CURL* c, const HttpRequest& r) {
    if (r.method == "POST") {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.c_str());
        return;
    }
    if (r.method != "PUT") return;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(0));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, empty_upload);
}

std::string transport_error(CURLcode rc, const Sink& sink, const HttpRequest& r) {
    if (sink.over || rc == CURLE_FILESIZE_EXCEEDED) {
        return "response larger than " + std::to_string(r.body_cap) + " bytes";
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        return std::string(curl_easy_strerror(rc)) + " (budget " +
               std::to_string(r.budget.count()) + " ms)";
    }
    return curl_easy_strerror(rc);
}

}  // namespace

Result<HttpResponse> http_fetch(const HttpRequest& request) {
    if (request.method != "GET" && request.method != "PUT" && request.method != "POST") {
        return make_error("unsupported method " + request.method);
    }
    if (request.budget.count() <= 0) return make_error("no time left in the budget");
    global_init_once();
    CurlPtr curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return make_error("curl_easy_init failed");
    CURL* c = curl.get();
    HeaderList headers(nullptr, curl_slist_free_all);
    for (const std::string& h : request.headers) {
        curl_slist* grown = curl_slist_append(headers.get(), h.c_str());
        if (!grown) return make_error("out of memory for headers");
        (void)headers.release();
        headers.reset(grown);
    }
    Sink sink;
    sink.cap = request.body_cap;
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    set_limits(c, request);
    set_method(c, request);
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) return make_error(transport_error(rc, sink, request));
    HttpResponse response;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
    response.body = std::move(sink.body);
    return response;
}

}  // namespace passport::identity
