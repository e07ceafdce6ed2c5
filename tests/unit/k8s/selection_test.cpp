// The --k8s-* rules: includes (AND across lists, any entry within one), exclusions first,
// kube-system only when named, labels and workloads unknown without the API server, no-inject
// namespaces, and the owning workload read from ownerReferences.
#include "userspace/k8s/selection.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/k8s/fake_api.hpp"
#include "userspace/k8s/pod_cache.hpp"

namespace passport::k8s {
namespace {

PodMeta pod(const std::string& ns, std::map<std::string, std::string> labels = {},
            Workload w = {}) {
    PodMeta p;
    p.uid = "u";
    p.name = "p";
    p.namespace_name = ns;
    p.labels = std::move(labels);
    p.workload = std::move(w);
    return p;
}

Decision with_api(const Rules& r, const PodMeta& p) { return decide(r, {p.namespace_name, &p}); }
Decision without_api(const Rules& r, const std::string& ns) { return decide(r, {ns, nullptr}); }

TEST(K8sSelection, NamespaceInclude) {
    Rules r;
    r.namespaces = {"shop", "cart"};
    EXPECT_EQ(with_api(r, pod("shop")).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(r, pod("cart")).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(r, pod("other")).verdict, Verdict::kSkip);
    EXPECT_STREQ(with_api(r, pod("other")).reason, "namespace_not_selected");
    EXPECT_EQ(without_api(r, "shop").verdict, Verdict::kTrace)
        << "namespace-only rules need no API";
    EXPECT_STREQ(without_api(r, "").reason, "namespace_unknown");
}

TEST(K8sSelection, KubeSystemOnlyWhenNamed) {
    Rules exclude_only;
    exclude_only.exclude_namespaces = {"dev"};
    EXPECT_EQ(with_api(exclude_only, pod("kube-system")).verdict, Verdict::kSkip);
    EXPECT_STREQ(with_api(exclude_only, pod("kube-system")).reason, "kube_system");
    EXPECT_EQ(with_api(exclude_only, pod("prod")).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(exclude_only, pod("dev")).verdict, Verdict::kSkip);

    Rules named;
    named.namespaces = {"kube-system"};
    EXPECT_EQ(with_api(named, pod("kube-system")).verdict, Verdict::kTrace);
}

TEST(K8sSelection, ExclusionsWinOverIncludes) {
    Rules r;
    r.namespaces = {"shop"};
    r.exclude_labels = {{"passport.io/trace", "false"}};
    EXPECT_EQ(with_api(r, pod("shop", {{"passport.io/trace", "false"}})).verdict, Verdict::kSkip);
    EXPECT_EQ(with_api(r, pod("shop", {{"passport.io/trace", "true"}})).verdict, Verdict::kTrace);
    EXPECT_STREQ(without_api(r, "shop").reason, "exclude_label_unknown")
        << "an exclusion that cannot be checked must not let the pod through";
    r.exclude_namespaces = {"shop"};
    EXPECT_STREQ(with_api(r, pod("shop")).reason, "excluded_namespace");
}

TEST(K8sSelection, ExcludedWorkloadsWinOverNamespaces) {
    Rules r;
    r.namespaces = {"shop"};
    r.exclude_workloads = {{"deployment", "batch"}};
    EXPECT_EQ(with_api(r, pod("shop", {}, {"Deployment", "web"})).verdict, Verdict::kTrace);
    const Decision d = with_api(r, pod("shop", {}, {"Deployment", "batch"}));
    EXPECT_EQ(d.verdict, Verdict::kSkip);
    EXPECT_STREQ(d.reason, "excluded_workload");
    EXPECT_STREQ(without_api(r, "shop").reason, "exclude_workload_unknown")
        << "an exclusion that cannot be checked must not let the pod through";
    EXPECT_TRUE(r.needs_api());
}

TEST(K8sSelection, LabelsAnyWithinAndAcrossLists) {
    Rules r;
    r.labels = {{"app", "web"}, {"app", "api"}};
    EXPECT_EQ(with_api(r, pod("x", {{"app", "api"}})).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(r, pod("x", {{"app", "db"}})).verdict, Verdict::kSkip);
    EXPECT_STREQ(without_api(r, "x").reason, "labels_unknown");
    r.namespaces = {"shop"};
    EXPECT_EQ(with_api(r, pod("x", {{"app", "api"}})).verdict, Verdict::kSkip)
        << "AND across lists";
    EXPECT_EQ(with_api(r, pod("shop", {{"app", "api"}})).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(r, pod("shop", {{"app", ""}})).verdict, Verdict::kSkip);
}

TEST(K8sSelection, Workloads) {
    Rules r;
    r.workloads = {{"deployment", "web"}, {"CronJob", "report"}};
    EXPECT_EQ(with_api(r, pod("x", {}, {"Deployment", "web"})).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(r, pod("x", {}, {"StatefulSet", "web"})).verdict, Verdict::kSkip);
    EXPECT_EQ(with_api(r, pod("x", {}, {"Job", "report-28912345"})).verdict, Verdict::kTrace);
    EXPECT_EQ(with_api(r, pod("x", {}, {"Job", "report-final"})).verdict, Verdict::kSkip);
    EXPECT_EQ(with_api(r, pod("x")).verdict, Verdict::kSkip);
    EXPECT_STREQ(without_api(r, "x").reason, "workload_unknown");
}

TEST(K8sSelection, NoInjectNamespaceIsTracedNotInjected) {
    Rules r;
    r.no_inject_namespaces = {"payments"};
    auto d = with_api(r, pod("payments"));
    EXPECT_EQ(d.verdict, Verdict::kTrace);
    EXPECT_FALSE(d.inject);
    EXPECT_TRUE(with_api(r, pod("shop")).inject);
    EXPECT_TRUE(r.any());
    EXPECT_FALSE(r.needs_api());
    EXPECT_FALSE(Rules{}.any());
}

TEST(K8sSelection, RuleSyntax) {
    auto l = parse_label_rule("app.kubernetes.io/name=web");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->key, "app.kubernetes.io/name");
    EXPECT_EQ(l->value, "web");
    EXPECT_TRUE(parse_label_rule("flag="));
    EXPECT_FALSE(parse_label_rule("novalue"));
    EXPECT_FALSE(parse_label_rule("=web"));
    auto w = parse_workload_rule("statefulset/db");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->kind, "statefulset");
    EXPECT_EQ(w->name, "db");
    for (const char* bad : {"web", "/web", "deployment/", "a/b/c"})
        EXPECT_FALSE(parse_workload_rule(bad)) << bad;
}

TEST(K8sWorkload, ReplicaSetOfADeploymentByPodTemplateHash) {
    auto p = passport::testing::make_pod(
        "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708", "web-7d4b9c8f6-x2k4p", "shop", "n",
        {{"pod-template-hash", "7d4b9c8f6"}}, "ReplicaSet", "web-7d4b9c8f6");
    auto meta = pod_from_json(p);
    ASSERT_TRUE(meta) << meta.error();
    EXPECT_EQ(meta->workload, (Workload{"Deployment", "web"}));

    p["metadata"]["labels"]["pod-template-hash"] = "other";
    EXPECT_EQ(pod_from_json(p)->workload, (Workload{"ReplicaSet", "web-7d4b9c8f6"}))
        << "a ReplicaSet not named after the pod's template hash is not taken as a Deployment's";
}

TEST(K8sWorkload, OtherOwnersAsTheyAre) {
    for (const char* kind : {"StatefulSet", "DaemonSet", "Job"}) {
        auto meta = pod_from_json(passport::testing::make_pod(
            "0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708", "x-0", "ns", "n", {}, kind, "x"));
        ASSERT_TRUE(meta);
        EXPECT_EQ(meta->workload, (Workload{kind, "x"}));
    }
    auto bare = pod_from_json(
        passport::testing::make_pod("0f3a5b2c-6d7e-4f80-91a2-b3c4d5e6f708", "x", "ns", "n"));
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->workload, Workload{});
}

TEST(K8sPodCache, ListThenEventsAndSnapshotsStayStable) {
    PodCache cache;
    EXPECT_FALSE(cache.status().synced);
    PodMeta a = pod("shop");
    a.uid = "a";
    cache.replace({a});
    auto before = cache.snapshot();
    const uint64_t v1 = cache.version();
    WatchEvent added;
    added.type = WatchEventType::kAdded;
    added.pod = pod("cart");
    added.pod.uid = "b";
    cache.apply(added);
    EXPECT_GT(cache.version(), v1);
    EXPECT_EQ(before->size(), 1u) << "a reader's snapshot never changes under it";
    EXPECT_EQ(cache.snapshot()->size(), 2u);
    WatchEvent bookmark;
    bookmark.type = WatchEventType::kBookmark;
    const uint64_t v2 = cache.version();
    cache.apply(bookmark);
    EXPECT_EQ(cache.version(), v2) << "a bookmark changes no pod";
    WatchEvent deleted = added;
    deleted.type = WatchEventType::kDeleted;
    cache.apply(deleted);
    EXPECT_EQ(cache.snapshot()->count("b"), 0u);
    EXPECT_TRUE(cache.status().synced);
    EXPECT_EQ(cache.status().events, 3u);
}

}  // namespace
}  // namespace passport::k8s
