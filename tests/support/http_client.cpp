#include "tests/support/http_client.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "tests/support/child_process.hpp"

namespace passport::testing {
namespace {

constexpr std::string_view kStatusMarker = "\n@@passport-curl-status=";

// The keep-alive client, run as `python3 -c`. Reads a JSON spec from argv[1], prints one JSON
// line per response and a final {"done":...} or {"error":...} line.
constexpr const char* kKeepAliveScript = R"PY(
import http.client, json, sys, time
spec = json.loads(sys.argv[1])
conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=spec["timeout"])
try:
    for r in spec["requests"]:
        t0 = time.time()
        body = r.get("body")
        conn.request(r["method"], r["path"], body=None if body is None else body.encode("latin-1"),
                     headers=r.get("headers", {}))
        port = conn.sock.getsockname()[1]
        resp = conn.getresponse()
        data = resp.read()
        t1 = time.time()
        print(json.dumps({"status": resp.status, "length": len(data),
                          "body": data[:4096].decode("latin-1"), "local_port": port,
                          "t0": t0, "t1": t1}), flush=True)
    conn.close()
    print(json.dumps({"done": True}), flush=True)
except Exception as e:
    print(json.dumps({"error": repr(e)}), flush=True)
    sys.exit(1)
)PY";

}  // namespace

std::string python3_path() {
    if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
    return find_executable("python3");
}

HttpResponse http_request(const HttpRequest& request) {
    std::vector<std::string> argv = {
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--http1.1",
        "--max-time",
        std::to_string(static_cast<double>(request.timeout.count()) / 1000.0),
        "-X",
        request.method,
        "-A",
        request.user_agent};
    for (const auto& header : request.headers) {
        argv.emplace_back("-H");
        argv.push_back(header);
    }
    if (!request.ca_cert.empty()) {
        argv.emplace_back("--cacert");
        argv.push_back(request.ca_cert);
    }
    if (request.body) {
        argv.emplace_back("--data-binary");
        argv.push_back(*request.body);
    }
    argv.emplace_back("-w");
    argv.push_back(std::string(kStatusMarker) + "%{http_code}");
    argv.push_back(request.url);

    HttpResponse response;
    response.started_at = wall_clock_now();
    CommandResult result = run_command(ChildOptions{argv, {}, {}, {}, true},
                                       deadline_in(request.timeout + std::chrono::seconds(5)));
    response.finished_at = wall_clock_now();
    response.curl_exit = result.status.exited ? result.status.code : -1;
    response.curl_stderr = result.err;
    size_t marker = result.out.rfind(kStatusMarker);
    if (marker != std::string::npos) {
        response.body = result.out.substr(0, marker);
        response.status = std::atoi(result.out.c_str() + marker + kStatusMarker.size());
    } else {
        response.body = result.out;
    }
    return response;
}

HttpResponse http_get(const std::string& url, const std::vector<std::string>& headers) {
    HttpRequest request;
    request.url = url;
    request.headers = headers;
    return http_request(request);
}

KeepAliveResult python_keep_alive_requests(uint16_t port,
                                           const std::vector<ClientRequest>& requests,
                                           Deadline deadline, const std::string& host) {
    nlohmann::json spec;
    spec["host"] = host;
    spec["port"] = port;
    spec["timeout"] = std::max(1.0, static_cast<double>(time_left(deadline).count()) / 1000.0);
    spec["requests"] = nlohmann::json::array();
    for (const auto& r : requests) {
        nlohmann::json item{{"method", r.method}, {"path", r.path}, {"headers", r.headers}};
        if (r.body) item["body"] = *r.body;
        spec["requests"].push_back(item);
    }

    KeepAliveResult result;
    result.started_at = wall_clock_now();
    CommandResult run = run_command(
        ChildOptions{{python3_path(), "-c", kKeepAliveScript, spec.dump()}, {}, {}, {}, true},
        deadline);
    result.finished_at = wall_clock_now();

    bool done = false;
    size_t start = 0;
    while (start < run.out.size()) {
        size_t end = run.out.find('\n', start);
        if (end == std::string::npos) end = run.out.size();
        std::string line = run.out.substr(start, end - start);
        start = end + 1;
        if (line.empty()) continue;
        nlohmann::json item = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (item.is_discarded()) continue;
        if (item.contains("error")) {
            result.error = item["error"].get<std::string>();
        } else if (item.contains("done")) {
            done = true;
        } else {
            ClientResponse response;
            response.status = item.value("status", 0);
            response.length = item.value("length", 0ULL);
            response.body = item.value("body", std::string());
            response.local_port = item.value("local_port", static_cast<uint16_t>(0));
            response.started_at = item.value("t0", 0.0);
            response.finished_at = item.value("t1", 0.0);
            result.responses.push_back(std::move(response));
        }
    }
    if (result.error.empty() && !done) {
        result.error = "python client did not finish (" + run.status.describe() +
                       (run.timed_out ? ", timed out" : "") + "): " + run.err;
    }
    return result;
}

}  // namespace passport::testing
