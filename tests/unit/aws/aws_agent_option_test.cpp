// --aws-endpoint and --no-aws-calls as the agent parses them.
#include <gtest/gtest.h>

#include "agent/config.hpp"

namespace passport::agent {
namespace {

TEST(AwsAgentOption, EndpointsAreRepeatableAndValidated) {
    auto c = parse_args({"--aws-endpoint", "localstack:4566", "--aws-endpoint=10.0.0.7",
                         "--aws-endpoint", "[fd00::1]:443"},
                        nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    ASSERT_EQ(c->aws_endpoints.size(), 3u);
    EXPECT_EQ(c->aws_endpoints[0].host, "localstack");
    EXPECT_EQ(c->aws_endpoints[0].port, 4566);
    EXPECT_FALSE(c->aws_endpoints[1].port);
    EXPECT_EQ(c->aws_endpoints[2].host, "fd00::1");
    EXPECT_TRUE(c->aws_calls);

    auto bad = parse_args({"--aws-endpoint", "http://localstack:4566"}, nullptr);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("--aws-endpoint"), std::string::npos);
    EXPECT_NE(bad.error().find("without a scheme"), std::string::npos);
    EXPECT_FALSE(parse_args({"--aws-endpoint"}, nullptr).ok());
    EXPECT_FALSE(parse_args({"--aws-endpoint", "h:70000"}, nullptr).ok());
}

TEST(AwsAgentOption, CallsCanBeTurnedOff) {
    auto c = parse_args({"--no-aws-calls"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_FALSE(c->aws_calls);
    EXPECT_NE(usage().find("--aws-endpoint"), std::string::npos);
}

}  // namespace
}  // namespace passport::agent
