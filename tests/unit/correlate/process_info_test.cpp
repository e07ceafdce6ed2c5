#include "userspace/correlate/process_info.hpp"

#include "userspace/correlate/identity_provider.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace passport::correlate {
namespace {

// The name the identity rules give a process outside pods and ECS tasks.
std::string derive_service_name(const ProcessInfo& p, const std::string& configured) {
    return identity::choose_service_name(name_sources(p, program_name(p), configured)).name;
}

TEST(CorrelateProcessInfo, ScriptNameForInterpreters) {
    EXPECT_EQ(script_name({"/usr/bin/python3", "/srv/app/server.py", "--port", "80"}), "server.py");
    EXPECT_EQ(script_name({"python3.11", "-u", "-W", "ignore", "worker.py"}), "worker.py");
    EXPECT_EQ(script_name({"python3", "-m", "http.server", "8000"}), "http.server");
    EXPECT_EQ(script_name({"python3", "-c", "print(1)"}), "");
    EXPECT_EQ(script_name({"/usr/bin/node", "--require", "x.js", "/app/index.js"}), "index.js");
    EXPECT_EQ(script_name({"node", "-e", "1"}), "");
    EXPECT_EQ(script_name({"java", "-jar", "/opt/orders-1.2.jar"}), "orders-1.2.jar");
    EXPECT_EQ(script_name({"/usr/sbin/nginx", "-c", "/etc/nginx.conf"}), "")
        << "not an interpreter";
    EXPECT_EQ(script_name({"pythonista", "x.py"}), "") << "a prefix alone is not an interpreter";
    EXPECT_EQ(script_name({}), "");
}

TEST(CorrelateProcessInfo, ServiceNamePrecedence) {
    ProcessInfo p;
    p.exe = "/usr/bin/python3.11";
    p.cmdline = {"python3", "shop.py"};
    EXPECT_EQ(derive_service_name(p, ""), "shop.py");
    EXPECT_EQ(derive_service_name(p, "configured"), "configured");
    p.otel_service_name = "otel-name";
    EXPECT_EQ(derive_service_name(p, "configured"), "otel-name");
    p.xray_tracing_name = "xray-name";
    EXPECT_EQ(derive_service_name(p, "configured"), "xray-name");
    ProcessInfo n;
    n.exe = "/usr/sbin/nginx";
    n.cmdline = {"nginx: worker process"};
    EXPECT_EQ(derive_service_name(n, ""), "nginx");
}

TEST(CorrelateProcessInfo, ReadsFakeProcTree) {
    namespace fs = std::filesystem;
    fs::path root = fs::temp_directory_path() / ("pp-proc-" + std::to_string(::getpid()));
    fs::create_directories(root / "321");
    std::ofstream(root / "321/cmdline") << std::string("python3\0app.py\0", 15);
    std::ofstream(root / "321/environ")
        << std::string("A=1\0OTEL_SERVICE_NAME=orders\0AWS_XRAY_TRACING_NAME=orders-x\0", 59);
    std::ofstream(root / "321/comm") << "python3\n";
    std::ofstream(root / "321/status") << "Name:\tpython3\nPPid:\t7\n";
    std::ofstream(root / "321/cgroup")
        << "0::/kubepods/besteffort/pod1/cri-containerd-"
           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n";
    fs::create_symlink("/usr/bin/python3.11", root / "321/exe");
    ProcessInfoCache cache(root.string());
    const ProcessInfo* p = cache.get(321);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->exe, "/usr/bin/python3.11");
    EXPECT_EQ(p->comm, "python3");
    EXPECT_EQ(p->ppid, 7u);
    EXPECT_EQ(p->cmdline, (std::vector<std::string>{"python3", "app.py"}));
    EXPECT_EQ(p->otel_service_name, "orders");
    EXPECT_EQ(p->xray_tracing_name, "orders-x");
    EXPECT_EQ(p->container_id, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    EXPECT_EQ(cache.get(999), nullptr);
    fs::remove_all(root);
    EXPECT_NE(cache.get(321), nullptr) << "cached after the process is gone";
    cache.forget(321);
    EXPECT_EQ(cache.get(321), nullptr);
}

TEST(CorrelateProcessInfo, OtelResourceAttributesServiceName) {
    EXPECT_EQ(otel_resource_service_name("service.name=cart"), "cart");
    EXPECT_EQ(otel_resource_service_name("deployment.environment=prod, service.name = my%20cart"),
              "my cart");
    EXPECT_EQ(otel_resource_service_name("service.namespace=shop,service.version=1"), "");
    EXPECT_EQ(otel_resource_service_name("garbage,,=,service.name"), "");
    ProcessInfo p;
    p.cmdline = {"python3", "shop.py"};
    p.otel_resource_service_name = "from-resource";
    EXPECT_EQ(derive_service_name(p, "configured"), "from-resource");
    p.otel_service_name = "otel-name";
    EXPECT_EQ(derive_service_name(p, "configured"), "otel-name") << "OTEL_SERVICE_NAME wins";
}

TEST(CorrelateProcessInfo, ReadsPodAndEcsFacts) {
    namespace fs = std::filesystem;
    fs::path root = fs::temp_directory_path() / ("pp-proc-pod-" + std::to_string(::getpid()));
    fs::create_directories(root / "42");
    const std::string env =
        std::string("ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/abc") + '\0' +
        "OTEL_RESOURCE_ATTRIBUTES=service.name=resource-name" + '\0';
    std::ofstream(root / "42/environ") << env;
    const std::string id(64, 'e');
    std::ofstream(root / "42/cgroup")
        << "0::/kubepods.slice/kubepods-burstable.slice/"
           "kubepods-burstable-pod6f1b0a52_3e8e_4c43_a3b4_1d6f7e9e2a10.slice/cri-containerd-" +
               id + ".scope\n";
    ProcessInfoCache cache(root.string());
    const ProcessInfo* p = cache.get(42);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->ecs_metadata_uri, "http://169.254.170.2/v4/abc");
    EXPECT_EQ(p->otel_resource_service_name, "resource-name");
    ASSERT_TRUE(p->pod.has_value());
    EXPECT_EQ(p->pod->pod_uid, "6f1b0a52-3e8e-4c43-a3b4-1d6f7e9e2a10");
    EXPECT_EQ(p->pod->container_id, id);
    EXPECT_EQ(p->container_id, id);
    fs::remove_all(root);
}

}  // namespace
}  // namespace passport::correlate
