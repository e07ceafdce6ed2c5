#pragma once
// HTTP clients for e2e tests, both real unmodified programs as the agent will meet them in
// production: curl (one request per process, any headers), and Python's http.client driving
// several requests over one keep-alive connection. Each result carries the wall-clock window
// around the exchange, which bounds the segment times the agent may report.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/wait.hpp"

namespace passport::testing {

struct HttpRequest {
    std::string method = "GET";
    std::string url;                   // full URL, e.g. http://127.0.0.1:8080/ok
    std::vector<std::string> headers;  // "Name: value" lines
    std::optional<std::string> body;   // sent with --data-binary
    std::string user_agent = "passport-e2e/1.0";
    std::string ca_cert;  // https: trust this PEM certificate (curl --cacert)
    std::chrono::milliseconds timeout = std::chrono::seconds(15);
};

struct HttpResponse {
    int status = 0;  // 0 when no response arrived
    std::string body;
    int curl_exit = -1;
    std::string curl_stderr;
    double started_at = 0;   // wall clock just before curl was started
    double finished_at = 0;  // wall clock after curl exited
};

// Runs curl for one request (no proxies, no retries).
HttpResponse http_request(const HttpRequest& request);
HttpResponse http_get(const std::string& url, const std::vector<std::string>& headers = {});

// Path of a Python 3 interpreter (the distribution's /usr/bin/python3 when present, so the
// traced executable is a real ELF file and not a pyenv shell shim).
std::string python3_path();

// One request of a keep-alive session.
struct ClientRequest {
    std::string method = "GET";
    std::string path;  // request target, e.g. /ok/1
    std::map<std::string, std::string> headers;
    std::optional<std::string> body;
};

struct ClientResponse {
    int status = 0;
    std::string body;
    uint64_t length = 0;      // bytes of body read
    uint16_t local_port = 0;  // the client's port: equal ports = the same connection
    double started_at = 0;    // wall clock before the request was written
    double finished_at = 0;   // wall clock after the body was read
};

struct KeepAliveResult {
    std::vector<ClientResponse> responses;  // one per request that completed, in order
    std::string error;                      // Python exception text, or a harness failure
    double started_at = 0;
    double finished_at = 0;
    bool ok() const { return error.empty(); }
};

// Sends `requests` in order over one http.client.HTTPConnection to 127.0.0.1:port (Python
// reconnects by itself if the server closes the connection, which shows in local_port).
KeepAliveResult python_keep_alive_requests(uint16_t port,
                                           const std::vector<ClientRequest>& requests,
                                           Deadline deadline,
                                           const std::string& host = "127.0.0.1");

}  // namespace passport::testing
