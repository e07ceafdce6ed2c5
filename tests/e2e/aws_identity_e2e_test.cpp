// aws.ec2 and aws.ecs in the segments of real traced servers, from the stand-in metadata server
// (tests/support/aws/fake_metadata.hpp, the AWS docs' sample documents):
//  - a host process on "EC2" (AWS_EC2_METADATA_SERVICE_ENDPOINT points the agent at the
//    stand-in, as it would the AWS SDKs): origin AWS::EC2::Instance, aws.ec2 with the SDK
//    plugins' field names and the identity document's values, aws.account_id;
//  - a process whose environment names an ECS task metadata endpoint: origin
//    AWS::ECS::Container, aws.ecs from the container and task documents, named after the
//    container;
//  - endpoints that never answer, or a URI naming a host the agent does not fetch from: the
//    documents still arrive, without the block, and a counter says why.
#include "tests/e2e/e2e_common.hpp"
#include "tests/support/aws/fake_metadata.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class AwsIdentityE2E : public E2eTest {
  protected:
    std::unique_ptr<TestServer> server(std::map<std::string, std::string> env = {}) {
        std::filesystem::create_directories(dir().path() / "www");
        return start_python_http_server(dir().path() / "www", server_env(std::move(env)));
    }

    // Requests `/` of `s` until one of its documents satisfies `want`; that document, or null.
    json doc_where(TestServer& s, const std::function<bool(const json&)>& want) {
        json found;
        wait_until(
            [&] {
                EXPECT_EQ(http_get(s.url("/")).status, 200);
                for (const auto& d : with_url_containing(collector().documents(),
                                                         ":" + std::to_string(s.port()) + "/"))
                    if (want(d)) found = d;
                return !found.is_null();
            },
            deadline_in(kDocumentTimeout), 50ms);
        return found;
    }
};

TEST_F(AwsIdentityE2E, HostProcessOnEc2) {
    FakeMetadata imds("normal");
    ASSERT_TRUE(imds.ok()) << imds.describe();
    auto web = server();
    AgentOptions options;
    options.env = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url()}};
    AgentRunner& agent = start_agent({"--pid", std::to_string(web->pid())}, options);
    ASSERT_TRUE(wait_until(
        [&] { return agent.stderr_text().find("identity: EC2 instance") != std::string::npos; },
        deadline_in(10s)))
        << agent.stderr_text();

    const json d = doc_where(*web, [](const json& d) { return d.contains("origin"); });
    ASSERT_FALSE(d.is_null()) << agent_diagnostics();
    const json iid = aws_fixture("identity-document.json");
    EXPECT_EQ(str(d, "origin"), "AWS::EC2::Instance");
    // The names the X-Ray SDKs' EC2 plugins write (aws-xray-sdk-core's ec2_plugin.js).
    EXPECT_EQ(d["aws"]["ec2"], json({{"instance_id", iid["instanceId"]},
                                     {"availability_zone", iid["availabilityZone"]},
                                     {"instance_size", iid["instanceType"]},
                                     {"ami_id", iid["imageId"]}}));
    EXPECT_EQ(d["aws"]["account_id"], iid["accountId"]);
    EXPECT_FALSE(d["aws"].contains("eks"));
    EXPECT_EQ(d["metadata"]["passport"]["name_rule"], "program");
    bool token_on_every_get = true;
    for (const auto& r : imds.requests())
        if (r["method"] == "GET") token_on_every_get = token_on_every_get && r["token"].is_string();
    EXPECT_TRUE(token_on_every_get) << "an IMDS GET without the IMDSv2 token";
}

TEST_F(AwsIdentityE2E, EcsTaskProcessAndEndpointsThatFail) {
    FakeMetadata ecs("normal");
    FakeMetadata silent("hang");
    ASSERT_TRUE(ecs.ok() && silent.ok()) << ecs.describe() << silent.describe();
    auto task = server({{"ECS_CONTAINER_METADATA_URI_V4", ecs.url() + "/v4/ea32192c8553"}});
    auto stuck = server({{"ECS_CONTAINER_METADATA_URI_V4", silent.url() + "/v4/stuck"}});
    auto elsewhere = server({{"ECS_CONTAINER_METADATA_URI_V4", "http://192.0.2.10/v4/x"}});
    start_agent({"--pid", std::to_string(task->pid()), "--pid", std::to_string(stuck->pid()),
                 "--pid", std::to_string(elsewhere->pid()), "--imds", "off", "--ecs-metadata-host",
                 "127.0.0.1"});

    const json d = doc_where(*task, [](const json& d) { return d.contains("origin"); });
    ASSERT_FALSE(d.is_null()) << agent_diagnostics();
    const json c = aws_fixture("ecs-container.json");
    const json t = aws_fixture("ecs-task.json");
    EXPECT_EQ(str(d, "origin"), "AWS::ECS::Container");
    EXPECT_EQ(str(d, "name"), c["Name"]);
    EXPECT_EQ(d["metadata"]["passport"]["name_rule"], "ecs.container");
    EXPECT_EQ(d["aws"]["ecs"], json({{"container", c["Name"]},
                                     {"container_id", c["DockerId"]},
                                     {"container_arn", c["ContainerARN"]},
                                     {"task_arn", t["TaskARN"]},
                                     {"task_family", t["Family"]},
                                     {"cluster_arn", t["Cluster"]},
                                     {"launch_type", t["LaunchType"]},
                                     {"availability_zone", t["AvailabilityZone"]}}));
    EXPECT_EQ(d["aws"]["account_id"], "111122223333");

    // The endpoint that never answers and the refused one delay and drop nothing.
    const std::string tag = unique_tag();
    for (auto* s : {stuck.get(), elsewhere.get()})
        ASSERT_EQ(http_get(s->url("/" + tag)).status, 404);
    ASSERT_TRUE(wait_for_url(std::to_string(stuck->port()) + "/" + tag)) << agent_diagnostics();
    ASSERT_TRUE(wait_for_url(std::to_string(elsewhere->port()) + "/" + tag)) << agent_diagnostics();
    AgentExit exit = stop_agent_and_sync();
    for (auto* s : {stuck.get(), elsewhere.get()}) {
        for (const auto& doc :
             with_url_containing(collector().documents(), ":" + std::to_string(s->port()) + "/")) {
            EXPECT_FALSE(doc.contains("origin")) << doc.dump();
            EXPECT_FALSE(doc["aws"].contains("ecs")) << doc.dump();
        }
    }
    EXPECT_GE(
        exit.counter("identity.missing.ecs_pending") + exit.counter("identity.missing.ecs_failed"),
        1u)
        << exit.counters_text();
    EXPECT_GE(exit.counter("identity.missing.ecs_refused"), 1u) << exit.counters_text();
}

}  // namespace
}  // namespace passport::testing::e2e
