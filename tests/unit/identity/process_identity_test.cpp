#include "userspace/identity/process_identity.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace passport::identity {
namespace {

nlohmann::json aws_of(const ProcessIdentity& id) {
    return nlohmann::json::parse("{" + id.aws_members + "}");
}

nlohmann::json metadata_of(const ProcessIdentity& id) {
    return nlohmann::json::parse("{\"pid\":1" + id.metadata_members + "}");
}

Ec2Identity ec2() {
    return {"i-1234567890abcdef0", "us-west-2b",   "m5.large",
            "ami-5fb8c835",        "123456789012", "us-west-2"};
}

TEST(ProcessIdentityTest, HostProcessOnEc2) {
    const Ec2Identity e = ec2();
    ProcessIdentity id = compose_identity({&e, nullptr, nullptr}, {"web", "program"});
    EXPECT_EQ(id.origin, "AWS::EC2::Instance");
    EXPECT_EQ(aws_of(id), nlohmann::json::parse(R"({"account_id":"123456789012","ec2":{
        "instance_id":"i-1234567890abcdef0","availability_zone":"us-west-2b",
        "instance_size":"m5.large","ami_id":"ami-5fb8c835"}})"));
    EXPECT_EQ(metadata_of(id)["name_rule"], "program");
    EXPECT_FALSE(metadata_of(id).contains("kubernetes"));
}

TEST(ProcessIdentityTest, PodOnEksIsMostSpecific) {
    const Ec2Identity e = ec2();
    PodIdentity p;
    p.cluster_name = "prod";
    p.pod = "cart-1";
    p.pod_uid = "6f1b0a52-3e8e-4c43-a3b4-1d6f7e9e2a10";
    p.namespace_name = "shop";
    p.container_id = std::string(64, 'a');
    p.container_name = "cart";
    p.image = "registry/cart:1.2";
    p.node_name = "ip-10-0-0-1";
    p.workload_kind = "Deployment";
    p.workload_name = "cart";
    p.source = PodSource::kApiServer;
    ProcessIdentity id = compose_identity({&e, nullptr, &p}, {"cart", "kubernetes.workload"});
    EXPECT_EQ(id.origin, "AWS::EKS::Container");
    const auto aws = aws_of(id);
    EXPECT_EQ(aws["eks"], nlohmann::json::parse(R"({"cluster_name":"prod","pod":"cart-1",
        "container_id":")" + std::string(64, 'a') +
                                                "\"}"));
    EXPECT_TRUE(aws.contains("ec2"));
    const auto k = metadata_of(id)["kubernetes"];
    EXPECT_EQ(k["namespace"], "shop");
    EXPECT_EQ(k["workload"]["kind"], "Deployment");
    EXPECT_EQ(k["workload"]["name"], "cart");
    EXPECT_EQ(k["node"], "ip-10-0-0-1");
    EXPECT_EQ(k["container"], "cart");
    EXPECT_EQ(k["image"], "registry/cart:1.2");
    EXPECT_EQ(k["source"], "api-server");
}

TEST(ProcessIdentityTest, NoClusterNameMeansNoKeyNotAGuess) {
    PodIdentity p;
    p.pod = "x";
    ProcessIdentity id = compose_identity({nullptr, nullptr, &p}, {"x", "kubernetes.pod"});
    EXPECT_FALSE(aws_of(id)["eks"].contains("cluster_name"));
    EXPECT_FALSE(aws_of(id).contains("account_id"));
}

TEST(ProcessIdentityTest, EcsTask) {
    EcsIdentity e{
        "web",
        "cd189a933e5849daa93386466019ab50-2495160603",
        "arn:aws:ecs:us-west-2:111122223333:container/1bdcca8b-f905-4ee6-885c-4064cb70f6e6",
        "arn:aws:ecs:us-west-2:111122223333:task/default/cd189a933e5849daa93386466019ab50",
        "curltest",
        "arn:aws:ecs:us-west-2:111122223333:cluster/default",
        "FARGATE",
        "us-west-2d",
        "111122223333"};
    ProcessIdentity id = compose_identity({nullptr, &e, nullptr}, {"web", "ecs.container"});
    EXPECT_EQ(id.origin, "AWS::ECS::Container");
    const auto aws = aws_of(id);
    EXPECT_EQ(aws["account_id"], "111122223333");
    EXPECT_EQ(aws["ecs"]["container"], "web");
    EXPECT_EQ(aws["ecs"]["launch_type"], "FARGATE");
    EXPECT_EQ(aws["ecs"]["task_family"], "curltest");
    EXPECT_EQ(aws["ecs"].size(), 8U);
}

TEST(ProcessIdentityTest, NothingKnown) {
    ProcessIdentity id = compose_identity({}, {"app.py", "program"});
    EXPECT_EQ(id.origin, "");
    EXPECT_EQ(id.aws_members, "");
    EXPECT_EQ(metadata_of(id)["name_rule"], "program");
}

TEST(ProcessIdentityTest, HostileValuesStayJsonAndCapped) {
    PodIdentity p;
    p.pod = std::string("a\"b\\c\x01") + std::string(400, 'x');
    ProcessIdentity id = compose_identity({nullptr, nullptr, &p}, {"x", "kubernetes.pod"});
    const auto pod = aws_of(id)["eks"]["pod"].get<std::string>();
    EXPECT_EQ(pod.substr(0, 6), std::string("a\"b\\c\x01"));
    EXPECT_LE(pod.size(), 250U);
}

}  // namespace
}  // namespace passport::identity
