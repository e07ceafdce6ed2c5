#include "userspace/aws/aws_call.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "userspace/aws/json_scan.hpp"
#include "userspace/common/text.hpp"

namespace passport::aws {

using protocol::http1::find_header;
using protocol::http1::Request;
using protocol::http1::Response;
using text::iequals;
using text::lower;
using text::to_lower;
using text::trim;

namespace {

// Longest header or query value looked at; AWS values that matter are far shorter.
constexpr size_t kMaxValue = 4096;
constexpr size_t kMaxQueryPairs = 64;

Options& mutable_options() {
    static Options o;
    return o;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Percent-decoding of a value, at most kMaxValue bytes; `plus_is_space` for form bodies.
std::string url_decode(std::string_view s, bool plus_is_space) {
    return text::percent_decode(s, plus_is_space, kMaxValue);
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

// "a=1&b=2" (a query string or a form body) into decoded pairs; a bare "a" has an empty value.
Pairs parse_pairs(std::string_view s, bool form) {
    Pairs out;
    while (!s.empty() && out.size() < kMaxQueryPairs) {
        const size_t amp = s.find('&');
        const std::string_view item = s.substr(0, amp);
        if (!item.empty()) {
            const size_t eq = item.find('=');
            out.emplace_back(url_decode(item.substr(0, eq), form),
                             eq == std::string_view::npos ? std::string()
                                                          : url_decode(item.substr(eq + 1), form));
        }
        if (amp == std::string_view::npos) break;
        s.remove_prefix(amp + 1);
    }
    return out;
}

const std::string* find_pair(const Pairs& pairs, std::string_view name) {
    for (const auto& [k, v] : pairs) {
        if (k == name) return &v;
    }
    return nullptr;
}

bool has_pair(const Pairs& pairs, std::string_view name) {
    return find_pair(pairs, name) != nullptr;
}

bool is_region_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }
bool is_service_char(char c) { return is_region_char(c) || c == '.' || c == '_'; }

// "us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1": letters, dashes, a final number.
bool looks_like_region(std::string_view s) {
    if (s.size() < 6 || s.size() > 32 || s.find('-') == std::string_view::npos) return false;
    if (!(s.back() >= '0' && s.back() <= '9') || !(s[0] >= 'a' && s[0] <= 'z')) return false;
    return std::all_of(s.begin(), s.end(), is_region_char) &&
           std::count(s.begin(), s.end(), '-') >= 2;
}

// Host header split into lower-case name and port ("" when none). IPv6 brackets removed.
struct HostPort {
    std::string host;
    std::optional<uint16_t> port;
};

std::optional<uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) return std::nullopt;
    uint32_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v == 0 || v > 65535) return std::nullopt;
    return static_cast<uint16_t>(v);
}

HostPort split_host(std::string_view h) {
    HostPort out;
    h = trim(h);
    if (h.size() > 255) return out;
    if (!h.empty() && h.front() == '[') {
        const size_t close = h.find(']');
        if (close == std::string_view::npos) return out;
        out.host = to_lower(h.substr(1, close - 1));
        if (close + 1 < h.size() && h[close + 1] == ':') out.port = parse_port(h.substr(close + 2));
        return out;
    }
    const size_t colon = h.rfind(':');
    if (colon != std::string_view::npos && h.find(':') == colon) {
        out.host = to_lower(h.substr(0, colon));
        out.port = parse_port(h.substr(colon + 1));
    } else {
        out.host = to_lower(h);
    }
    if (!out.host.empty() && out.host.back() == '.') out.host.pop_back();  // FQDN form
    return out;
}

// The AWS public endpoint domains; what precedes them names the service and region.
constexpr std::array<std::string_view, 3> kAwsDomains = {".amazonaws.com", ".amazonaws.com.cn",
                                                         ".api.aws"};

// Labels of an AWS endpoint host before its domain, or none if it is not one.
std::optional<std::vector<std::string_view>> aws_host_labels(std::string_view host) {
    for (std::string_view domain : kAwsDomains) {
        if (!ends_with(host, domain) || host.size() == domain.size()) continue;
        std::string_view rest = host.substr(0, host.size() - domain.size());
        std::vector<std::string_view> labels;
        while (!rest.empty() && labels.size() < 64) {
            const size_t dot = rest.find('.');
            labels.push_back(rest.substr(0, dot));
            if (dot == std::string_view::npos) break;
            rest.remove_prefix(dot + 1);
        }
        return labels;
    }
    return std::nullopt;
}

// Is `host` a configured endpoint, or a virtual-hosted bucket under one ("bucket.<endpoint>")?
// `bucket_prefix` gets the part before the endpoint in the second case.
bool configured_endpoint(const HostPort& hp, std::string* bucket_prefix) {
    for (const EndpointSpec& e : options().endpoints) {
        if (e.port && hp.port != e.port) continue;
        if (hp.host == e.host) return true;
        if (hp.host.size() > e.host.size() + 1 && ends_with(hp.host, e.host) &&
            hp.host[hp.host.size() - e.host.size() - 1] == '.') {
            if (bucket_prefix)
                *bucket_prefix = hp.host.substr(0, hp.host.size() - e.host.size() - 1);
            return true;
        }
    }
    return false;
}

bool is_s3_label(std::string_view l) {
    return l == "s3" || l.rfind("s3-", 0) == 0 || l == "s3express";
}

// Service, region and (S3) bucket from an AWS endpoint host name.
struct HostFacts {
    std::string signing_name;
    std::string region;
    std::string bucket;  // virtual-hosted S3
};

std::optional<HostFacts> host_facts(const std::vector<std::string_view>& labels) {
    if (labels.empty()) return std::nullopt;
    HostFacts f;
    size_t after = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
        if (!is_s3_label(labels[i])) continue;
        // bucket.s3.region, s3.region, s3-region (legacy), s3.dualstack.region, s3-fips.region
        f.signing_name = "s3";
        for (size_t b = 0; b < i; ++b) {
            if (!f.bucket.empty()) f.bucket += '.';
            f.bucket.append(labels[b]);
        }
        if (labels[i].size() > 3 && looks_like_region(labels[i].substr(3))) {
            f.region = labels[i].substr(3);
        }
        after = i + 1;
        break;
    }
    if (f.signing_name.empty()) {
        // service[-fips].region, <api-id>.execute-api.region, or an interface VPC endpoint
        // vpce-<id>.service.region.vpce
        std::string_view svc = labels[0];
        after = 1;
        if (labels.size() > 1 && (labels[1] == "execute-api" || svc.rfind("vpce-", 0) == 0)) {
            svc = labels[1];
            after = 2;
        }
        if (ends_with(svc, "-fips")) svc.remove_suffix(5);
        if (svc.empty() || !std::all_of(svc.begin(), svc.end(), is_service_char))
            return std::nullopt;
        f.signing_name = svc;
    }
    for (size_t i = after; i < labels.size() && f.region.empty(); ++i) {
        if (looks_like_region(labels[i])) f.region = labels[i];
    }
    // Global endpoints (sts.amazonaws.com, s3.amazonaws.com, iam.amazonaws.com) sign for
    // us-east-1.
    if (f.region.empty()) f.region = "us-east-1";
    return f;
}

// JSON-protocol target prefixes, for calls to a configured endpoint that are not signed.
std::string signing_name_from_target(std::string_view target) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kPrefixes = {{
        {"DynamoDB_", "dynamodb"},
        {"DynamoDBStreams_", "dynamodb"},
        {"AmazonSQS", "sqs"},
        {"Kinesis_", "kinesis"},
        {"AWSEvents", "events"},
        {"AWSStepFunctions", "states"},
        {"secretsmanager", "secretsmanager"},
        {"AmazonSSM", "ssm"},
        {"TrentService", "kms"},
        {"Logs_", "logs"},
        {"Firehose_", "firehose"},
        {"AWSCognitoIdentityProviderService", "cognito-idp"},
    }};
    for (const auto& [prefix, name] : kPrefixes) {
        if (target.rfind(prefix, 0) == 0) return std::string(name);
    }
    return {};
}

// ---- whitelist -------------------------------------------------------------------------------
// What the X-Ray SDKs record per operation (their AWS whitelist), written compactly:
// space-separated wire names; "Wire=field" renames; otherwise the field is snake_case(Wire).
struct Rule {
    std::string_view service;  // signing name
    std::string_view operation;
    std::string_view request;     // scalar (or whole) request parameters
    std::string_view req_keys;    // "Wire=field": member names of a request map
    std::string_view req_count;   // "Wire=field": element count of a request list
    std::string_view response;    // response parameters
    std::string_view resp_count;  // "Wire=field": element count of a response list
};

constexpr Rule kRules[] = {
    {"dynamodb", "BatchGetItem", "", "RequestItems=table_names", "", "ConsumedCapacity", ""},
    {"dynamodb", "BatchWriteItem", "", "RequestItems=table_names", "",
     "ConsumedCapacity ItemCollectionMetrics", ""},
    {"dynamodb", "CreateTable",
     "GlobalSecondaryIndexes LocalSecondaryIndexes ProvisionedThroughput TableName", "", "", "",
     ""},
    {"dynamodb", "DeleteItem", "TableName", "", "", "ConsumedCapacity ItemCollectionMetrics", ""},
    {"dynamodb", "DeleteTable", "TableName", "", "", "", ""},
    {"dynamodb", "DescribeTable", "TableName", "", "", "", ""},
    {"dynamodb", "GetItem", "ConsistentRead ProjectionExpression TableName", "", "",
     "ConsumedCapacity", ""},
    {"dynamodb", "ListTables", "ExclusiveStartTableName Limit", "", "", "",
     "TableNames=table_count"},
    {"dynamodb", "PutItem", "TableName", "", "", "ConsumedCapacity ItemCollectionMetrics", ""},
    {"dynamodb", "Query",
     "AttributesToGet ConsistentRead IndexName Limit ProjectionExpression ScanIndexForward Select "
     "TableName",
     "", "", "ConsumedCapacity", ""},
    {"dynamodb", "Scan",
     "AttributesToGet ConsistentRead IndexName Limit ProjectionExpression Segment Select TableName "
     "TotalSegments",
     "", "", "ConsumedCapacity Count ScannedCount", ""},
    {"dynamodb", "UpdateItem", "TableName", "", "", "ConsumedCapacity ItemCollectionMetrics", ""},
    {"dynamodb", "UpdateTable",
     "AttributeDefinitions GlobalSecondaryIndexUpdates ProvisionedThroughput TableName", "", "", "",
     ""},
    {"sqs", "AddPermission", "Label QueueUrl", "", "", "", ""},
    {"sqs", "ChangeMessageVisibility", "QueueUrl VisibilityTimeout", "", "", "", ""},
    {"sqs", "ChangeMessageVisibilityBatch", "QueueUrl", "", "", "Failed", ""},
    {"sqs", "CreateQueue", "Attributes QueueName", "", "", "", ""},
    {"sqs", "DeleteMessage", "QueueUrl", "", "", "", ""},
    {"sqs", "DeleteMessageBatch", "QueueUrl", "", "", "Failed", ""},
    {"sqs", "DeleteQueue", "QueueUrl", "", "", "", ""},
    {"sqs", "GetQueueAttributes", "QueueUrl", "", "", "Attributes", ""},
    {"sqs", "GetQueueUrl", "QueueName QueueOwnerAWSAccountId", "", "", "QueueUrl", ""},
    {"sqs", "ListDeadLetterSourceQueues", "QueueUrl", "", "", "QueueUrls", ""},
    {"sqs", "ListQueues", "QueueNamePrefix", "", "", "", "QueueUrls=queue_count"},
    {"sqs", "PurgeQueue", "QueueUrl", "", "", "", ""},
    {"sqs", "ReceiveMessage",
     "AttributeNames MaxNumberOfMessages MessageAttributeNames QueueUrl VisibilityTimeout "
     "WaitTimeSeconds",
     "", "", "", "Messages=message_count"},
    {"sqs", "RemovePermission", "QueueUrl", "", "", "", ""},
    {"sqs", "SendMessage", "DelaySeconds QueueUrl", "MessageAttributes=message_attribute_names", "",
     "MessageId", ""},
    {"sqs", "SendMessageBatch", "QueueUrl", "", "Entries=message_count", "",
     "Failed=failed_count Successful=successful_count"},
    {"sqs", "SetQueueAttributes", "QueueUrl", "Attributes=attribute_names", "", "", ""},
    {"lambda", "Invoke", "FunctionName InvocationType LogType Qualifier", "", "",
     "FunctionError StatusCode", ""},
    {"lambda", "InvokeAsync", "FunctionName", "", "", "Status", ""},
    {"s3", "CreateBucket", "Bucket=bucket_name", "", "", "", ""},
    {"s3", "DeleteBucket", "Bucket=bucket_name", "", "", "", ""},
    {"s3", "GetObject", "Key Bucket=bucket_name", "", "", "", ""},
    {"s3", "DeleteObject", "Key Bucket=bucket_name", "", "", "DeleteMarker", ""},
    {"s3", "DeleteObjects", "Bucket=bucket_name", "", "", "", ""},
    {"s3", "ListBuckets", "", "", "", "", ""},
    {"s3", "ListObjects", "Bucket=bucket_name", "", "", "", ""},
    {"s3", "PutObject", "Key Bucket=bucket_name", "", "", "", ""},
    {"s3", "PutBucketLogging", "Bucket=bucket_name", "", "", "", ""},
    {"s3", "PutBucketPolicy", "Bucket=bucket_name", "", "", "", ""},
    {"s3", "PutBucketTagging", "Bucket=bucket_name", "", "", "", ""},
    {"sns", "Publish", "TopicArn", "", "", "", ""},
};

const Rule* find_rule(std::string_view service, std::string_view operation) {
    for (const Rule& r : kRules) {
        if (r.service == service && r.operation == operation) return &r;
    }
    return nullptr;
}

// Calls f(wire, field) for each item of a rule list.
template <typename F>
void for_each_param(std::string_view list, F&& f) {
    while (!list.empty()) {
        const size_t sp = list.find(' ');
        const std::string_view item = list.substr(0, sp);
        if (!item.empty()) {
            const size_t eq = item.find('=');
            if (eq == std::string_view::npos) {
                f(item, snake_case(item));
            } else {
                f(item.substr(0, eq), std::string(item.substr(eq + 1)));
            }
        }
        if (sp == std::string_view::npos) break;
        list.remove_prefix(sp + 1);
    }
}

// Parameters as the call carried them, whatever the protocol: values are JSON (strings from
// query forms, REST paths and headers; any JSON from JSON bodies), plus map keys and list counts
// where the body shows them.
struct Params {
    std::vector<std::pair<std::string, nlohmann::json>> values;
    std::vector<std::pair<std::string, std::vector<std::string>>> keys;
    std::vector<std::pair<std::string, size_t>> counts;

    void set(std::string name, nlohmann::json v) {
        values.emplace_back(std::move(name), std::move(v));
    }
    const nlohmann::json* value(std::string_view name) const {
        for (const auto& [k, v] : values) {
            if (k == name) return &v;
        }
        return nullptr;
    }
};

// Everything a JSON body shows: scalars and small complete values, object keys, array counts.
void params_from_json(std::string_view body, Params& p) {
    for (JsonMember& m : scan_json_object(body)) {
        switch (m.kind) {
            case JsonKind::kString:
                if (m.complete) p.set(m.name, std::move(m.text));
                break;
            case JsonKind::kNumber:
            case JsonKind::kBool:
                if (m.complete) {
                    nlohmann::json v = nlohmann::json::parse(m.raw, nullptr, false);
                    if (!v.is_discarded()) p.set(m.name, std::move(v));
                }
                break;
            case JsonKind::kObject:
                // Map keys may be read even from a cut body: each one seen is real.
                p.keys.emplace_back(m.name, std::move(m.keys));
                [[fallthrough]];
            case JsonKind::kArray:
                if (m.complete) {
                    if (m.kind == JsonKind::kArray) p.counts.emplace_back(m.name, m.count);
                    nlohmann::json v = nlohmann::json::parse(m.raw, nullptr, false);
                    if (!v.is_discarded()) p.set(m.name, std::move(v));
                }
                break;
            case JsonKind::kNull:
                break;
        }
    }
}

// Numbers sent as text by the query protocol that the SDKs record as numbers.
bool numeric_param(std::string_view name) {
    return name == "DelaySeconds" || name == "VisibilityTimeout" || name == "MaxNumberOfMessages" ||
           name == "WaitTimeSeconds" || name == "Limit";
}

void params_from_form(const Pairs& pairs, Params& p) {
    for (const auto& [k, v] : pairs) {
        if (numeric_param(k) && !v.empty() && v.size() < 10 &&
            std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            p.set(k, std::stoll(v));
        } else {
            p.set(k, v);
        }
    }
}

// Content of the first <tag>…</tag> in an XML body prefix.
std::optional<std::string> xml_tag(std::string_view body, std::string_view tag) {
    const std::string open = "<" + std::string(tag) + ">";
    const std::string close = "</" + std::string(tag) + ">";
    const size_t a = body.find(open);
    if (a == std::string_view::npos) return std::nullopt;
    const size_t from = a + open.size();
    const size_t b = body.find(close, from);
    if (b == std::string_view::npos || b - from > kMaxValue) return std::nullopt;
    return std::string(body.substr(from, b - from));
}

bool is_form_type(const std::string* ct) {
    return ct && ct->find("x-www-form-urlencoded") != std::string::npos;
}

// ---- REST protocols --------------------------------------------------------------------------

struct Target {
    std::string path;  // decoded later per use; raw here
    Pairs query;
};

Target split_target(std::string_view target) {
    Target t;
    // absolute-form (proxies): drop scheme and authority
    if (const size_t scheme = target.find("://");
        scheme != std::string_view::npos && scheme < target.find('/')) {
        const size_t slash = target.find('/', scheme + 3);
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
    const size_t q = target.find('?');
    t.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) t.query = parse_pairs(target.substr(q + 1), false);
    return t;
}

std::string s3_operation(std::string_view method, bool has_bucket, bool has_key, const Pairs& q,
                         const Request& req) {
    if (const std::string* id = find_pair(q, "x-id"); id && !id->empty() && id->size() < 64) {
        return *id;  // the v3 SDKs name the operation themselves
    }
    auto sub = [&](std::string_view name) { return has_pair(q, name); };
    if (!has_bucket) return method == "GET" ? "ListBuckets" : "";
    if (!has_key) {
        static constexpr std::array<std::pair<std::string_view, std::string_view>, 13> kBucketSub =
            {{
                {"policy", "BucketPolicy"},
                {"tagging", "BucketTagging"},
                {"acl", "BucketAcl"},
                {"cors", "BucketCors"},
                {"lifecycle", "BucketLifecycleConfiguration"},
                {"versioning", "BucketVersioning"},
                {"website", "BucketWebsite"},
                {"notification", "BucketNotificationConfiguration"},
                {"encryption", "BucketEncryption"},
                {"logging", "BucketLogging"},
                {"replication", "BucketReplication"},
                {"location", "BucketLocation"},
                {"ownershipControls", "BucketOwnershipControls"},
            }};
        if (method == "GET") {
            if (sub("list-type")) return "ListObjectsV2";
            if (sub("uploads")) return "ListMultipartUploads";
            if (sub("versions")) return "ListObjectVersions";
            for (const auto& [s, name] : kBucketSub) {
                if (sub(s)) return "Get" + std::string(name);
            }
            return "ListObjects";
        }
        if (method == "PUT") {
            for (const auto& [s, name] : kBucketSub) {
                if (s != "location" && sub(s)) return "Put" + std::string(name);
            }
            return "CreateBucket";
        }
        if (method == "DELETE") {
            if (sub("lifecycle")) return "DeleteBucketLifecycle";
            for (const auto& [s, name] : kBucketSub) {
                if (s != "location" && sub(s)) return "Delete" + std::string(name);
            }
            return "DeleteBucket";
        }
        if (method == "HEAD") return "HeadBucket";
        if (method == "POST" && sub("delete")) return "DeleteObjects";
        return "";
    }
    const bool copy = find_header(req.headers, "x-amz-copy-source") != nullptr;
    if (method == "GET") {
        if (sub("uploadId")) return "ListParts";
        if (sub("tagging")) return "GetObjectTagging";
        if (sub("acl")) return "GetObjectAcl";
        if (sub("attributes")) return "GetObjectAttributes";
        return "GetObject";
    }
    if (method == "PUT") {
        if (sub("partNumber") && sub("uploadId")) return copy ? "UploadPartCopy" : "UploadPart";
        if (sub("tagging")) return "PutObjectTagging";
        if (sub("acl")) return "PutObjectAcl";
        return copy ? "CopyObject" : "PutObject";
    }
    if (method == "HEAD") return "HeadObject";
    if (method == "DELETE") {
        if (sub("uploadId")) return "AbortMultipartUpload";
        if (sub("tagging")) return "DeleteObjectTagging";
        return "DeleteObject";
    }
    if (method == "POST") {
        if (sub("uploads")) return "CreateMultipartUpload";
        if (sub("uploadId")) return "CompleteMultipartUpload";
        if (sub("restore")) return "RestoreObject";
        if (sub("select")) return "SelectObjectContent";
    }
    return "";
}

// S3: operation, Bucket and Key. `host_bucket` is the virtual-hosted bucket, if any.
void s3_rest(const Request& req, const Target& t, const std::string& host_bucket, AwsCall& call,
             Params& p) {
    std::string_view path = t.path;
    if (!path.empty() && path.front() == '/') path.remove_prefix(1);
    std::string bucket = host_bucket;
    std::string key;
    if (bucket.empty()) {
        const size_t slash = path.find('/');
        bucket = url_decode(path.substr(0, slash), false);
        key = slash == std::string_view::npos ? std::string()
                                              : url_decode(path.substr(slash + 1), false);
    } else {
        key = url_decode(path, false);
    }
    call.operation = s3_operation(req.method, !bucket.empty(), !key.empty(), t.query, req);
    if (!bucket.empty()) p.set("Bucket", bucket);
    if (!key.empty()) p.set("Key", key);
}

// Lambda: /2015-03-31/functions[/{name}[/invocations|/configuration|/code]],
// /2014-11-13/functions/{name}/invoke-async/
void lambda_rest(const Request& req, const Target& t, AwsCall& call, Params& p) {
    std::vector<std::string_view> seg;
    std::string_view path = t.path;
    while (!path.empty() && seg.size() < 8) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const size_t slash = path.find('/');
        seg.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash);
    }
    if (seg.size() < 2 || seg[1] != "functions") return;
    const std::string_view m = req.method;
    if (seg.size() == 2) {
        call.operation = m == "GET" ? "ListFunctions" : m == "POST" ? "CreateFunction" : "";
        return;
    }
    p.set("FunctionName", url_decode(seg[2], false));
    const std::string_view tail = seg.size() > 3 ? seg[3] : std::string_view{};
    if (tail == "invocations" && m == "POST") {
        call.operation = "Invoke";
        if (const std::string* v = find_header(req.headers, "X-Amz-Invocation-Type")) {
            p.set("InvocationType", *v);
        }
        if (const std::string* v = find_header(req.headers, "X-Amz-Log-Type")) p.set("LogType", *v);
        if (const std::string* v = find_pair(t.query, "Qualifier")) p.set("Qualifier", *v);
    } else if (tail == "invoke-async" && m == "POST") {
        call.operation = "InvokeAsync";
    } else if (tail.empty()) {
        call.operation = m == "GET" ? "GetFunction" : m == "DELETE" ? "DeleteFunction" : "";
    } else if (tail == "configuration") {
        call.operation = m == "GET"   ? "GetFunctionConfiguration"
                         : m == "PUT" ? "UpdateFunctionConfiguration"
                                      : "";
    } else if (tail == "code" && m == "PUT") {
        call.operation = "UpdateFunctionCode";
    }
}

// API Gateway Management API (WebSocket connections): /[stage/]@connections/{id}
bool connections_rest(const Request& req, const Target& t, AwsCall& call) {
    if (t.path.find("/@connections/") == std::string::npos) return false;
    const std::string_view m = req.method;
    call.operation = m == "POST"     ? "PostToConnection"
                     : m == "GET"    ? "GetConnection"
                     : m == "DELETE" ? "DeleteConnection"
                                     : "";
    return true;
}

// ---- errors ----------------------------------------------------------------------------------

// Error codes the AWS SDKs retry as throttling.
bool throttling_code(std::string_view code) {
    static constexpr std::array<std::string_view, 14> kCodes = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    };
    return std::find(kCodes.begin(), kCodes.end(), code) != kCodes.end();
}

// "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException" or
// "ThrottlingException:http://internal.amazon.com/…" -> the bare code.
std::string bare_code(std::string_view code) {
    if (const size_t hash = code.rfind('#'); hash != std::string_view::npos)
        code.remove_prefix(hash + 1);
    if (const size_t colon = code.find(':'); colon != std::string_view::npos)
        code = code.substr(0, colon);
    code = trim(code);
    if (code.size() > 128) return {};
    return std::string(code);
}

std::string error_code(const Response& resp) {
    if (const std::string* t = find_header(resp.headers, "x-amzn-ErrorType")) {
        std::string c = bare_code(*t);
        if (!c.empty()) return c;
    }
    const std::string_view body = resp.body_prefix;
    const std::vector<JsonMember> members = scan_json_object(body);
    for (std::string_view name : {"__type", "code", "Code"}) {
        if (const JsonMember* m = find_member(members, name);
            m && m->kind == JsonKind::kString && m->complete) {
            std::string c = bare_code(m->text);
            if (!c.empty()) return c;
        }
    }
    if (auto c = xml_tag(body, "Code")) return bare_code(*c);
    return {};
}

}  // namespace

// ---- public ----------------------------------------------------------------------------------

Result<EndpointSpec> parse_endpoint(std::string_view text) {
    if (text.empty()) return make_error("empty endpoint (expected HOST or HOST:PORT)");
    if (text.find("://") != std::string_view::npos) {
        return make_error("'" + std::string(text) + "': give HOST[:PORT], without a scheme");
    }
    if (text.find('/') != std::string_view::npos) {
        return make_error("'" + std::string(text) + "': give HOST[:PORT], without a path");
    }
    EndpointSpec e;
    std::string_view port_text;
    if (text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos)
            return make_error("'" + std::string(text) + "': missing ']'");
        e.host = to_lower(text.substr(1, close - 1));
        if (close + 1 < text.size()) {
            if (text[close + 1] != ':')
                return make_error("'" + std::string(text) + "': expected ':PORT' after ']'");
            port_text = text.substr(close + 2);
            if (port_text.empty()) return make_error("'" + std::string(text) + "': empty port");
        }
    } else {
        const size_t colon = text.rfind(':');
        if (colon != std::string_view::npos && text.find(':') != colon) {
            return make_error("'" + std::string(text) +
                              "': write IPv6 addresses as [ADDR] or [ADDR]:PORT");
        }
        e.host = to_lower(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = text.substr(colon + 1);
            if (port_text.empty()) return make_error("'" + std::string(text) + "': empty port");
        }
    }
    if (e.host.empty()) return make_error("'" + std::string(text) + "': empty host");
    if (e.host.size() > 253) return make_error("'" + std::string(text) + "': host name too long");
    for (char c : e.host) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == ':' || c == '_')) {
            return make_error("'" + std::string(text) + "': invalid character in host");
        }
    }
    if (!port_text.empty()) {
        e.port = parse_port(port_text);
        if (!e.port) return make_error("'" + std::string(text) + "': port must be 1-65535");
    }
    return e;
}

void set_options(Options o) { mutable_options() = std::move(o); }
const Options& options() { return mutable_options(); }

std::optional<CredentialScope> parse_sigv4(std::string_view value) {
    if (value.size() > kMaxValue) return std::nullopt;
    std::string_view scope = value;
    if (const size_t cred = value.find("Credential="); cred != std::string_view::npos) {
        scope = value.substr(cred + 11);
        scope = scope.substr(0, scope.find_first_of(", "));
    }
    // AKID/DATE/REGION/SERVICE/aws4_request (SigV4) or AKID/DATE/SERVICE/aws4_request (SigV4a)
    std::array<std::string_view, 6> parts{};
    size_t n = 0;
    while (n < parts.size()) {
        const size_t slash = scope.find('/');
        parts[n++] = scope.substr(0, slash);
        if (slash == std::string_view::npos) break;
        scope.remove_prefix(slash + 1);
    }
    if ((n != 5 && n != 4) || parts[n - 1] != "aws4_request") return std::nullopt;
    if (parts[0].empty() || parts[1].size() != 8 ||
        !std::all_of(parts[1].begin(), parts[1].end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    CredentialScope out;
    const std::string_view service = parts[n - 2];
    if (service.empty() || service.size() > 64 ||
        !std::all_of(service.begin(), service.end(), is_service_char)) {
        return std::nullopt;
    }
    out.service = std::string(service);
    if (n == 5) {
        const std::string_view region = parts[2];
        if (region.empty() || region.size() > 32 ||
            !std::all_of(region.begin(), region.end(), is_region_char)) {
            return std::nullopt;
        }
        out.region = std::string(region);
    }
    return out;
}

std::string service_name(std::string_view signing_name) {
    // The names the X-Ray SDK for Node.js gives AWS SDK v3 clients (client class minus "Client"),
    // which are also the SDKs' serviceId for the common services.
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 44> kNames = {{
        {"dynamodb", "DynamoDB"},
        {"sqs", "SQS"},
        {"sns", "SNS"},
        {"s3", "S3"},
        {"s3-object-lambda", "S3"},
        {"s3express", "S3"},
        {"lambda", "Lambda"},
        {"kinesis", "Kinesis"},
        {"firehose", "Firehose"},
        {"sts", "STS"},
        {"events", "EventBridge"},
        {"states", "SFN"},
        {"secretsmanager", "SecretsManager"},
        {"ssm", "SSM"},
        {"kms", "KMS"},
        {"logs", "CloudWatchLogs"},
        {"monitoring", "CloudWatch"},
        {"ses", "SES"},
        {"email", "SES"},
        {"iam", "IAM"},
        {"ec2", "EC2"},
        {"ecs", "ECS"},
        {"ecr", "ECR"},
        {"eks", "EKS"},
        {"cognito-idp", "CognitoIdentityProvider"},
        {"cognito-identity", "CognitoIdentity"},
        {"athena", "Athena"},
        {"glue", "Glue"},
        {"xray", "XRay"},
        {"appsync", "AppSync"},
        {"rds", "RDS"},
        {"rds-data", "RDSData"},
        {"elasticache", "ElastiCache"},
        {"dax", "DAX"},
        {"sagemaker", "SageMaker"},
        {"bedrock", "Bedrock"},
        {"execute-api", "ApiGatewayManagementApi"},
        {"apigateway", "APIGateway"},
        {"cloudformation", "CloudFormation"},
        {"route53", "Route53"},
        {"acm", "ACM"},
        {"autoscaling", "AutoScaling"},
        {"kinesisvideo", "KinesisVideo"},
        {"timestream", "TimestreamWrite"},
    }};
    for (const auto& [sig, name] : kNames) {
        if (sig == signing_name) return std::string(name);
    }
    return std::string(signing_name);
}

std::string snake_case(std::string_view name) {
    std::string out;
    auto is_up = [](char c) { return c >= 'A' && c <= 'Z'; };
    auto is_low = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    for (size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (is_up(c) && i > 0 &&
            (is_low(name[i - 1]) ||
             (is_up(name[i - 1]) && i + 1 < name.size() && is_low(name[i + 1])))) {
            out += '_';
        }
        out += lower(c);
    }
    return out;
}

nlohmann::json AwsCall::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    if (!operation.empty()) j["operation"] = operation;
    if (!region.empty()) j["region"] = region;
    if (!request_id.empty()) j["request_id"] = request_id;
    if (!id_2.empty()) j["id_2"] = id_2;
    j["retries"] = retries;
    for (auto it = resources.begin(); it != resources.end(); ++it) j[it.key()] = it.value();
    return j;
}

namespace {

struct Recognised {
    HostPort host;
    std::optional<CredentialScope> scope;
    bool aws_host = false;  // host is an AWS endpoint (labels: aws_host_labels(host.host))
    bool configured = false;
    std::string configured_bucket;
};

// Is this an AWS call at all, and what do the head's cheap facts say?
std::optional<Recognised> recognise(const Request& req) {
    if (!options().enabled) return std::nullopt;
    Recognised r;
    if (const std::string* host = find_header(req.headers, "Host")) r.host = split_host(*host);
    if (const std::string* auth = find_header(req.headers, "Authorization");
        auth && (istarts_with(*auth, "AWS4-HMAC-SHA256 ") ||
                 istarts_with(*auth, "AWS4-ECDSA-P256-SHA256 "))) {
        r.scope = parse_sigv4(*auth);
    }
    if (!r.host.host.empty()) {
        r.aws_host = aws_host_labels(r.host.host).has_value();
        r.configured = configured_endpoint(r.host, &r.configured_bucket);
    }
    if (!r.scope && (r.aws_host || r.configured)) {
        // Presigned URLs carry the scope in the query.
        const size_t q = req.target.find("X-Amz-Credential=");
        if (q != std::string::npos) {
            std::string_view v = std::string_view(req.target).substr(q + 17);
            v = v.substr(0, v.find('&'));
            r.scope = parse_sigv4(url_decode(v, false));
        }
    }
    if (!r.scope && !r.aws_host && !r.configured) return std::nullopt;
    return r;
}

}  // namespace

bool wants_body(const Request& request) { return recognise(request).has_value(); }

protocol::http1::BodyInterest body_interest(const Request& request) {
    using protocol::http1::KeepBody;
    if (!recognise(request)) return {};
    const bool json = find_header(request.headers, "X-Amz-Target") != nullptr;
    const bool query = is_form_type(find_header(request.headers, "Content-Type")) ||
                       request.target.find("Action=") != std::string::npos;
    if (json || query) return {true, KeepBody::kYes};
    return {false, KeepBody::kIfError};
}

namespace {

// The protocol decides where parameters are and which response bodies may be read: only JSON-
// and query-protocol answers are service data; S3 objects and Lambda payloads are the user's,
// and are never scanned.
enum class Protocol : uint8_t { kJson, kQuery, kRest };

// Fills signing name and region from the credential scope, the host name, or the X-Amz-Target
// header, and the bucket named by the host. False when the call cannot be named.
bool name_call(const Request& req, const Recognised& r, const std::string* amz_target,
               AwsCall& call, std::string& host_bucket) {
    host_bucket = r.configured_bucket;
    std::optional<HostFacts> hf;
    // The labels view r.host.host, so they are taken here, from the Recognised that stays put:
    // a short host name lives inside its std::string and moves with it.
    if (r.aws_host) {
        if (const auto labels = aws_host_labels(r.host.host)) hf = host_facts(*labels);
    }
    if (r.scope) {
        call.signing_name = r.scope->service;
        call.region = r.scope->region;
        if (call.region.empty()) {
            if (const std::string* set = find_header(req.headers, "X-Amz-Region-Set");
                set && set->size() < 64 && set->find(',') == std::string::npos && *set != "*") {
                call.region = trim(*set);
            }
        }
    }
    if (hf) {
        if (call.signing_name.empty()) call.signing_name = hf->signing_name;
        if (call.region.empty()) call.region = hf->region;
        if (call.signing_name == "s3" && host_bucket.empty()) host_bucket = hf->bucket;
    }
    if (call.signing_name.empty() && amz_target) {
        call.signing_name = signing_name_from_target(*amz_target);
    }
    return !call.signing_name.empty();  // false: an AWS-looking host we cannot name
}

// Operation and request parameters, wherever the protocol puts them.
Protocol read_request(const Request& req, const Target& t, const std::string* amz_target,
                      const std::string& host_bucket, AwsCall& call, Params& params) {
    Protocol protocol = Protocol::kRest;
    if (amz_target) {
        protocol = Protocol::kJson;
        const size_t dot = amz_target->rfind('.');
        call.operation =
            trim(dot == std::string::npos ? std::string_view(*amz_target)
                                          : std::string_view(*amz_target).substr(dot + 1));
        params_from_json(req.body_prefix, params);
    } else if (const std::string* action = find_pair(t.query, "Action")) {
        protocol = Protocol::kQuery;
        call.operation = *action;
        params_from_form(t.query, params);
    } else if (is_form_type(find_header(req.headers, "Content-Type")) ||
               (req.body_prefix.rfind("Action=", 0) == 0)) {
        protocol = Protocol::kQuery;
        const Pairs form = parse_pairs(req.body_prefix, true);
        if (const std::string* action = find_pair(form, "Action")) call.operation = *action;
        params_from_form(form, params);
    } else if (call.signing_name == "s3" || call.signing_name == "s3-object-lambda") {
        s3_rest(req, t, host_bucket, call, params);
    } else if (call.signing_name == "lambda") {
        lambda_rest(req, t, call, params);
    } else if (call.signing_name == "execute-api") {
        connections_rest(req, t, call);
    }
    if (call.operation.size() > 128) call.operation.clear();
    return protocol;
}

// Retries the SDK made before this attempt: amz-sdk-request "attempt=2; max=3" gives 1.
int sdk_retries(const Request& req) {
    const std::string* attempt = find_header(req.headers, "amz-sdk-request");
    if (!attempt) return 0;
    const size_t a = attempt->find("attempt=");
    if (a == std::string::npos) return 0;
    int n = 0;
    for (size_t i = a + 8;
         i < attempt->size() && (*attempt)[i] >= '0' && (*attempt)[i] <= '9' && n < 1000; ++i) {
        n = n * 10 + ((*attempt)[i] - '0');
    }
    return n > 0 ? n - 1 : 0;
}

// Request ids, error code and the response's parameters.
Params read_response(const Response& resp, Protocol protocol, AwsCall& call) {
    Params out;
    for (std::string_view h : {"x-amzn-RequestId", "x-amz-request-id", "x-amzn-request-id"}) {
        if (const std::string* v = find_header(resp.headers, h);
            v && !v->empty() && v->size() <= 256) {
            call.request_id = *v;
            break;
        }
    }
    if (const std::string* v = find_header(resp.headers, "x-amz-id-2"); v && v->size() <= 256) {
        call.id_2 = *v;
    }
    if (resp.status >= 400) {
        call.error_code = error_code(resp);
        call.throttled = throttling_code(call.error_code);
    } else if (protocol == Protocol::kJson) {
        params_from_json(resp.body_prefix, out);
    }
    if (call.signing_name == "lambda") {
        out.set("StatusCode", resp.status);
        if (call.operation == "InvokeAsync") out.set("Status", resp.status);
        if (const std::string* fe = find_header(resp.headers, "X-Amz-Function-Error")) {
            out.set("FunctionError", *fe);
        }
    }
    return out;
}

// Counts of `list` named by a rule's count items.
void set_counts(const std::vector<std::pair<std::string, size_t>>& counts, std::string_view list,
                AwsCall& call) {
    for_each_param(list, [&](std::string_view wire, const std::string& field) {
        for (const auto& [k, n] : counts) {
            if (k == wire) call.resources[field] = n;
        }
    });
}

// The resources the operation's rule names, from request and response parameters.
void set_resources(const Rule& rule, const Params& params, const Params& out, const Response* resp,
                   Protocol protocol, AwsCall& call) {
    for_each_param(rule.request, [&](std::string_view wire, const std::string& field) {
        if (const nlohmann::json* v = params.value(wire)) call.resources[field] = *v;
    });
    for_each_param(rule.req_keys, [&](std::string_view wire, const std::string& field) {
        for (const auto& [k, keys] : params.keys) {
            if (k == wire && !keys.empty()) call.resources[field] = keys;
        }
    });
    set_counts(params.counts, rule.req_count, call);
    for_each_param(rule.response, [&](std::string_view wire, const std::string& field) {
        if (const nlohmann::json* v = out.value(wire)) {
            call.resources[field] = *v;
        } else if (resp && resp->status < 400 && protocol == Protocol::kQuery) {
            // Query-protocol responses are XML.
            if (auto x = xml_tag(resp->body_prefix, wire)) call.resources[field] = *x;
        }
    });
    set_counts(out.counts, rule.resp_count, call);
}

}  // namespace

std::optional<AwsCall> classify(const Request& req, const Response* resp) {
    const std::optional<Recognised> r = recognise(req);
    if (!r) return std::nullopt;
    const std::string* amz_target = find_header(req.headers, "X-Amz-Target");
    if (amz_target && amz_target->size() > 256) amz_target = nullptr;
    AwsCall call;
    std::string host_bucket;
    if (!name_call(req, *r, amz_target, call, host_bucket)) return std::nullopt;

    const Target t = split_target(req.target);
    // An API Gateway endpoint is the user's own API (a `remote` call, as the SDKs record it),
    // except the WebSocket management calls made with the SDK client.
    if (call.signing_name == "execute-api" && t.path.find("/@connections/") == std::string::npos) {
        return std::nullopt;
    }
    call.service = service_name(call.signing_name);
    Params params;
    const Protocol protocol = read_request(req, t, amz_target, host_bucket, call, params);
    call.retries = sdk_retries(req);
    const Params out = resp ? read_response(*resp, protocol, call) : Params{};
    if (const Rule* rule = find_rule(call.signing_name, call.operation)) {
        set_resources(*rule, params, out, resp, protocol, call);
    }
    return call;
}

}  // namespace passport::aws
