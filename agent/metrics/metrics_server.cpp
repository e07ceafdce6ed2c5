#include "agent/metrics/metrics_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CivetServer.h>
#include <cerrno>
#include <cstring>
#include <sstream>

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

namespace passport::agent::metrics {
namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";
// The Prometheus text exposition format, version 0.0.4.
constexpr const char* kPromText = "text/plain; version=0.0.4; charset=utf-8";

void respond(mg_connection* conn, int status, const char* type, const std::string& body,
             const char* extra_header = "") {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
              status, mg_get_response_code_text(conn, status), type, body.size(), extra_header);
    mg_write(conn, body.data(), body.size());
}

// One path: GET answers, every other method is refused with 405 (nothing here writes).
class GetOnly : public CivetHandler {
  public:
    bool handlePost(CivetServer*, mg_connection* conn) override { return refuse(conn); }
    bool handleHead(CivetServer*, mg_connection* conn) override { return refuse(conn); }
    bool handlePut(CivetServer*, mg_connection* conn) override { return refuse(conn); }
    bool handleDelete(CivetServer*, mg_connection* conn) override { return refuse(conn); }
    bool handleOptions(CivetServer*, mg_connection* conn) override { return refuse(conn); }
    bool handlePatch(CivetServer*, mg_connection* conn) override { return refuse(conn); }

  private:
    static bool refuse(mg_connection* conn) {
        respond(conn, 405, kTextPlain, "only GET is served here\n", "Allow: GET\r\n");
        return true;
    }
};

class HealthHandler : public GetOnly {
  public:
    HealthHandler(const MetricsState& state, bool readiness) : state_(state), ready_(readiness) {}
    bool handleGet(CivetServer*, mg_connection* conn) override {
        auto [status, text] = ready_ ? state_.readiness() : state_.health();
        respond(conn, status, kTextPlain, text + "\n");
        return true;
    }

  private:
    const MetricsState& state_;
    bool ready_;
};

class MetricsHandler : public GetOnly {
  public:
    explicit MetricsHandler(const MetricsState& state) : state_(state) {}
    bool handleGet(CivetServer*, mg_connection* conn) override {
        auto families = state_.families();  // serialised outside the state's lock
        std::ostringstream body;
        prometheus::TextSerializer().Serialize(body, *families);
        respond(conn, 200, kPromText, body.str());
        return true;
    }

  private:
    const MetricsState& state_;
};

// civetweb reports why it could not start through this callback, on the starting thread.
thread_local std::string civet_last_error;

int log_civet(const mg_connection*, const char* message) {
    civet_last_error = message ? message : "";
    spdlog::debug("metrics endpoint: {}", civet_last_error);
    return 1;  // handled: civetweb prints nothing itself
}

// Why `address` cannot be bound, found by binding it the way civetweb does (its own error text
// does not say): e.g. "Address already in use"; "" when it can be bound now.
std::string bind_error(const std::string& address) {
    const auto colon = address.rfind(':');
    std::string host = address.substr(0, colon);
    const auto port = static_cast<uint16_t>(std::stoul(address.substr(colon + 1)));
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (host.size() > 2 && host.front() == '[') {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) != 1)
            return "not an IPv6 address";
        len = sizeof(*a6);
    } else {
        auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) != 1) return "not an IPv4 address";
        len = sizeof(*a4);
    }
    const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::strerror(errno);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    std::string why;
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) why = std::strerror(errno);
    ::close(fd);
    return why;
}

}  // namespace

struct MetricsServer::Handlers {
    explicit Handlers(const MetricsState& state)
        : healthz(state, false), readyz(state, true), metrics(state) {}
    HealthHandler healthz;
    HealthHandler readyz;
    MetricsHandler metrics;
};

void MetricsState::publish(std::vector<prometheus::MetricFamily> families,
                           std::string exporter_problem) {
    auto next = std::make_shared<const std::vector<prometheus::MetricFamily>>(std::move(families));
    const std::lock_guard lock(mutex_);
    families_ = std::move(next);
    exporter_problem_ = std::move(exporter_problem);
    published_ = std::chrono::steady_clock::now();
}

void MetricsState::set_probes_attached() {
    const std::lock_guard lock(mutex_);
    attached_ = true;
}

void MetricsState::set_ready(bool ready, std::string why_not) {
    const std::lock_guard lock(mutex_);
    ready_ = ready;
    not_ready_ = std::move(why_not);
}

std::pair<int, std::string> MetricsState::health() const {
    const std::lock_guard lock(mutex_);
    if (!attached_) return {503, "probes not attached yet"};
    if (!exporter_problem_.empty()) return {503, exporter_problem_};
    const auto age = std::chrono::steady_clock::now() - published_;
    if (published_ != std::chrono::steady_clock::time_point{} && age > kStale)
        return {503,
                "agent loop stalled: no metrics snapshot for " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(age).count()) +
                    " s"};
    return {200, note_.empty() ? "ok" : "ok\n" + note_};
}

void MetricsState::set_note(std::string note) {
    const std::lock_guard lock(mutex_);
    note_ = std::move(note);
}

std::pair<int, std::string> MetricsState::readiness() const {
    const std::lock_guard lock(mutex_);
    if (ready_) return {200, note_.empty() ? "ready" : "ready\n" + note_};
    return {503, not_ready_};
}

std::shared_ptr<const std::vector<prometheus::MetricFamily>> MetricsState::families() const {
    const std::lock_guard lock(mutex_);
    return families_;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& address,
                                                            const MetricsState& state) {
    // Bounded requests (8 KiB of head), idle or slow clients cut after 10 s, no keep-alive, no
    // document root (no file is ever served), four threads of its own.
    const std::vector<std::string> options = {
        "listening_ports",  address, "num_threads",       "4",  "request_timeout_ms",       "10000",
        "max_request_size", "8192",  "enable_keep_alive", "no", "enable_directory_listing", "no"};
    CivetCallbacks callbacks;
    callbacks.log_message = log_civet;
    auto s = std::make_unique<MetricsServer>();
    s->handlers_ = std::make_unique<Handlers>(state);
    civet_last_error.clear();
    try {
        s->server_ = std::make_unique<CivetServer>(options, &callbacks);
    } catch (const CivetException& e) {
        std::string why = bind_error(address);
        if (why.empty()) why = civet_last_error.empty() ? e.what() : civet_last_error;
        return make_error("cannot listen on " + address + ": " + why);
    }
    s->server_->addHandler("/healthz$", s->handlers_->healthz);
    s->server_->addHandler("/readyz$", s->handlers_->readyz);
    s->server_->addHandler("/metrics$", s->handlers_->metrics);
    const auto ports = s->server_->getListeningPorts();
    const std::string host = address.substr(0, address.rfind(':'));
    s->base_url_ = "http://" + host + ":" + std::to_string(ports.empty() ? 0 : ports.front());
    return s;
}

MetricsServer::MetricsServer() = default;

void MetricsServer::begin_stop() {
    if (server_ && !stopping_.joinable()) stopping_ = std::thread([this] { server_->close(); });
}

MetricsServer::~MetricsServer() {
    begin_stop();
    if (stopping_.joinable()) stopping_.join();  // its threads are gone before the handlers go
}

}  // namespace passport::agent::metrics
