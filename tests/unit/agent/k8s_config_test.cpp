// The Kubernetes selection flags: each fills its rule list, bad values are refused with the flag
// named, and any of them turns "trace every process" off.
#include "agent/config.hpp"

#include <gtest/gtest.h>

namespace passport::agent {
namespace {

Result<Config> parse(const std::vector<std::string>& args) { return parse_args(args, nullptr); }

TEST(K8sConfig, EveryRuleFlag) {
    auto c =
        parse({"--k8s-namespace", "shop", "--k8s-namespace=cart", "--k8s-exclude-namespace", "dev",
               "--k8s-label", "app=web", "--k8s-exclude-label", "trace=off", "--k8s-workload",
               "deployment/web", "--k8s-no-inject-namespace", "payments", "--k8s-api", "off",
               "--node-name", "node-a", "--k8s-service-account-dir", "/tmp/sa"});
    ASSERT_TRUE(c) << c.error();
    EXPECT_EQ(c->k8s.namespaces, (std::vector<std::string>{"shop", "cart"}));
    EXPECT_EQ(c->k8s.exclude_namespaces, (std::vector<std::string>{"dev"}));
    ASSERT_EQ(c->k8s.labels.size(), 1u);
    EXPECT_EQ(c->k8s.labels[0].key, "app");
    EXPECT_EQ(c->k8s.exclude_labels[0].value, "off");
    EXPECT_EQ(c->k8s.workloads[0], (k8s::Workload{"deployment", "web"}));
    EXPECT_EQ(c->k8s.no_inject_namespaces, (std::vector<std::string>{"payments"}));
    EXPECT_EQ(c->k8s_api, "off");
    EXPECT_EQ(c->node_name, "node-a");
    EXPECT_EQ(c->k8s_service_account_dir, "/tmp/sa");
    EXPECT_FALSE(c->trace_all());
}

TEST(K8sConfig, DefaultsTraceEverythingAndAskTheApiInACluster) {
    auto c = parse({});
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->trace_all());
    EXPECT_EQ(c->k8s_api, "auto");
    EXPECT_EQ(c->k8s_service_account_dir, "/var/run/secrets/kubernetes.io/serviceaccount");
    auto only_no_inject = parse({"--k8s-no-inject-namespace", "payments"});
    ASSERT_TRUE(only_no_inject);
    EXPECT_FALSE(only_no_inject->trace_all()) << "selection becomes per pod";
}

TEST(K8sConfig, BadValuesNameTheFlag) {
    struct Case {
        std::vector<std::string> args;
        const char* flag;
    };
    for (const auto& [args, flag] :
         std::vector<Case>{{{"--k8s-label", "app"}, "--k8s-label"},
                           {{"--k8s-exclude-label", "=x"}, "--k8s-exclude-label"},
                           {{"--k8s-workload", "web"}, "--k8s-workload"},
                           {{"--k8s-api", "http://10.0.0.1"}, "--k8s-api"},
                           {{"--k8s-namespace", ""}, "--k8s-namespace"},
                           {{"--k8s-namespace"}, "--k8s-namespace"}}) {
        auto c = parse(args);
        ASSERT_FALSE(c) << args[0];
        EXPECT_NE(c.error().find(flag), std::string::npos) << c.error();
    }
}

}  // namespace
}  // namespace passport::agent
