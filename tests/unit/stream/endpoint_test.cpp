#include <gtest/gtest.h>

#include "userspace/events/event.hpp"

namespace passport::events {
namespace {

Endpoint make(uint16_t family, std::initializer_list<uint8_t> bytes) {
    Endpoint e;
    e.family = family;
    size_t i = 0;
    for (uint8_t b : bytes) e.addr[i++] = b;
    return e;
}

TEST(StreamEndpoint, PrintsIpv4) {
    EXPECT_EQ(make(2, {127, 0, 0, 1}).ip_string(), "127.0.0.1");
    EXPECT_EQ(make(2, {10, 20, 30, 250}).ip_string(), "10.20.30.250");
}

TEST(StreamEndpoint, PrintsIpv6Compressed) {
    EXPECT_EQ(make(10, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}).ip_string(), "::1");
    EXPECT_EQ(
        make(10, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34}).ip_string(),
        "2001:db8::1234");
}

TEST(StreamEndpoint, PrintsIpv4MappedAsIpv4) {
    EXPECT_EQ(make(10, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 9}).ip_string(),
              "192.168.1.9");
}

TEST(StreamEndpoint, UnknownFamilyIsEmpty) {
    EXPECT_EQ(make(0, {1, 2, 3, 4}).ip_string(), "");
    EXPECT_EQ(make(1, {1, 2, 3, 4}).ip_string(), "");
}

}  // namespace
}  // namespace passport::events
