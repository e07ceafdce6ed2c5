// Kernel layer, TLS: the OpenSSL uprobes (bpf/probes/tls.bpf.c) attached by the agent's
// TlsTracer to a child of this test that speaks TLS with the system libssl.so.3 over loopback
// (client and server threads, SSL_write / SSL_read / SSL_write_ex / SSL_read_ex). Checks the raw
// events exactly: the plaintext bytes, their plaintext positions, the connection ids of the TCP
// sockets, that an SSL_read returning -1 (WANT_READ) produces nothing, and that the ciphertext
// the socket syscalls saw produced no payload. Needs root.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "agent/bpf_loader.hpp"
#include "agent/kernel_features.hpp"
#include "agent/tls_tracer.hpp"
#include "userspace/events/decoder.hpp"

namespace passport::agent {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kRequest = "GET /tls-kernel HTTP/1.1\r\nHost: k\r\n\r\n";
constexpr std::string_view kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct Collected {
    Counters counters;
    std::vector<events::Event> events;
};

int collect(void* ctx, void* data, size_t size) {
    auto* c = static_cast<Collected*>(ctx);
    events::Event e;
    if (events::decode_counted({static_cast<const uint8_t*>(data), size}, c->counters, e))
        c->events.push_back(std::move(e));
    return 0;
}

// The child's TLS conversation: a server thread and a client on 127.0.0.1. Exits 0 on success.
void tls_conversation(const std::string& cert, const std::string& key) {
    int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(lfd, 1) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen) != 0)
        ::_exit(10);
    std::thread server([&] {
        SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
        if (SSL_CTX_use_certificate_file(sctx, cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_use_PrivateKey_file(sctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
            ::_exit(11);
        int fd = ::accept(lfd, nullptr, nullptr);
        SSL* ssl = SSL_new(sctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) ::_exit(12);
        char buf[256];
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n != static_cast<int>(kRequest.size())) ::_exit(13);
        size_t written = 0;
        if (SSL_write_ex(ssl, kResponse.data(), kResponse.size(), &written) != 1) ::_exit(14);
        SSL_shutdown(ssl);
        SSL_free(ssl);
        ::close(fd);
        SSL_CTX_free(sctx);
    });
    SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) ::_exit(15);
    SSL* ssl = SSL_new(cctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) ::_exit(16);
    // Nothing to read yet on a non-blocking socket: SSL_read returns -1 (WANT_READ).
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    char buf[256];
    if (SSL_read(ssl, buf, sizeof buf) != -1) ::_exit(17);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (SSL_write(ssl, kRequest.data(), static_cast<int>(kRequest.size())) !=
        static_cast<int>(kRequest.size()))
        ::_exit(18);
    size_t got = 0;
    std::string response;
    while (response.size() < kResponse.size() && SSL_read_ex(ssl, buf, sizeof buf, &got) == 1)
        response.append(buf, got);
    server.join();
    ::_exit(response == kResponse ? 0 : 19);
}

// A program named `name` that uses map `map_id` is loaded. The map ties the program to this
// test's probes: other test runs on the machine load programs of the same name.
bool program_loaded(const std::string& name, uint32_t map_id) {
    uint32_t id = 0;
    bool found = false;
    while (!found && bpf_prog_get_next_id(id, &id) == 0) {
        int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0) continue;
        bpf_prog_info info{};
        uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && name == info.name &&
            info.nr_map_ids > 0) {
            std::vector<uint32_t> maps(info.nr_map_ids);
            bpf_prog_info again{};
            again.nr_map_ids = info.nr_map_ids;
            again.map_ids = reinterpret_cast<uint64_t>(maps.data());
            len = sizeof again;
            if (bpf_obj_get_info_by_fd(fd, &again, &len) == 0)
                for (uint32_t i = 0; i < std::min(again.nr_map_ids, info.nr_map_ids); i++)
                    found |= maps[i] == map_id;
        }
        ::close(fd);
    }
    return found;
}

uint32_t map_id_of(int map_fd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    return bpf_obj_get_info_by_fd(map_fd, &info, &len) == 0 ? info.id : 0;
}

class TlsKernelProbes : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to load BPF programs";
        probe_kernel_features();
        dir_ = "/tmp/passport-tls-kernel-" + std::to_string(::getpid());
        std::string cmd =
            "mkdir -p " + dir_ + " && openssl req -x509 -newkey rsa:2048 -nodes -keyout " + dir_ +
            "/key.pem -out " + dir_ + "/cert.pem -days 1 -subj /CN=localhost >/dev/null 2>&1";
        ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl req failed";
    }
    void TearDown() override {
        if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
    }
    std::string dir_;
};

TEST_F(TlsKernelProbes, PlaintextOfSslCallsExactlyOnce) {
    // The child waits on a pipe so it is selected and attached before it speaks.
    int go[2];
    ASSERT_EQ(::pipe(go), 0);
    const std::string cert = dir_ + "/cert.pem", key = dir_ + "/key.pem";
    pid_t child = ::fork();
    if (child == 0) {
        ::close(go[1]);
        char c;
        if (::read(go[0], &c, 1) != 1) ::_exit(20);
        tls_conversation(cert, key);
    }
    ::close(go[0]);

    ProbeConfig cfg;
    cfg.trace_all = false;
    auto loaded = BpfProbes::load(cfg);
    ASSERT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error());
    auto probes = std::move(*loaded);
    ASSERT_TRUE(probes->select_pid(static_cast<uint32_t>(child)).ok());
    Counters counters;
    {
        TlsTracer tls(*probes, counters, /*trace_all=*/false);
        tls.scan_selected();
        ASSERT_EQ(tls.attached_binaries(), 1u) << "the child maps libssl.so.3 (this test links it)";
        ASSERT_NE(tls.describe()[0].find("libssl.so"), std::string::npos) << tls.describe()[0];

        char c = 'g';
        ASSERT_EQ(::write(go[1], &c, 1), 1);
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status)) << status;
        ASSERT_EQ(WEXITSTATUS(status), 0) << "the child's TLS conversation failed";
    }

    Collected col;
    ring_buffer* rb = ring_buffer__new(probes->events_map_fd(), collect, &col, nullptr);
    ASSERT_NE(rb, nullptr);
    ring_buffer__consume(rb);
    ring_buffer__free(rb);

    std::vector<events::ConnOpen> opens;
    std::vector<events::Data> tls_data, socket_payload;
    for (const auto& e : col.events) {
        if (const auto* o = std::get_if<events::ConnOpen>(&e);
            o && o->conn.tgid == static_cast<uint32_t>(child))
            opens.push_back(*o);
        if (const auto* d = std::get_if<events::Data>(&e);
            d && d->conn.tgid == static_cast<uint32_t>(child)) {
            if (d->source == events::DataSource::kTls)
                tls_data.push_back(*d);
            else if (!d->bytes.empty())
                socket_payload.push_back(*d);
        }
    }
    ASSERT_EQ(opens.size(), 2u) << "client and server sockets";
    const events::ConnOpen* client_conn = nullptr;
    const events::ConnOpen* server_conn = nullptr;
    for (const auto& o : opens) (o.role == events::Role::kClient ? client_conn : server_conn) = &o;
    ASSERT_TRUE(client_conn && server_conn);

    // Exactly four plaintext records, one per successful call; the -1 read made none.
    ASSERT_EQ(tls_data.size(), 4u);
    auto expect = [&](const events::ConnOpen& conn, events::Direction dir, std::string_view bytes) {
        int found = 0;
        for (const auto& d : tls_data) {
            if (!(d.conn == conn.conn) || d.direction != dir) continue;
            found++;
            EXPECT_EQ(d.bytes, bytes);
            EXPECT_EQ(d.len, bytes.size());
            EXPECT_EQ(d.pos, 0u) << "plaintext positions start at 0 per direction";
            EXPECT_LE(d.enter_ns, d.exit_ns);
        }
        EXPECT_EQ(found, 1) << "direction " << int(dir) << " of fd " << conn.conn.fd;
    };
    expect(*client_conn, events::Direction::kEgress, kRequest);
    expect(*server_conn, events::Direction::kIngress, kRequest);
    expect(*server_conn, events::Direction::kEgress, kResponse);
    expect(*client_conn, events::Direction::kIngress, kResponse);

    // The handshake and records went through the socket syscalls as ciphertext: none copied.
    EXPECT_TRUE(socket_payload.empty()) << socket_payload.size() << " socket records with payload";

    // Nothing of the uprobes stays behind once the tracer and the probes are gone.
    const uint32_t events_map = map_id_of(probes->events_map_fd());
    ASSERT_NE(events_map, 0u);
    ASSERT_TRUE(program_loaded("ssl_ret", events_map));
    probes.reset();
    EXPECT_FALSE(program_loaded("ssl_ret", events_map)) << "TLS programs left loaded";
}

}  // namespace
}  // namespace passport::agent
