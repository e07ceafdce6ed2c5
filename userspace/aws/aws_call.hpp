#pragma once
// AWS API calls seen on the wire: recognises an outgoing HTTP/1 request as a call to an AWS
// service and derives what the X-Ray SDKs' AWS instrumentation records for it (the subsegment
// name and its `aws` object), from the request head, a bounded prefix of the request body and
// the response. Nothing from a body leaves this module except the whitelisted resource names.
//
// A request is an AWS call when its Host is an AWS service endpoint (*.amazonaws.com,
// *.amazonaws.com.cn, *.api.aws), or a configured endpoint (--aws-endpoint: LocalStack, VPC
// endpoints, proxies), or it is signed with SigV4 (Authorization: AWS4-HMAC-SHA256 ...). See
// docs/aws.md for what is derived and how.
//
// Pure functions over parsed messages; options are set once at startup (set_options) before the
// pipeline runs, and only read afterwards.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "userspace/common/result.hpp"
#include "userspace/protocol/http1/http1_types.hpp"

namespace passport::aws {

// Request and response bodies of AWS calls are kept up to this many bytes (resource names and
// response ids are near the start of JSON and query bodies).
inline constexpr size_t kBodyPrefixBytes = 8192;

// A configured endpoint: a host name or address, optionally a port (none: any port).
struct EndpointSpec {
    std::string host;  // lower case, IPv6 without brackets
    std::optional<uint16_t> port;
};

struct Options {
    bool enabled = true;                  // false (--no-aws-calls): every call stays `remote`
    std::vector<EndpointSpec> endpoints;  // --aws-endpoint
};

// "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT".
Result<EndpointSpec> parse_endpoint(std::string_view text);

// Set once before traffic is processed; the default recognises AWS hosts and SigV4.
void set_options(Options options);
const Options& options();

// What the call's own bytes say, as the X-Ray SDK would record it.
struct AwsCall {
    std::string service;       // subsegment name: "DynamoDB", "SQS", "S3", …
    std::string signing_name;  // SigV4 service: "dynamodb", "sqs", "s3", …
    std::string operation;     // "PutItem"; empty when not derivable
    std::string region;        // "us-east-1"; empty when not derivable
    std::string request_id;    // x-amzn-RequestId / x-amz-request-id
    std::string id_2;          // S3 x-amz-id-2
    int retries = 0;           // attempt number - 1, from amz-sdk-request; 0 when not sent
    std::string error_code;    // service error code of a failed call ("ThrottlingException")
    bool throttled = false;    // error_code is one the AWS SDKs treat as throttling
    nlohmann::json resources = nlohmann::json::object();  // whitelisted fields, snake_case

    // The subsegment's `aws` object.
    nlohmann::json to_json() const;
};

// Does this request head look like an AWS call? (Recognition only, from the head.)
bool wants_body(const protocol::http1::Request& request);
// Which bodies of this exchange the classifier will read, decided from the request head: JSON-
// and query-protocol calls keep both prefixes (parameters, MessageId, counts); REST calls (S3
// objects, Lambda payloads: user data) keep none, except an error response's (its error code);
// everything else, nothing. The HTTP/1 parser's body_interest hook for client connections.
protocol::http1::BodyInterest body_interest(const protocol::http1::Request& request);

// The AWS facts of a request and its response (nullptr when none came), or nothing when the
// request is not an AWS call (it stays a `remote` subsegment).
std::optional<AwsCall> classify(const protocol::http1::Request& request,
                                const protocol::http1::Response* response);

// The SigV4 credential scope of an Authorization header value or an X-Amz-Credential value.
struct CredentialScope {
    std::string region;   // empty for SigV4a (region set in X-Amz-Region-Set)
    std::string service;  // signing name
};
std::optional<CredentialScope> parse_sigv4(std::string_view authorization);

// The X-Ray subsegment name for a SigV4 signing name ("dynamodb" -> "DynamoDB").
std::string service_name(std::string_view signing_name);

// "TableName" -> "table_name", as the SDKs name whitelisted parameters.
std::string snake_case(std::string_view name);

}  // namespace passport::aws
