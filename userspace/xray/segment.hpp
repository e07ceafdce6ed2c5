#pragma once
// The X-Ray document model: segments and subsegments with every field Passport writes, as plain
// data. Serialisation, the error/fault/throttle rules and the 64 KB datagram limit live in
// document.hpp; nothing else in the project writes X-Ray JSON.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace passport::xray {

struct HttpRequestInfo {
    std::string method;
    std::string url;
    std::string user_agent;        // omitted when empty
    std::string client_ip;         // omitted when empty
    bool x_forwarded_for = false;  // client_ip came from X-Forwarded-For
    std::optional<bool> traced;    // subsegments only: the callee received our header
};

struct HttpResponseInfo {
    int status = 0;
    std::optional<uint64_t> content_length;
};

struct HttpInfo {
    std::optional<HttpRequestInfo> request;
    std::optional<HttpResponseInfo> response;
};

struct ExceptionInfo {
    std::string id;  // 16 hex
    std::string message;
    std::string type;
    bool remote = false;
};

struct Cause {
    std::string working_directory;
    std::vector<ExceptionInfo> exceptions;
};

struct Subsegment {
    std::string id;
    std::string name;
    double start_time = 0;
    double end_time = 0;
    bool in_progress = false;
    std::string namespace_;  // "remote", "aws" or empty
    std::optional<HttpInfo> http;
    bool error = false;
    bool throttle = false;
    bool fault = false;
    std::optional<Cause> cause;
    nlohmann::json aws;          // object or null
    nlohmann::json sql;          // object or null
    nlohmann::json annotations;  // object or null
    nlohmann::json metadata;     // object or null
    std::vector<Subsegment> subsegments;
};

struct Segment {
    std::string name;
    std::string id;
    std::string trace_id;
    std::string parent_id;  // omitted when empty
    double start_time = 0;  // epoch seconds, microsecond resolution
    double end_time = 0;
    bool in_progress = false;
    std::string origin;  // "AWS::EC2::Instance", … ; omitted when empty
    std::optional<HttpInfo> http;
    bool error = false;
    bool throttle = false;
    bool fault = false;
    std::optional<Cause> cause;
    nlohmann::json aws;  // object or null; aws.xray is filled by the document builder
    // Members written first in "aws", already serialised without braces ("" none): the
    // process's identity blocks ("account_id":…,"ec2":{…},"ecs":{…},"eks":{…}), which sort
    // before any member of `aws` (xray). Composed once per process (userspace/identity).
    std::string aws_members;
    nlohmann::json service;      // object or null
    nlohmann::json annotations;  // object or null
    nlohmann::json metadata;     // object or null
    // metadata.passport as an already serialised JSON object ("" none): the correlator writes it
    // for every segment from per-process text it caches, which costs a fraction of building and
    // dumping a JSON DOM per segment. Written as the first member of "metadata".
    std::string passport_metadata;
    std::vector<Subsegment> subsegments;
};

}  // namespace passport::xray
