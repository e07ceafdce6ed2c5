#include "userspace/identity/process_identity.hpp"

#include <string_view>

#include "userspace/xray/document.hpp"

namespace passport::identity {
namespace {

constexpr size_t kMaxValue = 250;  // X-Ray's string limit for segment fields

// Appends "key":"value" (comma first unless the object is empty so far); empty values are
// left out.
class Members {
  public:
    explicit Members(std::string& out) : out_(out) {}
    void string(std::string_view key, std::string_view value) {
        if (value.empty()) return;
        next_key(key);
        xray::append_json_string(out_, value.substr(0, kMaxValue));
    }
    void raw(std::string_view key, const std::string& json) {
        next_key(key);
        out_ += json;
    }

  private:
    void next_key(std::string_view key) {
        if (!first_) out_ += ',';
        first_ = false;
        out_ += '"';
        out_ += key;
        out_ += "\":";
    }
    std::string& out_;
    bool first_ = true;
};

std::string ec2_block(const Ec2Identity& e) {
    std::string out = "{";
    Members m(out);
    m.string("instance_id", e.instance_id);
    m.string("availability_zone", e.availability_zone);
    m.string("instance_size", e.instance_size);
    m.string("ami_id", e.ami_id);
    return out + "}";
}

std::string ecs_block(const EcsIdentity& e) {
    std::string out = "{";
    Members m(out);
    m.string("container", e.container);
    m.string("container_id", e.container_id);
    m.string("container_arn", e.container_arn);
    m.string("task_arn", e.task_arn);
    m.string("task_family", e.task_family);
    m.string("cluster_arn", e.cluster_arn);
    m.string("launch_type", e.launch_type);
    m.string("availability_zone", e.availability_zone);
    return out + "}";
}

std::string eks_block(const PodIdentity& p) {
    std::string out = "{";
    Members m(out);
    m.string("cluster_name", p.cluster_name);
    m.string("pod", p.pod);
    m.string("container_id", p.container_id);
    return out + "}";
}

const char* source_name(PodSource s) {
    switch (s) {
        case PodSource::kApiServer:
            return "api-server";
        case PodSource::kRuntime:
            return "container-runtime";
        case PodSource::kNode:
            return "node";
    }
    return "node";
}

std::string kubernetes_metadata(const PodIdentity& p) {
    std::string out = "{";
    Members m(out);
    m.string("namespace", p.namespace_name);
    m.string("pod", p.pod);
    m.string("pod_uid", p.pod_uid);
    if (!p.workload_kind.empty()) {
        std::string w = "{";
        Members wm(w);
        wm.string("kind", p.workload_kind);
        wm.string("name", p.workload_name);
        m.raw("workload", w + "}");
    }
    m.string("node", p.node_name);
    m.string("container", p.container_name);
    m.string("container_id", p.container_id);
    m.string("image", p.image);
    m.string("source", source_name(p.source));
    return out + "}";
}

std::string account_of(const IdentityFacts& f) {
    if (f.ecs != nullptr && !f.ecs->account_id.empty()) return f.ecs->account_id;
    if (f.ec2 != nullptr) return f.ec2->account_id;
    return "";
}

}  // namespace

ProcessIdentity compose_identity(const IdentityFacts& facts, ServiceName name) {
    ProcessIdentity id;
    id.service_name = std::move(name.name);
    id.name_rule = std::string(name.rule);
    if (facts.pod != nullptr) {
        id.origin = "AWS::EKS::Container";
    } else if (facts.ecs != nullptr) {
        id.origin = "AWS::ECS::Container";
    } else if (facts.ec2 != nullptr) {
        id.origin = "AWS::EC2::Instance";
    }
    Members aws(id.aws_members);
    aws.string("account_id", account_of(facts));
    if (facts.ec2 != nullptr) aws.raw("ec2", ec2_block(*facts.ec2));
    if (facts.ecs != nullptr) aws.raw("ecs", ecs_block(*facts.ecs));
    if (facts.pod != nullptr) aws.raw("eks", eks_block(*facts.pod));
    id.metadata_members = R"(,"name_rule":)";
    xray::append_json_string(id.metadata_members, id.name_rule);
    if (facts.pod != nullptr) {
        id.metadata_members += R"(,"kubernetes":)";
        id.metadata_members += kubernetes_metadata(*facts.pod);
    }
    return id;
}

}  // namespace passport::identity
