#include "userspace/export/udp_emitter.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>
#include <thread>

#include <boost/asio/ip/udp.hpp>

#include "userspace/xray/document.hpp"

namespace passport::exporter {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;

// A loopback UDP listener on an ephemeral port, read with a deadline.
class Listener {
  public:
    explicit Listener(asio::io_context& io)
        : socket_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        socket_.non_blocking(true);
    }
    uint16_t port() const { return socket_.local_endpoint().port(); }

    std::optional<std::string> receive(
        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::array<char, 70000> buffer;
        while (std::chrono::steady_clock::now() < deadline) {
            boost::system::error_code ec;
            const size_t n = socket_.receive(asio::buffer(buffer), 0, ec);
            if (!ec) return std::string(buffer.data(), n);
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return std::nullopt;
    }

  private:
    udp::socket socket_;
};

std::unique_ptr<UdpEmitter> make_emitter(asio::io_context& io, const std::string& host,
                                         uint16_t port, Counters& counters) {
    auto emitter = UdpEmitter::create(io, HostPort{host, port}, counters);
    EXPECT_TRUE(emitter.ok()) << emitter.error();
    return emitter.ok() ? std::move(*emitter) : nullptr;
}

xray::Segment segment() {
    xray::Segment s;
    s.name = "frontend";
    s.id = "8ccfde972631dd2b";
    s.trace_id = "1-6b04d9f3-bd291da1988d76ab96ed1c01";
    s.start_time = 1795480050.858123;
    s.end_time = 1795480050.876;
    return s;
}

TEST(ExportUdpEmitter, SendsExactDatagramBytes) {
    asio::io_context io;
    Listener listener(io);
    Counters counters;
    auto emitter = make_emitter(io, "127.0.0.1", listener.port(), counters);
    ASSERT_TRUE(emitter);

    const auto datagrams = xray::serialize_documents(segment());
    ASSERT_EQ(datagrams.size(), 1u);
    emitter->emit(datagrams[0]);

    const auto got = listener.receive();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, datagrams[0]);
    // Header line, then the body.
    EXPECT_TRUE(
        got->starts_with("{\"format\":\"json\",\"version\":1}\n{\"id\":\"8ccfde972631dd2b\","))
        << *got;
    EXPECT_EQ(got->substr(got->find('\n') + 1), xray::to_json(segment()));
    EXPECT_EQ(counters.get(kCounterDocumentsSent), 1u);
    EXPECT_EQ(counters.get(kCounterBytesSent), datagrams[0].size());
    EXPECT_EQ(counters.get(kCounterUdpSendFailed), 0u);
}

TEST(ExportUdpEmitter, SendsSeveralInOrderIncludingAFullSizeOne) {
    asio::io_context io;
    Listener listener(io);
    Counters counters;
    auto emitter = make_emitter(io, "127.0.0.1", listener.port(), counters);
    ASSERT_TRUE(emitter);
    const std::string big = xray::make_datagram(std::string(xray::kMaxDatagramSize - 40, 'x'));
    emitter->emit("a\nfirst");
    emitter->emit(big);
    emitter->emit("a\nthird");
    EXPECT_EQ(listener.receive(), "a\nfirst");
    EXPECT_EQ(listener.receive(), big);
    EXPECT_EQ(listener.receive(), "a\nthird");
    EXPECT_EQ(counters.get(kCounterDocumentsSent), 3u);
    EXPECT_EQ(counters.get(kCounterBytesSent), 14u + big.size());
}

TEST(ExportUdpEmitter, RefusedPortIsCountedNotThrown) {
    asio::io_context io;
    uint16_t closed_port = 0;
    {
        Listener temporary(io);  // take an ephemeral port, then free it
        closed_port = temporary.port();
    }
    Counters counters;
    auto emitter = make_emitter(io, "127.0.0.1", closed_port, counters);
    ASSERT_TRUE(emitter);
    // The ICMP port-unreachable of one send is reported on a later send on the connected
    // socket; keep sending until it shows up.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (counters.get(kCounterUdpRefused) == 0 && std::chrono::steady_clock::now() < deadline) {
        EXPECT_NO_THROW(emitter->emit("{\"format\":\"json\",\"version\":1}\n{}"));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GT(counters.get(kCounterUdpRefused), 0u);
    EXPECT_EQ(counters.get(kCounterUdpSendFailed), counters.get(kCounterUdpRefused));
}

TEST(ExportUdpEmitter, OversizedDatagramIsDroppedAndCounted) {
    asio::io_context io;
    Listener listener(io);
    Counters counters;
    auto emitter = make_emitter(io, "127.0.0.1", listener.port(), counters);
    ASSERT_TRUE(emitter);
    emitter->emit(std::string(kMaxUdpPayload + 1, 'x'));
    emitter->emit("small");
    EXPECT_EQ(listener.receive(), "small");  // the first one never arrived
    EXPECT_EQ(counters.get(kCounterUdpTooLarge), 1u);
    EXPECT_EQ(counters.get(kCounterUdpSendFailed), 1u);
    EXPECT_EQ(counters.get(kCounterDocumentsSent), 1u);
}

TEST(ExportUdpEmitter, BatchedDatagramsLeaveOnFlushInOrder) {
    asio::io_context io;
    Listener listener(io);
    Counters counters;
    auto emitter = make_emitter(io, "127.0.0.1", listener.port(), counters);
    ASSERT_TRUE(emitter);
    emitter->set_batch_size(4);
    emitter->emit("a\n1");
    emitter->emit("a\n2");
    emitter->emit("a\n3");
    EXPECT_EQ(listener.receive(std::chrono::milliseconds(50)), std::nullopt)
        << "queued until flush";
    EXPECT_EQ(counters.get(kCounterDocumentsSent), 0u);
    emitter->flush();
    EXPECT_EQ(listener.receive(), "a\n1");
    EXPECT_EQ(listener.receive(), "a\n2");
    EXPECT_EQ(listener.receive(), "a\n3");
    EXPECT_EQ(counters.get(kCounterDocumentsSent), 3u);
    EXPECT_EQ(counters.get(kCounterBytesSent), 9u);
    // A full batch goes out without waiting for flush().
    for (int i = 0; i < 4; i++) emitter->emit("b\n" + std::to_string(i));
    for (int i = 0; i < 4; i++) EXPECT_EQ(listener.receive(), "b\n" + std::to_string(i));
    emitter->emit("c\nlast");
    emitter.reset();  // destruction flushes
    EXPECT_EQ(listener.receive(), "c\nlast");
}

TEST(ExportUdpEmitter, BatchedSendsToARefusedPortAreCountedPerDatagram) {
    asio::io_context io;
    uint16_t closed_port = 0;
    {
        Listener temporary(io);
        closed_port = temporary.port();
    }
    Counters counters;
    auto emitter = make_emitter(io, "127.0.0.1", closed_port, counters);
    ASSERT_TRUE(emitter);
    emitter->set_batch_size(8);
    uint64_t emitted = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (counters.get(kCounterUdpRefused) == 0 && std::chrono::steady_clock::now() < deadline) {
        for (int i = 0; i < 3; i++, emitted++) emitter->emit("x\n{}");
        emitter->flush();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_GT(counters.get(kCounterUdpRefused), 0u);
    EXPECT_EQ(counters.get(kCounterDocumentsSent) + counters.get(kCounterUdpSendFailed), emitted)
        << "every datagram is either sent or counted as failed";
}

TEST(ExportUdpEmitter, ResolvesHostnameOncePreferringIpv4) {
    asio::io_context io;
    Listener listener(io);
    Counters counters;
    auto emitter = make_emitter(io, "localhost", listener.port(), counters);
    ASSERT_TRUE(emitter);
    EXPECT_TRUE(emitter->remote().address().is_v4());
    EXPECT_EQ(emitter->remote().port(), listener.port());
    emitter->emit("a\nb");
    EXPECT_EQ(listener.receive(), "a\nb");
}

}  // namespace
}  // namespace passport::exporter
