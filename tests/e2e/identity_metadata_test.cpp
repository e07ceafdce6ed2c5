// EC2 (IMDSv2) and ECS task-metadata lookups (agent/identity/imds.cpp, ecs.cpp) against the
// stand-in metadata server (tests/support/aws/fake_metadata_server.py, answers from the AWS docs'
// samples in tests/fixtures/aws/) in every mode it has: the right values when it behaves, the
// token header on every IMDS request, IMDSv1 only when allowed, an error (never a crash, never
// a hang) for each way it misbehaves, and why_not off EC2 (nothing listening; a silent network).
// Last, the real X-Ray SDK for Node's EC2 plugin, which only talks to 169.254.169.254:80, reads
// the same stand-in inside a network namespace: its `ec2` block and ours agree field by field.
//
// No BPF. No timed assertions: each lookup runs on a thread the test waits for (kGuard, far above
// any budget) only to fail instead of hanging if a lookup never returns.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/identity/ecs.hpp"
#include "agent/identity/imds.hpp"
#include "tests/support/aws/fake_metadata.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/net.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"
#include "userspace/common/result.hpp"
#include "userspace/identity/process_identity.hpp"

namespace passport::testing {
namespace {

using identity::Ec2Facts;
using identity::EcsIdentity;
using identity::ImdsOptions;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kGuard = std::chrono::seconds(60);
const std::filesystem::path kSource = PASSPORT_SOURCE_DIR;

json fixture(const std::string& name) {
    std::ifstream in(kSource / "tests" / "fixtures" / "aws" / name);
    return json::parse(in);
}

// Runs `fn` on its own thread (inside network namespace `netns` when given) and waits at most
// kGuard for it; nullopt when it did not return (the thread is then left behind, detached).
template <typename R>
std::optional<R> returned(std::function<R()> fn, const std::string& netns = "") {
    auto done = std::make_shared<std::promise<R>>();
    auto result = done->get_future();
    std::thread([done, fn = std::move(fn), netns] {
        if (!netns.empty()) {
            const int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) std::abort();
            ::close(fd);
        }
        done->set_value(fn());
    }).detach();
    if (result.wait_for(kGuard) != std::future_status::ready) return std::nullopt;
    return result.get();
}

std::optional<Ec2Facts> ec2_facts(const ImdsOptions& opt, const std::string& netns = "") {
    return returned<Ec2Facts>([opt] { return identity::fetch_ec2_facts(opt); }, netns);
}

ImdsOptions options(const std::string& endpoint, bool allow_v1 = false,
                    std::chrono::milliseconds budget = 2000ms) {
    ImdsOptions opt;
    opt.endpoint = endpoint;
    opt.allow_v1 = allow_v1;
    opt.budget = budget;
    return opt;
}

void expect_fixture_instance(const identity::Ec2Identity& ec2) {
    const json doc = fixture("identity-document.json");
    EXPECT_EQ(ec2.instance_id, doc["instanceId"]);
    EXPECT_EQ(ec2.availability_zone, doc["availabilityZone"]);
    EXPECT_EQ(ec2.instance_size, doc["instanceType"]);
    EXPECT_EQ(ec2.ami_id, doc["imageId"]);
    EXPECT_EQ(ec2.account_id, doc["accountId"]);
    EXPECT_EQ(ec2.region, doc["region"]);
}

TEST(ImdsLookup, Imdsv2GivesTheDocumentAndTheEksClusterTag) {
    FakeMetadata fake("normal");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    auto facts = ec2_facts(options(fake.url()));
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    ASSERT_TRUE(facts->ec2) << facts->why_not;
    expect_fixture_instance(*facts->ec2);
    EXPECT_EQ(facts->cluster_name, fixture("instance-tags.json")["eks:cluster-name"]);
    EXPECT_FALSE(facts->used_v1);
    EXPECT_EQ(facts->why_not, "");

    // PUT the token first, then every GET carries it.
    const auto reqs = fake.requests();
    ASSERT_GE(reqs.size(), 3U);
    EXPECT_EQ(reqs[0]["method"], "PUT");
    EXPECT_EQ(reqs[0]["path"], "/latest/api/token");
    EXPECT_TRUE(reqs[0]["ttl"].is_string());
    for (size_t i = 1; i < reqs.size(); ++i) {
        EXPECT_EQ(reqs[i]["method"], "GET") << reqs[i];
        EXPECT_TRUE(reqs[i]["token"].is_string()) << "GET without the IMDSv2 token: " << reqs[i];
    }
    EXPECT_EQ(reqs[1]["path"], "/latest/dynamic/instance-identity/document");
}

TEST(ImdsLookup, Imdsv1OnlyIsRefusedUnlessAllowed) {
    FakeMetadata fake("v1-only");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    auto facts = ec2_facts(options(fake.url()));
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    EXPECT_FALSE(facts->ec2);
    EXPECT_NE(facts->why_not.find("IMDSv1 fallback not allowed"), std::string::npos)
        << facts->why_not;
    for (const json& r : fake.requests()) EXPECT_EQ(r["method"], "PUT") << "an IMDSv1 GET: " << r;
}

TEST(ImdsLookup, Imdsv1FallbackWhenAllowed) {
    FakeMetadata fake("v1-only");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    auto facts = ec2_facts(options(fake.url(), /*allow_v1=*/true));
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    ASSERT_TRUE(facts->ec2) << facts->why_not;
    expect_fixture_instance(*facts->ec2);
    EXPECT_TRUE(facts->used_v1);
    EXPECT_EQ(facts->cluster_name, "prod-cluster");
    const auto reqs = fake.requests();
    ASSERT_GE(reqs.size(), 2U);
    EXPECT_EQ(reqs[0]["method"], "PUT");
    for (size_t i = 1; i < reqs.size(); ++i) EXPECT_TRUE(reqs[i]["token"].is_null()) << reqs[i];
}

TEST(ImdsLookup, AllowV1DoesNotDowngradeAWorkingImdsv2) {
    FakeMetadata fake("normal");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    auto facts = ec2_facts(options(fake.url(), /*allow_v1=*/true));
    ASSERT_TRUE(facts && facts->ec2) << (facts ? facts->why_not : "did not return");
    EXPECT_FALSE(facts->used_v1);
}

struct Broken {
    std::string mode;
    std::string error;  // a part of why_not when the document request misbehaves
};

const std::vector<Broken> kBroken = {
    {"hang", "imeout"},      {"slowloris", "imeout"},          {"404", "HTTP 404"},
    {"garbage", "not JSON"}, {"huge", "response larger than"}, {"wrong-types", "not a string"}};

// Every request misbehaves (the token PUT first), then only the document request.
TEST(ImdsLookup, EveryBrokenModeIsAnErrorWithinTheBudget) {
    for (const Broken& b : kBroken) {
        for (bool only_document : {false, true}) {
            SCOPED_TRACE(b.mode + (only_document ? " (document only)" : " (every request)"));
            FakeMetadata fake(b.mode, only_document ? std::vector<std::string>{"/latest/dynamic"}
                                                    : std::vector<std::string>{});
            ASSERT_TRUE(fake.ok()) << fake.describe();
            auto facts = ec2_facts(options(fake.url(), /*allow_v1=*/true, 1000ms));
            ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
            EXPECT_FALSE(facts->ec2);
            EXPECT_FALSE(facts->why_not.empty());
            if (only_document) {
                EXPECT_NE(facts->why_not.find("identity document"), std::string::npos)
                    << facts->why_not;
                EXPECT_NE(facts->why_not.find(b.error), std::string::npos) << facts->why_not;
            }
        }
    }
}

TEST(ImdsLookup, BrokenTagsLeaveTheInstanceWithoutACluster) {
    for (const Broken& b : kBroken) {
        if (b.mode == "wrong-types")
            continue;  // tags are text: there are no JSON types to get wrong
        SCOPED_TRACE(b.mode);
        FakeMetadata fake(b.mode, {"/latest/meta-data/tags"});
        ASSERT_TRUE(fake.ok()) << fake.describe();
        auto facts = ec2_facts(options(fake.url(), false, 1000ms));
        ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
        ASSERT_TRUE(facts->ec2) << facts->why_not;
        expect_fixture_instance(*facts->ec2);
        EXPECT_EQ(facts->cluster_name, "");
    }
}

TEST(ImdsLookup, DisabledMakesNoRequest) {
    FakeMetadata fake("normal");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    std::map<std::string, const char*> env = {{"AWS_EC2_METADATA_DISABLED", "TRUE"}};
    ImdsOptions opt = identity::imds_options_from_env(options(fake.url()), [&](const char* n) {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second;
    });
    auto facts = ec2_facts(opt);
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    EXPECT_FALSE(facts->ec2);
    EXPECT_EQ(facts->why_not, "IMDS disabled");
    EXPECT_TRUE(fake.requests().empty());
}

TEST(ImdsLookup, EnvironmentEndpointIsUsed) {
    FakeMetadata fake("normal");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    const std::string url = fake.url() + "/";
    std::map<std::string, const char*> env = {{"AWS_EC2_METADATA_SERVICE_ENDPOINT", url.c_str()},
                                              {"AWS_EC2_METADATA_DISABLED", "false"}};
    ImdsOptions opt = identity::imds_options_from_env(ImdsOptions{}, [&](const char* n) {
        auto it = env.find(n);
        return it == env.end() ? nullptr : it->second;
    });
    EXPECT_FALSE(opt.disabled);
    auto facts = ec2_facts(opt);
    ASSERT_TRUE(facts && facts->ec2) << (facts ? facts->why_not : "did not return");
    expect_fixture_instance(*facts->ec2);
}

TEST(ImdsLookup, NothingListeningIsOffEc2) {
    const int port = free_tcp_port();
    auto facts = ec2_facts(options("http://127.0.0.1:" + std::to_string(port)));
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    EXPECT_FALSE(facts->ec2);
    EXPECT_EQ(facts->why_not.rfind("no IMDS at http://127.0.0.1:", 0), 0U) << facts->why_not;
}

// A namespace where 169.254.0.0/16 is routed into a veth pair whose other end drops every frame
// (addressed to a MAC it does not have): a connection neither succeeds nor is refused, what a
// host off EC2 with a link-local route sees.
TEST(ImdsLookup, SilentNetworkIsOffEc2WithTheDefaultEndpoint) {
    if (auto why = netns_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    NetNs ns("imdsbh");
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"link", "add", "bh0", "type", "veth", "peer", "name", "bh1"},
             {"link", "set", "bh0", "up"},
             {"link", "set", "bh1", "up"},
             {"addr", "add", "192.0.2.1/24", "dev", "bh0"},
             {"route", "add", "169.254.0.0/16", "dev", "bh0"},
             {"neigh", "add", "169.254.169.254", "lladdr", "02:00:00:00:00:01", "dev", "bh0", "nud",
              "permanent"}}) {
        std::vector<std::string> argv = {"ip", "-n", ns.name()};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = run_command(ChildOptions{argv, {}, {}, {}, true}, deadline_in(10s));
        ASSERT_TRUE(r.status.success()) << r.err;
    }
    auto facts = ec2_facts(ImdsOptions{}, ns.name());
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    EXPECT_FALSE(facts->ec2);
    EXPECT_EQ(facts->why_not.rfind("no IMDS at http://169.254.169.254: ", 0), 0U) << facts->why_not;
    EXPECT_NE(facts->why_not.find("imeout"), std::string::npos) << facts->why_not;
}

std::optional<Result<EcsIdentity>> ecs_identity(const std::string& uri,
                                                std::chrono::milliseconds budget = 2000ms) {
    return returned<Result<EcsIdentity>>(
        [uri, budget] { return identity::fetch_ecs_identity(uri, budget); });
}

TEST(EcsLookup, TaskMetadataV4GivesEveryField) {
    FakeMetadata fake("normal");
    ASSERT_TRUE(fake.ok()) << fake.describe();
    auto id = ecs_identity(fake.url() + "/v4/ea32192c8553-0123456789");
    ASSERT_TRUE(id) << "fetch_ecs_identity did not return";
    ASSERT_TRUE(*id) << id->error();
    const json c = fixture("ecs-container.json");
    const json t = fixture("ecs-task.json");
    const EcsIdentity& e = id->value();
    EXPECT_EQ(e.container, c["Name"]);
    EXPECT_EQ(e.container_id, c["DockerId"]);
    EXPECT_EQ(e.container_arn, c["ContainerARN"]);
    EXPECT_EQ(e.task_arn, t["TaskARN"]);
    EXPECT_EQ(e.task_family, t["Family"]);
    EXPECT_EQ(e.cluster_arn, t["Cluster"]);
    EXPECT_EQ(e.launch_type, t["LaunchType"]);
    EXPECT_EQ(e.availability_zone, t["AvailabilityZone"]);
    EXPECT_EQ(e.account_id, "111122223333");
    const auto reqs = fake.requests();
    ASSERT_EQ(reqs.size(), 2U);
    EXPECT_EQ(reqs[0]["path"], "/v4/ea32192c8553-0123456789");
    EXPECT_EQ(reqs[1]["path"], "/v4/ea32192c8553-0123456789/task");
}

TEST(EcsLookup, EveryBrokenModeIsAnError) {
    for (const Broken& b : kBroken) {
        for (const char* only : {"/v4/", "/v4/x/task"}) {
            SCOPED_TRACE(b.mode + " on " + only);
            FakeMetadata fake(b.mode, {only});
            ASSERT_TRUE(fake.ok()) << fake.describe();
            auto id = ecs_identity(fake.url() + "/v4/x", 1000ms);
            ASSERT_TRUE(id) << "fetch_ecs_identity did not return";
            ASSERT_FALSE(*id);
            EXPECT_NE(id->error().find(b.error), std::string::npos) << id->error();
        }
    }
}

TEST(EcsLookup, UnusableUrisAreErrors) {
    const int port = free_tcp_port();
    for (const std::string& uri :
         {"http://127.0.0.1:" + std::to_string(port) + "/v4/x", std::string("file:///etc/passwd"),
          std::string("http://127.0.0.1/v4/x\r\nHost: y"), std::string(3000, 'h'),
          std::string("")}) {
        auto id = ecs_identity(uri);
        ASSERT_TRUE(id) << "fetch_ecs_identity did not return";
        EXPECT_FALSE(*id) << uri;
    }
}

// The X-Ray SDK for Node's EC2 plugin and fetch_ec2_facts, both at 169.254.169.254:80 inside a
// namespace where the stand-in listens on that address.
TEST(ImdsLookup, SameEc2BlockAsTheXRaySdkForNode) {
    if (auto why = netns_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
    const std::string node = find_executable("node");
    const auto modules = kSource / "tests" / "fixtures" / "npm" / "node_modules";
    if (node.empty()) GTEST_SKIP() << "node is not installed";
    if (!std::filesystem::exists(modules / "aws-xray-sdk-core")) {
        GTEST_SKIP() << "the X-Ray SDK npm packages are not installed in " << modules
                     << " (.ci/install-npm.sh)";
    }
    NetNs ns("imdssdk");
    auto added = run_command(
        ChildOptions{{"ip", "-n", ns.name(), "addr", "add", "169.254.169.254/32", "dev", "lo"},
                     {},
                     {},
                     {},
                     true},
        deadline_in(10s));
    ASSERT_TRUE(added.status.success()) << added.err;
    FakeMetadata fake("normal", {}, &ns, "169.254.169.254", 80);
    ASSERT_TRUE(fake.ok()) << fake.describe();

    const std::string script =
        "const p = require('aws-xray-sdk-core').plugins.EC2Plugin; p.getData((m) => "
        "console.log('EC2PLUGIN ' + JSON.stringify(m === undefined ? null : "
        "Object.assign({origin: p.originName}, m))));";
    auto sdk = run_command(
        ChildOptions{
            ns.wrap({node, "-e", script}), {{"NODE_PATH", modules.string()}}, {}, {}, true},
        deadline_in(30s));
    ASSERT_TRUE(sdk.status.success()) << sdk.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(sdk.out, m, std::regex("EC2PLUGIN (.*)"))) << sdk.out << sdk.err;
    const json plugin = json::parse(m[1].str());
    ASSERT_TRUE(plugin.contains("ec2")) << plugin;
    const json& want = plugin["ec2"];

    auto facts = ec2_facts(ImdsOptions{}, ns.name());
    ASSERT_TRUE(facts) << "fetch_ec2_facts did not return";
    ASSERT_TRUE(facts->ec2) << facts->why_not;
    EXPECT_FALSE(facts->used_v1);
    // The block exactly as Passport writes it into a segment's "aws" object.
    const identity::ProcessIdentity id =
        identity::compose_identity({&*facts->ec2, nullptr, nullptr}, {"x", "program"});
    const json ours = json::parse("{" + id.aws_members + "}")["ec2"];
    EXPECT_EQ(ours, want) << "ours " << ours << "\nSDK  " << want;
    EXPECT_EQ(id.origin, plugin["origin"]);
    EXPECT_FALSE(facts->ec2->instance_id.empty());

    // Both asked for an IMDSv2 token before the document.
    int puts = 0;
    for (const json& r : fake.requests()) puts += r["method"] == "PUT" ? 1 : 0;
    EXPECT_EQ(puts, 2);
}

}  // namespace
}  // namespace passport::testing
