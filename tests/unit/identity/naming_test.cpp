#include "userspace/identity/naming.hpp"

#include <gtest/gtest.h>

namespace passport::identity {
namespace {

PodIdentity pod_of(std::string kind, std::string workload) {
    PodIdentity p;
    p.pod = "cart-7d9f8c6b5-x2x9q";
    p.namespace_name = "shop";
    p.workload_kind = std::move(kind);
    p.workload_name = std::move(workload);
    return p;
}

TEST(ServiceNameTest, ProcessEnvironmentWinsOverEverything) {
    PodIdentity pod = pod_of("Deployment", "cart");
    pod.service_name_annotation = "annotated";
    NameSources in;
    in.xray_tracing_name = "from-xray-env";
    in.otel_service_name = "from-otel";
    in.pod = &pod;
    in.configured = "configured";
    in.program = "app.py";
    EXPECT_EQ(choose_service_name(in).name, "from-xray-env");
    EXPECT_EQ(choose_service_name(in).rule, "AWS_XRAY_TRACING_NAME");
    in.xray_tracing_name = "";
    EXPECT_EQ(choose_service_name(in).name, "from-otel");
    EXPECT_EQ(choose_service_name(in).rule, "OTEL_SERVICE_NAME");
    in.otel_service_name = "";
    in.otel_resource_service_name = "from-resource";
    EXPECT_EQ(choose_service_name(in).name, "from-resource");
}

TEST(ServiceNameTest, KubernetesOrder) {
    PodIdentity pod = pod_of("Deployment", "cart");
    pod.labels = {{"app.kubernetes.io/name", "cart-label"}, {"app", "cart-app"}};
    auto overrides = ServiceNameOverrides::parse({"shop/deployment/cart=Cart Service"});
    ASSERT_TRUE(overrides) << overrides.error();
    NameSources in;
    in.pod = &pod;
    in.overrides = &*overrides;
    in.configured = "configured";
    in.program = "app.py";
    EXPECT_EQ(choose_service_name(in).name, "Cart Service");
    EXPECT_EQ(choose_service_name(in).rule, "override");
    in.overrides = nullptr;
    pod.service_name_annotation = "annotated";
    EXPECT_EQ(choose_service_name(in).rule, "annotation");
    pod.service_name_annotation = "";
    EXPECT_EQ(choose_service_name(in).name, "cart");
    EXPECT_EQ(choose_service_name(in).rule, "kubernetes.workload");
    pod.workload_kind = "ReplicaSet";  // not a naming kind: labels next
    EXPECT_EQ(choose_service_name(in).name, "cart-label");
    EXPECT_EQ(choose_service_name(in).rule, "kubernetes.label");
    pod.labels.erase("app.kubernetes.io/name");
    EXPECT_EQ(choose_service_name(in).name, "cart-app");
    pod.labels.clear();
    EXPECT_EQ(choose_service_name(in).name, "cart-7d9f8c6b5-x2x9q");
    EXPECT_EQ(choose_service_name(in).rule, "kubernetes.pod");
}

TEST(ServiceNameTest, EveryNamingKind) {
    for (const char* kind : {"Deployment", "StatefulSet", "DaemonSet", "Job"}) {
        PodIdentity pod = pod_of(kind, "w");
        NameSources in;
        in.pod = &pod;
        EXPECT_EQ(choose_service_name(in).name, "w") << kind;
    }
    PodIdentity job = pod_of("Job", "nightly-report-29000160");
    NameSources in;
    in.pod = &job;
    EXPECT_EQ(choose_service_name(in).name, "nightly-report");  // the CronJob
}

TEST(ServiceNameTest, EcsConfiguredAndProgram) {
    EcsIdentity ecs;
    ecs.container = "web";
    NameSources in;
    in.ecs = &ecs;
    in.configured = "configured";
    in.program = "server.js";
    EXPECT_EQ(choose_service_name(in).name, "web");
    EXPECT_EQ(choose_service_name(in).rule, "ecs.container");
    in.ecs = nullptr;
    EXPECT_EQ(choose_service_name(in).name, "configured");
    EXPECT_EQ(choose_service_name(in).rule, "configured");
    in.configured = "";
    EXPECT_EQ(choose_service_name(in).name, "server.js");
    EXPECT_EQ(choose_service_name(in).rule, "program");
}

TEST(ServiceNameTest, SanitisedAndFallsThroughWhenNothingIsLeft) {
    NameSources in;
    in.xray_tracing_name = "!!!";  // nothing X-Ray accepts: the next rule
    in.otel_service_name = "cart<script>";
    EXPECT_EQ(choose_service_name(in).name, "cartscript");
    EXPECT_EQ(choose_service_name(in).rule, "OTEL_SERVICE_NAME");
    const std::string long_name(300, 'a');  // NameSources holds views: the string outlives it
    in.otel_service_name = long_name;
    EXPECT_EQ(choose_service_name(in).name.size(), 200U);
    in.otel_service_name = "";
    in.xray_tracing_name = "";
    EXPECT_EQ(choose_service_name(in).name, "unknown");  // nothing at all
}

TEST(ServiceNameOverridesTest, ParseErrorsNameTheEntry) {
    for (const char* bad :
         {"shop/Deployment/cart", "shop/Deployment=cart", "/Deployment/cart=x", "shop//cart=x",
          "shop/Deployment/=x", "shop/Deployment/cart=", "a/b/c/d=x", "shop/Deployment/cart=***"}) {
        auto r = ServiceNameOverrides::parse({bad});
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().find(bad), std::string::npos) << r.error();
    }
}

TEST(ServiceNameOverridesTest, MatchesNamespaceKindAndCronJobs) {
    auto o = ServiceNameOverrides::parse({"shop/CronJob/nightly=reports", "ops/Job/once=one"});
    ASSERT_TRUE(o);
    EXPECT_EQ(o->find(pod_of("Job", "nightly-29000160")), "reports");
    PodIdentity other_ns = pod_of("Job", "nightly-29000160");
    other_ns.namespace_name = "prod";
    EXPECT_EQ(o->find(other_ns), "");
    PodIdentity once = pod_of("Job", "once");
    once.namespace_name = "ops";
    EXPECT_EQ(o->find(once), "one");
}

TEST(CronJobOfJobTest, OnlyDigitSuffixes) {
    EXPECT_EQ(cronjob_of_job("backup-28999999"), "backup");
    EXPECT_EQ(cronjob_of_job("a-b-123"), "a-b");
    EXPECT_EQ(cronjob_of_job("backup-abc"), "");
    EXPECT_EQ(cronjob_of_job("backup"), "");
    EXPECT_EQ(cronjob_of_job("-123"), "");
}

}  // namespace
}  // namespace passport::identity
