#pragma once
// The stand-in Kubernetes API server (fake_api_server.py next to this file) run by a test: it
// answers LIST and WATCH of pods over HTTPS as the Kubernetes API documents them, with its own
// certificate and token written into a service-account directory the agent is pointed at.
// Header-only: the unit and e2e test binaries both use it without another library.
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/child_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/wait.hpp"

namespace passport::testing {

// A Pod object as the API server returns it (the fields selection reads, and a few more).
inline nlohmann::json make_pod(const std::string& uid, const std::string& name,
                               const std::string& ns, const std::string& node,
                               std::map<std::string, std::string> labels = {},
                               const std::string& owner_kind = "",
                               const std::string& owner_name = "") {
    nlohmann::json pod = {
        {"kind", "Pod"},
        {"apiVersion", "v1"},
        {"metadata",
         {{"uid", uid},
          {"name", name},
          {"namespace", ns},
          {"labels", labels},
          {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
        {"spec", {{"nodeName", node}, {"containers", {{{"name", "app"}, {"image", "app:1"}}}}}},
        {"status", {{"phase", "Running"}}}};
    if (!owner_kind.empty()) {
        pod["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                               {"kind", owner_kind},
                                               {"name", owner_name},
                                               {"uid", "00000000-0000-4000-8000-00000000aaaa"},
                                               {"controller", true},
                                               {"blockOwnerDeletion", true}}};
    }
    return pod;
}

// A container's status as the kubelet reports it once the container exists
// (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#PodStatus:
// status.containerStatuses[] / initContainerStatuses[], containerID "<runtime>://<id>").
inline void add_container_status(nlohmann::json& pod, const std::string& name,
                                 const std::string& image, const std::string& container_id,
                                 const std::string& runtime = "containerd", bool init = false) {
    pod["status"][init ? "initContainerStatuses" : "containerStatuses"].push_back(
        {{"name", name},
         {"image", image},
         {"imageID", image + "@sha256:" + std::string(64, '0')},
         {"containerID", runtime + "://" + container_id},
         {"ready", !init},
         {"restartCount", 0},
         {"started", !init},
         {"state", {{"running", {{"startedAt", "2026-01-01T00:00:01Z"}}}}}});
}

// metadata.annotations
// (https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations/).
inline void set_annotations(nlohmann::json& pod, const std::map<std::string, std::string>& a) {
    pod["metadata"]["annotations"] = a;
}

class FakeApiServer {
  public:
    // Starts the server with `pods` present; `dir` receives pods.json and the sa/ directory.
    FakeApiServer(const std::filesystem::path& dir, const nlohmann::json& pods)
        : sa_dir_(dir / "sa") {
        std::filesystem::create_directories(dir);
        const auto pods_file = dir / "pods.json";
        std::ofstream(pods_file) << pods.dump();
        const auto script = std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "support" /
                            "k8s" / "fake_api_server.py";
        process_ = std::make_unique<ChildProcess>(
            ChildOptions{{python3_path(), script.string(), "--sa-dir", sa_dir_.string(), "--pods",
                          pods_file.string()},
                         {{"PYTHONUNBUFFERED", "1"}},
                         {},
                         dir,
                         true});
        auto line =
            process_->wait_for_line(Stream::kStdout, std::regex(R"(listening on port (\d+))"),
                                    deadline_in(std::chrono::seconds(30)));
        if (line) port_ = std::stoi(line->groups[1]);
    }

    bool ok() const { return port_ > 0; }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
    const std::filesystem::path& sa_dir() const { return sa_dir_; }
    std::string describe() const { return process_->describe(); }

    // Test control (the stand-in's own endpoints, not Kubernetes API).
    bool put_pod(const nlohmann::json& pod) {
        return control({"-X", "POST", "--data-binary", pod.dump(), url() + "/_test/pods"});
    }
    bool delete_pod(const std::string& uid) {
        return control({"-X", "DELETE", url() + "/_test/pods/" + uid});
    }
    bool expire() { return control({"-X", "POST", "--data-binary", "", url() + "/_test/expire"}); }

  private:
    bool control(std::vector<std::string> args) {
        std::vector<std::string> argv = {"curl", "-sS", "-f", "--cacert",
                                         (sa_dir_ / "ca.crt").string()};
        argv.insert(argv.end(), args.begin(), args.end());
        CommandResult r = run_command(ChildOptions{argv, {}, {}, {}, true},
                                      deadline_in(std::chrono::seconds(10)));
        return r.status.success();
    }

    std::filesystem::path sa_dir_;
    std::unique_ptr<ChildProcess> process_;
    int port_ = 0;
};

}  // namespace passport::testing
