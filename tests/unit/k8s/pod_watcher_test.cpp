// The API client against the stand-in API server (tests/support/k8s/fake_api_server.py, which
// answers as https://kubernetes.io/docs/reference/using-api/api-concepts/ describes): LIST then
// WATCH of this node's pods over HTTPS with the service-account token and CA, events applied as
// they come, 410 Gone followed by a new LIST, and refusals (bad token, unknown CA) reported.
#include "agent/k8s_api.hpp"

#include <gtest/gtest.h>

#include "tests/support/k8s/fake_api.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/wait.hpp"

namespace passport::agent {
namespace {

using passport::testing::FakeApiServer;
using passport::testing::make_pod;
using passport::testing::TempDir;

constexpr const char* kUidA = "00000000-0000-4000-8000-00000000000a";
constexpr const char* kUidB = "00000000-0000-4000-8000-00000000000b";
constexpr const char* kUidC = "00000000-0000-4000-8000-00000000000c";

// Polls `pred` until it holds or 20 s pass (the watcher works on its own thread).
template <typename Pred>
bool eventually(Pred pred) {
    auto deadline = passport::testing::deadline_in(std::chrono::seconds(20));
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

class PodWatcherTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::make_unique<TempDir>("passport-k8s-api-");
        server_ = std::make_unique<FakeApiServer>(
            dir_->path(), nlohmann::json::array({make_pod(kUidA, "web-0", "shop", "node-a"),
                                                 make_pod(kUidB, "db-0", "data", "node-b")}));
        ASSERT_TRUE(server_->ok()) << server_->describe();
    }

    ApiEndpoint endpoint(const std::string& node = "node-a") {
        auto ep = resolve_api_endpoint(server_->url(), nullptr, nullptr, server_->sa_dir().string(),
                                       node);
        EXPECT_TRUE(ep) << ep.error();
        return *ep;
    }

    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<FakeApiServer> server_;
};

TEST_F(PodWatcherTest, ListsThenFollowsThisNodesPods) {
    k8s::PodCache cache;
    PodWatcher watcher(endpoint(), cache);
    watcher.start();
    ASSERT_TRUE(watcher.wait_first_attempt(std::chrono::seconds(20)));
    ASSERT_TRUE(cache.status().synced) << cache.status().last_error;
    auto pods = cache.snapshot();
    ASSERT_EQ(pods->size(), 1u) << "only spec.nodeName=node-a";
    EXPECT_EQ(pods->at(kUidA).namespace_name, "shop");

    ASSERT_TRUE(server_->put_pod(make_pod(kUidC, "api-0", "shop", "node-a", {{"app", "api"}})));
    ASSERT_TRUE(eventually([&] { return cache.snapshot()->count(kUidC) == 1; }));
    EXPECT_EQ(cache.snapshot()->at(kUidC).labels.at("app"), "api");

    ASSERT_TRUE(server_->put_pod(make_pod(kUidC, "api-0", "shop", "node-a", {{"app", "api2"}})));
    ASSERT_TRUE(eventually([&] { return cache.snapshot()->at(kUidC).labels.at("app") == "api2"; }));

    ASSERT_TRUE(
        server_->put_pod(make_pod("00000000-0000-4000-8000-00000000000d", "x", "shop", "node-b")));
    ASSERT_TRUE(server_->delete_pod(kUidA));
    ASSERT_TRUE(eventually([&] { return cache.snapshot()->count(kUidA) == 0; }));
    EXPECT_EQ(cache.snapshot()->size(), 1u) << "the node-b pod never enters this node's cache";
    EXPECT_EQ(cache.status().lists, 1u);
    EXPECT_EQ(cache.status().errors, 0u) << cache.status().last_error;
}

TEST_F(PodWatcherTest, AnnotationsAndContainerStatusesArriveThroughTheWatch) {
    k8s::PodCache cache;
    PodWatcher watcher(endpoint(), cache);
    watcher.start();
    ASSERT_TRUE(watcher.wait_first_attempt(std::chrono::seconds(20)));
    auto pod = make_pod(kUidC, "api-0", "shop", "node-a");
    passport::testing::set_annotations(pod, {{"passport.io/service-name", "checkout"}});
    ASSERT_TRUE(server_->put_pod(pod));
    ASSERT_TRUE(eventually([&] { return cache.snapshot()->count(kUidC) == 1; }));
    EXPECT_EQ(cache.snapshot()->at(kUidC).annotations.at("passport.io/service-name"), "checkout");
    EXPECT_TRUE(cache.snapshot()->at(kUidC).containers.empty()) << "no container started yet";

    const std::string id(64, 'c');
    passport::testing::add_container_status(pod, "app", "registry.example/app:1", id);
    ASSERT_TRUE(server_->put_pod(pod));  // the kubelet's status update: MODIFIED
    ASSERT_TRUE(eventually([&] { return !cache.snapshot()->at(kUidC).containers.empty(); }));
    const auto* c = k8s::container_by_id(cache.snapshot()->at(kUidC), id);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->name, "app");
    EXPECT_EQ(c->image, "registry.example/app:1");
}

TEST_F(PodWatcherTest, GoneListsAgain) {
    k8s::PodCache cache;
    PodWatcher watcher(endpoint(), cache);
    watcher.start();
    ASSERT_TRUE(watcher.wait_first_attempt(std::chrono::seconds(20)));
    ASSERT_TRUE(cache.status().synced) << cache.status().last_error;
    ASSERT_TRUE(server_->expire());
    ASSERT_TRUE(eventually([&] { return cache.status().gone >= 1 && cache.status().lists >= 2; }))
        << "gone " << cache.status().gone << " lists " << cache.status().lists;
    ASSERT_TRUE(server_->put_pod(make_pod(kUidC, "late", "shop", "node-a")));
    ASSERT_TRUE(eventually([&] { return cache.snapshot()->count(kUidC) == 1; }));
    EXPECT_EQ(cache.snapshot()->size(), 2u);
}

TEST_F(PodWatcherTest, WrongTokenIsReportedAndNothingIsCached) {
    const auto sa = dir_->path() / "bad-sa";
    std::filesystem::create_directories(sa);
    std::filesystem::copy_file(server_->sa_dir() / "ca.crt", sa / "ca.crt");
    std::ofstream(sa / "token") << "not-the-token\n";
    auto ep = resolve_api_endpoint(server_->url(), nullptr, nullptr, sa.string(), "node-a");
    ASSERT_TRUE(ep);
    k8s::PodCache cache;
    PodWatcher watcher(*ep, cache);
    watcher.start();
    ASSERT_TRUE(watcher.wait_first_attempt(std::chrono::seconds(20)));
    EXPECT_FALSE(cache.status().synced);
    EXPECT_NE(cache.status().last_error.find("HTTP 401"), std::string::npos)
        << cache.status().last_error;
    EXPECT_TRUE(cache.snapshot()->empty());
}

TEST_F(PodWatcherTest, UnknownCertificateAuthorityIsRefused) {
    const auto sa = dir_->path() / "other-ca";
    std::filesystem::create_directories(sa);
    std::filesystem::copy_file(server_->sa_dir() / "token", sa / "token");
    // A CA the server's certificate does not chain to: the stand-in of another run.
    auto other = std::make_unique<FakeApiServer>(dir_->path() / "other", nlohmann::json::array());
    ASSERT_TRUE(other->ok());
    std::filesystem::copy_file(other->sa_dir() / "ca.crt", sa / "ca.crt");
    auto ep = resolve_api_endpoint(server_->url(), nullptr, nullptr, sa.string(), "node-a");
    ASSERT_TRUE(ep);
    k8s::PodCache cache;
    PodWatcher watcher(*ep, cache);
    watcher.start();
    ASSERT_TRUE(watcher.wait_first_attempt(std::chrono::seconds(20)));
    EXPECT_FALSE(cache.status().synced);
    EXPECT_FALSE(cache.status().last_error.empty());
}

TEST(ApiEndpoint, InClusterAndRefusals) {
    auto ep = resolve_api_endpoint("auto", "10.96.0.1", "443", "/sa", "node-a");
    ASSERT_TRUE(ep);
    EXPECT_EQ(ep->base_url, "https://10.96.0.1:443");
    EXPECT_EQ(ep->token_file, "/sa/token");
    EXPECT_EQ(ep->ca_file, "/sa/ca.crt");
    EXPECT_EQ(resolve_api_endpoint("auto", "fd00::1", "6443", "/sa", "n")->base_url,
              "https://[fd00::1]:6443");
    EXPECT_FALSE(resolve_api_endpoint("auto", nullptr, nullptr, "/sa", "n"));
    EXPECT_FALSE(resolve_api_endpoint("off", "10.96.0.1", "443", "/sa", "n"));
    auto no_node = resolve_api_endpoint("auto", "10.96.0.1", "443", "/sa", "");
    ASSERT_FALSE(no_node);
    EXPECT_NE(no_node.error().find("node name"), std::string::npos);
}

}  // namespace
}  // namespace passport::agent
