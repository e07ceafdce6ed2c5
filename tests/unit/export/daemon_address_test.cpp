#include "userspace/export/daemon_address.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace passport::exporter {
namespace {

void expect_hp(const HostPort& hp, const std::string& host, uint16_t port) {
    EXPECT_EQ(hp.host, host);
    EXPECT_EQ(hp.port, port);
}

TEST(DaemonAddress, Default) {
    const DaemonAddress a = default_daemon_address();
    expect_hp(a.udp, "127.0.0.1", 2000);
    expect_hp(a.tcp, "127.0.0.1", 2000);
    const auto parsed = parse_daemon_address(kDefaultDaemonAddress);
    ASSERT_TRUE(parsed.ok());
    expect_hp(parsed->udp, "127.0.0.1", 2000);
}

TEST(DaemonAddress, SingleFormIsUsedForBoth) {
    const auto a = parse_daemon_address("xray-daemon.monitoring.svc:3000");
    ASSERT_TRUE(a.ok()) << a.error();
    expect_hp(a->udp, "xray-daemon.monitoring.svc", 3000);
    expect_hp(a->tcp, "xray-daemon.monitoring.svc", 3000);
}

TEST(DaemonAddress, TwoPartFormEitherOrder) {
    for (const char* value :
         {"udp:10.0.0.1:2001 tcp:10.0.0.2:2002", "tcp:10.0.0.2:2002 udp:10.0.0.1:2001"}) {
        const auto a = parse_daemon_address(value);
        ASSERT_TRUE(a.ok()) << a.error();
        expect_hp(a->udp, "10.0.0.1", 2001);
        expect_hp(a->tcp, "10.0.0.2", 2002);
    }
}

TEST(DaemonAddress, BracketedIpv6Extension) {
    const auto single = parse_daemon_address("[::1]:2000");
    ASSERT_TRUE(single.ok()) << single.error();
    expect_hp(single->udp, "::1", 2000);
    const auto pair = parse_daemon_address("udp:[fd00::2]:2000 tcp:127.0.0.1:2000");
    ASSERT_TRUE(pair.ok()) << pair.error();
    expect_hp(pair->udp, "fd00::2", 2000);
    expect_hp(pair->tcp, "127.0.0.1", 2000);
}

TEST(DaemonAddress, Errors) {
    struct Case {
        const char* value;
        const char* message;
    };
    for (const Case c : {
             Case{"", "empty"},
             Case{"127.0.0.1", "missing port"},
             Case{"127.0.0.1:", "port must be a number"},
             Case{"127.0.0.1:abc", "port must be a number"},
             Case{"127.0.0.1:20x0", "port must be a number"},
             Case{"127.0.0.1:0", "port must be a number from 1 to 65535"},
             Case{"127.0.0.1:65536", "port must be a number from 1 to 65535"},
             Case{"127.0.0.1:-1", "port must be a number"},
             Case{":2000", "missing host"},
             Case{"h$st:2000", "invalid host"},
             Case{"::1:2000", "too many ':'"},
             Case{"[::1]2000", "missing port"},
             Case{"[::1:2000", "missing ']'"},
             Case{"[zz]:2000", "invalid IPv6 address"},
             Case{"udp:127.0.0.1:2000", "both udp: and tcp: addresses are required"},
             Case{"tcp:127.0.0.1:2000", "both udp: and tcp: addresses are required"},
             Case{"udp:a:1 udp:b:2", "both udp: and tcp: addresses are required"},
             Case{"udp:a:1  tcp:b:2", "exactly one space"},
             Case{"udp:a:1 tcp:b:2 x", "exactly one space"},
             Case{" udp:a:1 tcp:b:2", "exactly one space"},
             Case{"a:1 b:2", "udp: or tcp: prefix"},
             Case{"udp:a:1 tcp:b", "missing port"},
         }) {
        const auto a = parse_daemon_address(c.value);
        ASSERT_FALSE(a.ok()) << c.value;
        EXPECT_NE(a.error().find(c.message), std::string::npos) << c.value << " -> " << a.error();
        // Every message names the variable and quotes the value.
        EXPECT_NE(a.error().find("AWS_XRAY_DAEMON_ADDRESS \"" + std::string(c.value) + "\""),
                  std::string::npos)
            << a.error();
    }
}

TEST(DaemonAddress, ToString) {
    EXPECT_EQ(to_string(HostPort{"127.0.0.1", 2000}), "127.0.0.1:2000");
    EXPECT_EQ(to_string(HostPort{"::1", 2000}), "[::1]:2000");
}

// Sets an environment variable for one scope and restores it.
class ScopedEnv {
  public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value == nullptr) {
            unsetenv(name);
        } else {
            setenv(name, value, 1);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            setenv(name_, old_->c_str(), 1);
        } else {
            unsetenv(name_);
        }
    }

  private:
    const char* name_;
    std::optional<std::string> old_;
};

TEST(DaemonAddress, FromEnvironment) {
    {
        ScopedEnv env("AWS_XRAY_DAEMON_ADDRESS", nullptr);
        const auto a = daemon_address_from_environment();
        ASSERT_TRUE(a.ok());
        expect_hp(a->udp, "127.0.0.1", 2000);
    }
    {
        ScopedEnv env("AWS_XRAY_DAEMON_ADDRESS", "udp:127.0.0.1:42000 tcp:127.0.0.1:42001");
        const auto a = daemon_address_from_environment();
        ASSERT_TRUE(a.ok()) << a.error();
        expect_hp(a->udp, "127.0.0.1", 42000);
        expect_hp(a->tcp, "127.0.0.1", 42001);
    }
    {
        ScopedEnv env("AWS_XRAY_DAEMON_ADDRESS", "nonsense");
        EXPECT_FALSE(daemon_address_from_environment().ok());
    }
}

}  // namespace
}  // namespace passport::exporter
