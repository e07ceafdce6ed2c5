// The EC2 and ECS metadata parsers (userspace/identity/aws_metadata.cpp) on the sample documents
// of the AWS docs (tests/fixtures/aws/, sources in its README) and on broken variants: wrong
// types, missing fields, huge strings, non-objects. Every bad input is an error naming the field.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "userspace/identity/aws_metadata.hpp"

namespace passport::identity {
namespace {

using nlohmann::json;

std::string fixture(const std::string& name) {
    const auto path =
        std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "fixtures" / "aws" / name;
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

json fixture_json(const std::string& name) { return json::parse(fixture(name)); }

TEST(Ec2IdentityDocument, DocSampleGivesEveryField) {
    auto id = ec2_from_identity_document(fixture("identity-document.json"));
    ASSERT_TRUE(id) << id.error();
    EXPECT_EQ(id->instance_id, "i-1234567890abcdef0");
    EXPECT_EQ(id->availability_zone, "us-west-2b");
    EXPECT_EQ(id->instance_size, "t2.micro");
    EXPECT_EQ(id->ami_id, "ami-5fb8c835");
    EXPECT_EQ(id->account_id, "123456789012");
    EXPECT_EQ(id->region, "us-west-2");
}

TEST(Ec2IdentityDocument, AccountAndRegionAreOptional) {
    json doc = fixture_json("identity-document.json");
    doc.erase("accountId");
    doc.erase("region");
    auto id = ec2_from_identity_document(doc.dump());
    ASSERT_TRUE(id) << id.error();
    EXPECT_EQ(id->account_id, "");
    EXPECT_EQ(id->region, "");
    EXPECT_EQ(id->instance_id, "i-1234567890abcdef0");
}

TEST(Ec2IdentityDocument, EachRequiredFieldMissingIsNamed) {
    for (const char* key : {"instanceId", "availabilityZone", "instanceType", "imageId"}) {
        json doc = fixture_json("identity-document.json");
        doc.erase(key);
        auto id = ec2_from_identity_document(doc.dump());
        ASSERT_FALSE(id) << key;
        EXPECT_NE(id.error().find(key), std::string::npos) << id.error();
        EXPECT_NE(id.error().find("missing"), std::string::npos) << id.error();
    }
}

TEST(Ec2IdentityDocument, WrongTypesAreNamed) {
    for (const json& bad :
         {json(12345), json::array({"x"}), json::object({{"a", 1}}), json(true)}) {
        for (const char* key :
             {"instanceId", "availabilityZone", "instanceType", "imageId", "accountId", "region"}) {
            json doc = fixture_json("identity-document.json");
            doc[key] = bad;
            auto id = ec2_from_identity_document(doc.dump());
            ASSERT_FALSE(id) << key << " = " << bad.dump();
            EXPECT_NE(id.error().find(key), std::string::npos) << id.error();
            EXPECT_NE(id.error().find("not a string"), std::string::npos) << id.error();
        }
    }
}

TEST(Ec2IdentityDocument, OverlongAndControlCharactersRefused) {
    json doc = fixture_json("identity-document.json");
    doc["instanceId"] = std::string(kMaxFieldBytes + 1, 'i');
    auto id = ec2_from_identity_document(doc.dump());
    ASSERT_FALSE(id);
    EXPECT_NE(id.error().find("instanceId: longer than 256 bytes"), std::string::npos)
        << id.error();

    doc["instanceId"] = std::string(kMaxFieldBytes, 'i');
    EXPECT_TRUE(ec2_from_identity_document(doc.dump()));

    doc["instanceId"] = "i-123\nX-Injected: 1";
    id = ec2_from_identity_document(doc.dump());
    ASSERT_FALSE(id);
    EXPECT_NE(id.error().find("control characters"), std::string::npos) << id.error();
}

TEST(Ec2IdentityDocument, NotJsonOrNotAnObject) {
    for (const std::string& text :
         {std::string(""), std::string("<html>"), std::string("\x00\xff", 2), std::string("[1,2]"),
          std::string("\"i-123\""), std::string("null"), std::string("{\"instanceId\":")}) {
        auto id = ec2_from_identity_document(text);
        ASSERT_FALSE(id) << text;
        EXPECT_NE(id.error().find("instance identity document"), std::string::npos) << id.error();
    }
}

TEST(Ec2IdentityDocument, HugeDocumentRefusedBeforeParsing) {
    const std::string huge = "{\"instanceId\":\"" + std::string(size_t{10} << 20, 'x') + "\"}";
    auto id = ec2_from_identity_document(huge);
    ASSERT_FALSE(id);
    EXPECT_NE(id.error().find("larger than"), std::string::npos) << id.error();
}

TEST(Ec2IdentityDocument, DeepNestingIsAnErrorNotACrash) {
    json doc = fixture_json("identity-document.json");
    std::string text = doc.dump();
    text.pop_back();
    text += ",\"deep\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
    auto id = ec2_from_identity_document(text);
    EXPECT_TRUE(id) << id.error();  // unknown members are ignored, however deep
}

TEST(EcsTaskMetadata, DocSamplesGiveEveryField) {
    auto id = ecs_from_task_metadata(fixture("ecs-container.json"), fixture("ecs-task.json"));
    ASSERT_TRUE(id) << id.error();
    EXPECT_EQ(id->container, "curl");
    EXPECT_EQ(id->container_id, "ea32192c8553fbff06c9340478a2ff089b2bb5646fb718b4ee206641c9086d66");
    EXPECT_EQ(id->container_arn,
              "arn:aws:ecs:us-west-2:111122223333:container/0206b271-b33f-47ab-86c6-a0ba208a70a9");
    EXPECT_EQ(id->task_arn,
              "arn:aws:ecs:us-west-2:111122223333:task/default/8f03e41243824aea923aca126495f665");
    EXPECT_EQ(id->task_family, "curltest");
    EXPECT_EQ(id->cluster_arn, "arn:aws:ecs:us-west-2:111122223333:cluster/default");
    EXPECT_EQ(id->launch_type, "EC2");
    EXPECT_EQ(id->availability_zone, "us-west-2d");
    EXPECT_EQ(id->account_id, "111122223333");
}

TEST(EcsTaskMetadata, OlderAgentsWithoutOptionalFields) {
    json container = fixture_json("ecs-container.json");
    json task = fixture_json("ecs-task.json");
    container.erase("ContainerARN");
    task.erase("LaunchType");
    task.erase("AvailabilityZone");
    task["Cluster"] = "default";  // a name, not an ARN, on older agents
    auto id = ecs_from_task_metadata(container.dump(), task.dump());
    ASSERT_TRUE(id) << id.error();
    EXPECT_EQ(id->container_arn, "");
    EXPECT_EQ(id->launch_type, "");
    EXPECT_EQ(id->availability_zone, "");
    EXPECT_EQ(id->cluster_arn, "default");
}

TEST(EcsTaskMetadata, MissingAndWrongTypedFieldsAreNamed) {
    const std::string task_text = fixture("ecs-task.json");
    const std::string container_text = fixture("ecs-container.json");
    for (const char* key : {"Name", "DockerId"}) {
        json c = json::parse(container_text);
        c.erase(key);
        auto id = ecs_from_task_metadata(c.dump(), task_text);
        ASSERT_FALSE(id) << key;
        EXPECT_NE(id.error().find(std::string("container metadata field ") + key),
                  std::string::npos)
            << id.error();
        c[key] = 17;
        id = ecs_from_task_metadata(c.dump(), task_text);
        ASSERT_FALSE(id) << key;
        EXPECT_NE(id.error().find("not a string (number)"), std::string::npos) << id.error();
    }
    for (const char* key : {"TaskARN", "Family", "Cluster"}) {
        json t = json::parse(task_text);
        t.erase(key);
        auto id = ecs_from_task_metadata(container_text, t.dump());
        ASSERT_FALSE(id) << key;
        EXPECT_NE(id.error().find(std::string("task metadata field ") + key), std::string::npos)
            << id.error();
    }
    for (const char* key : {"LaunchType", "AvailabilityZone", "ContainerARN"}) {
        json t = json::parse(task_text);
        json c = json::parse(container_text);
        (std::string(key) == "ContainerARN" ? c : t)[key] = json::array();
        auto id = ecs_from_task_metadata(c.dump(), t.dump());
        ASSERT_FALSE(id) << key;
        EXPECT_NE(id.error().find(key), std::string::npos) << id.error();
    }
}

TEST(EcsTaskMetadata, NonObjectsAreErrors) {
    auto id = ecs_from_task_metadata("[]", fixture("ecs-task.json"));
    ASSERT_FALSE(id);
    EXPECT_NE(id.error().find("container metadata: not a JSON object"), std::string::npos);
    id = ecs_from_task_metadata(fixture("ecs-container.json"), "garbage");
    ASSERT_FALSE(id);
    EXPECT_NE(id.error().find("task metadata: not JSON"), std::string::npos);
}

TEST(EcsTaskMetadata, TaskArnMustCarryAnAccount) {
    json t = fixture_json("ecs-task.json");
    for (const char* arn : {"not-an-arn", "arn:aws:ecs:us-west-2:1234:task/x",
                            "arn:aws:s3:us-west-2:111122223333:task/x",
                            "arn:aws:ecs:us-west-2:111122223333:container/x", "arn:aws:ecs"}) {
        t["TaskARN"] = arn;
        auto id = ecs_from_task_metadata(fixture("ecs-container.json"), t.dump());
        ASSERT_FALSE(id) << arn;
        EXPECT_NE(id.error().find("TaskARN"), std::string::npos) << id.error();
    }
    auto acct = account_from_task_arn("arn:aws-cn:ecs:cn-north-1:210987654321:task/abc");
    ASSERT_TRUE(acct) << acct.error();
    EXPECT_EQ(*acct, "210987654321");
}

TEST(InstanceTags, EksKeyAndKubernetesClusterKey) {
    auto keys = cluster_tag_keys("Name\neks:cluster-name\neks:nodegroup-name");
    EXPECT_TRUE(keys.eks_tag_key);
    EXPECT_EQ(keys.cluster_from_key, "");
    keys = cluster_tag_keys("Name\r\nkubernetes.io/cluster/blue\r\n");
    EXPECT_FALSE(keys.eks_tag_key);
    EXPECT_EQ(keys.cluster_from_key, "blue");
    keys = cluster_tag_keys("Name\nkubernetes.io/cluster/\neks:cluster-names");
    EXPECT_FALSE(keys.eks_tag_key);
    EXPECT_EQ(keys.cluster_from_key, "");
    keys = cluster_tag_keys("");
    EXPECT_FALSE(keys.eks_tag_key);
    EXPECT_EQ(keys.cluster_from_key, "");
}

TEST(InstanceTags, ValueTrimmedAndBounded) {
    auto v = tag_value("prod-cluster\n");
    ASSERT_TRUE(v) << v.error();
    EXPECT_EQ(*v, "prod-cluster");
    EXPECT_FALSE(tag_value(""));
    EXPECT_FALSE(tag_value("\n"));
    EXPECT_FALSE(tag_value(std::string(kMaxFieldBytes + 1, 'c')));
    EXPECT_FALSE(tag_value(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace passport::identity
