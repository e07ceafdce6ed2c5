// The AWS call classifier on request shapes the AWS SDK for JavaScript v3 sends (headers as it
// writes them, lower case), the query protocol, REST mappings, configured endpoints, and hostile
// input.
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "userspace/aws/aws_call.hpp"

namespace passport::aws {
namespace {

using protocol::http1::Headers;
using protocol::http1::Request;
using protocol::http1::Response;

std::string auth(std::string_view region, std::string_view service) {
    return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/" + std::string(region) + "/" +
           std::string(service) +
           "/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;"
           "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target;x-amz-user-agent, "
           "Signature=6f1e0b0d3f9f6a1c2b3d4e5f60718293a4b5c6d7e8f90112233445566778899a";
}

Request sdk_request(std::string method, std::string target, std::string host, Headers extra,
                    const std::string& body = {}) {
    Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.version = "HTTP/1.1";
    r.headers = {
        {"host", std::move(host)},
        {"x-amz-user-agent", "aws-sdk-js/3.1169.0"},
        {"user-agent", "aws-sdk-js/3.1169.0 ua/2.1 os/linux#6.18 lang/js md/nodejs#20.20.2"},
        {"amz-sdk-invocation-id", "3b1e2f0c-5d1f-4a52-9b7a-1c2d3e4f5a6b"},
        {"amz-sdk-request", "attempt=1; max=3"},
        {"x-amz-date", "20261124T235959Z"},
        {"x-amz-content-sha256",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}};
    for (auto& h : extra) r.headers.push_back(std::move(h));
    r.headers.emplace_back("content-length", std::to_string(body.size()));
    r.body_bytes = body.size();
    r.body_prefix = body.substr(0, kBodyPrefixBytes);
    r.body_prefix_kept = true;
    return r;
}

Request dynamodb(const std::string& op, const std::string& body,
                 std::string host = "dynamodb.us-east-1.amazonaws.com") {
    return sdk_request("POST", "/", std::move(host),
                       {{"content-type", "application/x-amz-json-1.0"},
                        {"x-amz-target", "DynamoDB_20120810." + op},
                        {"authorization", auth("us-east-1", "dynamodb")}},
                       body);
}

Response json_response(
    int status, std::string body,
    std::string request_id = "REQ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCD") {
    Response r;
    r.status = status;
    r.version = "HTTP/1.1";
    r.headers = {{"x-amzn-RequestId", std::move(request_id)},
                 {"Content-Type", "application/x-amz-json-1.0"},
                 {"Content-Length", std::to_string(body.size())}};
    r.content_length = body.size();
    r.body_bytes = body.size();
    r.body_prefix = std::move(body);
    return r;
}

class AwsCallTest : public ::testing::Test {
  protected:
    void TearDown() override { set_options({}); }
};

TEST_F(AwsCallTest, DynamoDbPutItemGetItemQuery) {
    const Response ok = json_response(200, "{}");
    auto put = classify(
        dynamodb("PutItem", R"({"Item":{"pk":{"S":"a"},"n":{"N":"1"}},"TableName":"orders"})"),
        &ok);
    ASSERT_TRUE(put);
    EXPECT_EQ(put->service, "DynamoDB");
    EXPECT_EQ(put->operation, "PutItem");
    EXPECT_EQ(put->region, "us-east-1");
    EXPECT_EQ(put->request_id, "REQ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCD");
    EXPECT_EQ(put->retries, 0);
    EXPECT_EQ(
        put->to_json(),
        nlohmann::json::parse(
            R"({"operation":"PutItem","region":"us-east-1","request_id":"REQ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCD","retries":0,"table_name":"orders"})"));

    const Response item = json_response(200, R"({"Item":{"pk":{"S":"a"}}})");
    auto get = classify(
        dynamodb(
            "GetItem",
            R"({"ConsistentRead":true,"Key":{"pk":{"S":"a"}},"ProjectionExpression":"pk","TableName":"orders"})"),
        &item);
    ASSERT_TRUE(get);
    EXPECT_EQ(
        get->resources,
        nlohmann::json::parse(
            R"({"consistent_read":true,"projection_expression":"pk","table_name":"orders"})"));

    const Response q =
        json_response(200, R"({"Count":1,"Items":[{"pk":{"S":"x"}}],"ScannedCount":1})");
    auto query = classify(
        dynamodb(
            "Query",
            R"({"TableName":"orders","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"x"}},"Limit":10,"IndexName":"by-date","ScanIndexForward":false})"),
        &q);
    ASSERT_TRUE(query);
    EXPECT_EQ(
        query->resources,
        nlohmann::json::parse(
            R"({"table_name":"orders","limit":10,"index_name":"by-date","scan_index_forward":false})"));
    // Not whitelisted: the expression and its values stay out.
    EXPECT_FALSE(query->to_json().dump().find("pk = :p") != std::string::npos);
}

TEST_F(AwsCallTest, DynamoDbBatchWriteAndScanAndListTables) {
    const Response ok = json_response(200, R"({"UnprocessedItems":{}})");
    auto batch = classify(
        dynamodb(
            "BatchWriteItem",
            R"({"RequestItems":{"orders":[{"PutRequest":{"Item":{"pk":{"S":"1"}}}}],"audit":[{"DeleteRequest":{"Key":{"pk":{"S":"2"}}}}]}})"),
        &ok);
    ASSERT_TRUE(batch);
    EXPECT_EQ(batch->operation, "BatchWriteItem");
    EXPECT_EQ(batch->resources["table_names"], nlohmann::json::parse(R"(["orders","audit"])"));
    EXPECT_FALSE(batch->resources.contains("table_name"));

    const Response scanned = json_response(200, R"({"Count":3,"Items":[],"ScannedCount":7})");
    auto scan =
        classify(dynamodb("Scan", R"({"TableName":"t","Segment":1,"TotalSegments":4})"), &scanned);
    ASSERT_TRUE(scan);
    EXPECT_EQ(
        scan->resources,
        nlohmann::json::parse(
            R"({"table_name":"t","segment":1,"total_segments":4,"count":3,"scanned_count":7})"));

    const Response tables = json_response(200, R"({"TableNames":["a","b","c"]})");
    auto list = classify(dynamodb("ListTables", "{}"), &tables);
    ASSERT_TRUE(list);
    EXPECT_EQ(list->resources, nlohmann::json::parse(R"({"table_count":3})"));
}

TEST_F(AwsCallTest, DynamoDbBodyLargerThanThePrefix) {
    // TableName after a large item: past the kept prefix, so it cannot be named; the call still is.
    std::string body =
        R"({"Item":{"blob":{"S":")" + std::string(20000, 'x') + R"("}},"TableName":"late"})";
    auto put = classify(dynamodb("PutItem", body), nullptr);
    ASSERT_TRUE(put);
    EXPECT_EQ(put->operation, "PutItem");
    EXPECT_FALSE(put->resources.contains("table_name"));
    EXPECT_TRUE(put->request_id.empty());
}

TEST_F(AwsCallTest, SqsJsonProtocolSendMessage) {
    Request r = sdk_request(
        "POST", "/", "sqs.eu-west-1.amazonaws.com",
        {{"content-type", "application/x-amz-json-1.0"},
         {"x-amz-target", "AmazonSQS.SendMessage"},
         {"x-amzn-query-mode", "true"},
         {"authorization", auth("eu-west-1", "sqs")}},
        R"({"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs","MessageBody":"secret payload","DelaySeconds":5,"MessageAttributes":{"kind":{"DataType":"String","StringValue":"x"}}})");
    Response resp = json_response(
        200,
        R"({"MD5OfMessageBody":"0c2a6c5c2f7e3c1d4b5a697887766554","MessageId":"5fea7756-0ea4-451a-a703-a558b933e274"})",
        "c5b8a0b5-3a1f-5d0e-9f7c-0b9a8e7d6c5b");
    auto call = classify(r, &resp);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->service, "SQS");
    EXPECT_EQ(call->operation, "SendMessage");
    EXPECT_EQ(call->region, "eu-west-1");
    EXPECT_EQ(call->request_id, "c5b8a0b5-3a1f-5d0e-9f7c-0b9a8e7d6c5b");
    EXPECT_EQ(
        call->resources,
        nlohmann::json::parse(
            R"({"queue_url":"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs","delay_seconds":5,"message_attribute_names":["kind"],"message_id":"5fea7756-0ea4-451a-a703-a558b933e274"})"));
    EXPECT_EQ(call->to_json().dump().find("secret payload"), std::string::npos);
}

TEST_F(AwsCallTest, SqsQueryProtocolFormBody) {
    Request r =
        sdk_request("POST", "/", "sqs.us-west-2.amazonaws.com",
                    {{"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
                     {"authorization", auth("us-west-2", "sqs")}},
                    "Action=SendMessage&Version=2012-11-05&QueueUrl=https%3A%2F%2Fsqs.us-west-2."
                    "amazonaws.com%2F123456789012%2Fjobs&MessageBody=hi+there&DelaySeconds=3");
    Response resp;
    resp.status = 200;
    resp.headers = {{"x-amzn-RequestId", "7a62c49f-347e-4fc4-9331-6e8e7a96aa73"},
                    {"Content-Type", "text/xml"}};
    resp.body_prefix =
        "<SendMessageResponse><SendMessageResult><MD5OfMessageBody>"
        "fafb00f5732ab283681e124bf8747ed1</"
        "MD5OfMessageBody><MessageId>5fea7756-0ea4-451a-a703-a558b933e274</MessageId></"
        "SendMessageResult></SendMessageResponse>";
    auto call = classify(r, &resp);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->operation, "SendMessage");
    EXPECT_EQ(call->resources["queue_url"],
              "https://sqs.us-west-2.amazonaws.com/123456789012/jobs");
    EXPECT_EQ(call->resources["delay_seconds"], 3);
    EXPECT_EQ(call->resources["message_id"], "5fea7756-0ea4-451a-a703-a558b933e274");
}

TEST_F(AwsCallTest, SnsPublishAndStsQueryProtocol) {
    Request sns = sdk_request("POST", "/", "sns.ap-southeast-2.amazonaws.com",
                              {{"content-type", "application/x-www-form-urlencoded"},
                               {"authorization", auth("ap-southeast-2", "sns")}},
                              "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aap-"
                              "southeast-2%3A123456789012%3Aalerts&Message=disk%20full");
    auto call = classify(sns, nullptr);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->service, "SNS");
    EXPECT_EQ(call->operation, "Publish");
    EXPECT_EQ(call->region, "ap-southeast-2");
    EXPECT_EQ(
        call->resources,
        nlohmann::json::parse(R"({"topic_arn":"arn:aws:sns:ap-southeast-2:123456789012:alerts"})"));

    Request sts = sdk_request("POST", "/", "sts.amazonaws.com",
                              {{"content-type", "application/x-www-form-urlencoded"},
                               {"authorization", auth("us-east-1", "sts")}},
                              "Action=GetCallerIdentity&Version=2011-06-15");
    auto who = classify(sts, nullptr);
    ASSERT_TRUE(who);
    EXPECT_EQ(who->service, "STS");
    EXPECT_EQ(who->operation, "GetCallerIdentity");
    EXPECT_TRUE(who->resources.empty());
}

TEST_F(AwsCallTest, S3VirtualHostedAndPathStyle) {
    Response ok;
    ok.status = 200;
    ok.headers = {{"x-amz-request-id", "4442587FB7D0A2F9"},
                  {"x-amz-id-2",
                   "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo="}};
    Request get = sdk_request("GET", "/reports/2026/q4%20summary.pdf?x-id=GetObject",
                              "my-bucket.s3.eu-central-1.amazonaws.com",
                              {{"authorization", auth("eu-central-1", "s3")}});
    auto g = classify(get, &ok);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->service, "S3");
    EXPECT_EQ(g->operation, "GetObject");
    EXPECT_EQ(g->region, "eu-central-1");
    EXPECT_EQ(g->request_id, "4442587FB7D0A2F9");
    EXPECT_EQ(g->id_2,
              "vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=");
    EXPECT_EQ(g->resources,
              nlohmann::json::parse(
                  R"({"bucket_name":"my-bucket","key":"reports/2026/q4 summary.pdf"})"));

    // Path style, no x-id: method and shape decide.
    Request put = sdk_request("PUT", "/my.dotted.bucket/a/b.txt", "s3.us-west-2.amazonaws.com",
                              {{"authorization", auth("us-west-2", "s3")}}, "file contents");
    auto p = classify(put, &ok);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->operation, "PutObject");
    EXPECT_EQ(p->resources,
              nlohmann::json::parse(R"({"bucket_name":"my.dotted.bucket","key":"a/b.txt"})"));

    // Dotted bucket, virtual-hosted, legacy region form, no signature (public bucket).
    Request head = sdk_request("HEAD", "/k", "my.dotted.bucket.s3-us-west-2.amazonaws.com", {});
    auto h = classify(head, nullptr);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->operation, "HeadObject");
    EXPECT_EQ(h->region, "us-west-2");
    EXPECT_TRUE(h->resources.empty());  // HeadObject records nothing in the SDK whitelist

    struct Case {
        std::string method, target, op;
    };
    for (const Case& c :
         {Case{"GET", "/", "ListBuckets"}, Case{"GET", "/b?list-type=2&prefix=x", "ListObjectsV2"},
          Case{"GET", "/b", "ListObjects"}, Case{"PUT", "/b", "CreateBucket"},
          Case{"DELETE", "/b", "DeleteBucket"}, Case{"DELETE", "/b/k", "DeleteObject"},
          Case{"POST", "/b?delete", "DeleteObjects"}, Case{"HEAD", "/b", "HeadBucket"},
          Case{"POST", "/b/k?uploads", "CreateMultipartUpload"},
          Case{"PUT", "/b/k?partNumber=1&uploadId=u", "UploadPart"},
          Case{"GET", "/b?policy", "GetBucketPolicy"},
          Case{"PUT", "/b?tagging", "PutBucketTagging"}}) {
        SCOPED_TRACE(c.method + " " + c.target);
        auto call = classify(
            sdk_request(c.method, c.target, "s3.dualstack.us-east-2.amazonaws.com", {}), nullptr);
        ASSERT_TRUE(call);
        EXPECT_EQ(call->operation, c.op);
        EXPECT_EQ(call->region, "us-east-2");
    }
    auto copy = classify(
        sdk_request("PUT", "/b/dst", "s3.amazonaws.com", {{"x-amz-copy-source", "/b/src"}}),
        nullptr);
    ASSERT_TRUE(copy);
    EXPECT_EQ(copy->operation, "CopyObject");
    EXPECT_EQ(copy->region, "us-east-1");  // the global endpoint
}

TEST_F(AwsCallTest, LambdaInvokeRest) {
    Request r = sdk_request(
        "POST",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aresize/"
        "invocations?Qualifier=prod",
        "lambda.us-east-1.amazonaws.com",
        {{"content-type", "application/octet-stream"},
         {"x-amz-invocation-type", "RequestResponse"},
         {"x-amz-log-type", "Tail"},
         {"authorization", auth("us-east-1", "lambda")}},
        R"({"image":"..."})");
    Response resp;
    resp.status = 200;
    resp.headers = {{"x-amzn-RequestId", "9a1c0f1e-8b2d-4c3e-9f4a-5b6c7d8e9f00"},
                    {"X-Amz-Function-Error", "Unhandled"},
                    {"X-Amz-Executed-Version", "7"},
                    {"Content-Type", "application/json"}};
    // The function's own answer: user data, never read.
    resp.body_prefix = R"({"StatusCode":999,"FunctionError":"from the payload","TableName":"t"})";
    auto call = classify(r, &resp);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->service, "Lambda");
    EXPECT_EQ(call->operation, "Invoke");
    EXPECT_EQ(
        call->resources,
        nlohmann::json::parse(
            R"({"function_name":"arn:aws:lambda:us-east-1:123456789012:function:resize","invocation_type":"RequestResponse","log_type":"Tail","qualifier":"prod","function_error":"Unhandled","status_code":200})"));

    auto get = classify(sdk_request("GET", "/2015-03-31/functions/resize/configuration",
                                    "lambda.us-east-1.amazonaws.com", {}),
                        nullptr);
    ASSERT_TRUE(get);
    EXPECT_EQ(get->operation, "GetFunctionConfiguration");
    EXPECT_TRUE(get->resources.empty());
}

TEST_F(AwsCallTest, KinesisAndOtherJsonTargets) {
    Request r = sdk_request("POST", "/", "kinesis.us-east-1.amazonaws.com",
                            {{"content-type", "application/x-amz-json-1.1"},
                             {"x-amz-target", "Kinesis_20131202.PutRecord"},
                             {"authorization", auth("us-east-1", "kinesis")}},
                            R"({"Data":"aGk=","PartitionKey":"p","StreamName":"clicks"})");
    auto call = classify(r, nullptr);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->service, "Kinesis");
    EXPECT_EQ(call->operation, "PutRecord");
    EXPECT_TRUE(call->resources.empty());  // not in the SDK whitelist

    Request events = sdk_request(
        "POST", "/", "events.us-east-1.amazonaws.com",
        {{"x-amz-target", "AWSEvents.PutEvents"}, {"authorization", auth("us-east-1", "events")}},
        "{}");
    EXPECT_EQ(classify(events, nullptr)->service, "EventBridge");
}

TEST_F(AwsCallTest, RetriesFromTheSdkAttemptHeaderAndThrottlingCodes) {
    Request r = dynamodb("PutItem", R"({"TableName":"t"})");
    for (auto& [k, v] : r.headers) {
        if (k == "amz-sdk-request") v = "attempt=3; max=3";
    }
    Response throttled = json_response(
        400,
        R"({"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate of requests exceeds the allowed throughput."})");
    auto call = classify(r, &throttled);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->retries, 2);
    EXPECT_EQ(call->error_code, "ProvisionedThroughputExceededException");
    EXPECT_TRUE(call->throttled);
    EXPECT_EQ(call->resources["table_name"], "t");

    Response missing = json_response(
        400, R"({"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"})");
    auto notfound = classify(dynamodb("GetItem", R"({"TableName":"t"})"), &missing);
    ASSERT_TRUE(notfound);
    EXPECT_EQ(notfound->error_code, "ResourceNotFoundException");
    EXPECT_FALSE(notfound->throttled);

    Response header_code = json_response(400, "");
    header_code.headers.emplace_back(
        "x-amzn-ErrorType",
        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/");
    EXPECT_TRUE(classify(dynamodb("Query", "{}"), &header_code)->throttled);

    Response slow;
    slow.status = 503;
    slow.body_prefix =
        "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your request "
        "rate.</Message></Error>";
    auto s3 = classify(sdk_request("PUT", "/b/k", "b.s3.amazonaws.com", {}), &slow);
    ASSERT_TRUE(s3);
    EXPECT_EQ(s3->error_code, "SlowDown");
    EXPECT_TRUE(s3->throttled);
}

TEST_F(AwsCallTest, ConfiguredEndpointsAndSigV4OnAnyHost) {
    // A SigV4-signed call to a host Passport was not told about (LocalStack on loopback).
    Request local = dynamodb("PutItem", R"({"TableName":"orders"})", "127.0.0.1:4566");
    auto call = classify(local, nullptr);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->service, "DynamoDB");
    EXPECT_EQ(call->region, "us-east-1");

    // Plain traffic to the same host is not an AWS call until the endpoint is configured, and
    // then only when it can be named.
    Request plain;
    plain.method = "GET";
    plain.target = "/health";
    plain.headers = {{"Host", "localstack:4566"}};
    EXPECT_FALSE(classify(plain, nullptr));
    EXPECT_FALSE(wants_body(plain));

    Options o;
    o.endpoints.push_back(*parse_endpoint("LocalStack:4566"));
    set_options(o);
    EXPECT_TRUE(wants_body(plain));
    EXPECT_FALSE(classify(plain, nullptr));  // no signature, no target: nothing names a service

    Request unsigned_ddb = plain;
    unsigned_ddb.method = "POST";
    unsigned_ddb.target = "/";
    unsigned_ddb.headers.emplace_back("X-Amz-Target", "DynamoDB_20120810.GetItem");
    unsigned_ddb.body_prefix = R"({"TableName":"x"})";
    auto named = classify(unsigned_ddb, nullptr);
    ASSERT_TRUE(named);
    EXPECT_EQ(named->service, "DynamoDB");
    EXPECT_EQ(named->resources["table_name"], "x");

    // Virtual-hosted S3 under a configured endpoint.
    Request vh = sdk_request("GET", "/photo.jpg?x-id=GetObject", "media.localstack:4566",
                             {{"authorization", auth("eu-west-3", "s3")}});
    auto s3 = classify(vh, nullptr);
    ASSERT_TRUE(s3);
    EXPECT_EQ(s3->resources, nlohmann::json::parse(R"({"bucket_name":"media","key":"photo.jpg"})"));
    // Another port is another endpoint.
    plain.headers = {{"Host", "localstack:4567"}};
    EXPECT_FALSE(wants_body(plain));

    set_options(Options{.enabled = false, .endpoints = {}});
    EXPECT_FALSE(classify(local, nullptr));
    EXPECT_FALSE(wants_body(local));
}

TEST_F(AwsCallTest, ApiGatewayExecuteApiStaysRemote) {
    Request r = sdk_request("GET", "/prod/orders", "abc123.execute-api.us-east-1.amazonaws.com",
                            {{"authorization", auth("us-east-1", "execute-api")}});
    EXPECT_FALSE(classify(r, nullptr));
    Request ws = sdk_request("POST", "/prod/@connections/R0oXAdfD0kwCH6w%3D",
                             "abc123.execute-api.us-east-1.amazonaws.com",
                             {{"authorization", auth("us-east-1", "execute-api")}}, "hello");
    auto call = classify(ws, nullptr);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->service, "ApiGatewayManagementApi");
    EXPECT_EQ(call->operation, "PostToConnection");
}

TEST_F(AwsCallTest, FipsDualstackAndRegionalHosts) {
    struct Case {
        std::string host, service, region;
    };
    for (const Case& c :
         {Case{"dynamodb-fips.us-gov-west-1.amazonaws.com", "DynamoDB", "us-gov-west-1"},
          Case{"sqs.cn-north-1.amazonaws.com.cn", "SQS", "cn-north-1"},
          Case{"dynamodb.eu-west-1.api.aws", "DynamoDB", "eu-west-1"},
          Case{"lambda.ap-northeast-1.amazonaws.com:443", "Lambda", "ap-northeast-1"},
          Case{"bucket.s3.dualstack.sa-east-1.amazonaws.com", "S3", "sa-east-1"},
          Case{"vpce-0a1b2c3d-abcdefgh.sqs.us-east-1.vpce.amazonaws.com", "SQS", "us-east-1"},
          Case{"iam.amazonaws.com", "IAM", "us-east-1"}}) {
        SCOPED_TRACE(c.host);
        Request r;
        r.method = "GET";
        r.target = "/";
        r.headers = {{"Host", c.host}};
        auto call = classify(r, nullptr);
        ASSERT_TRUE(call);
        EXPECT_EQ(call->service, c.service);
        EXPECT_EQ(call->region, c.region);
    }
    // Not AWS: look-alike domains and plain hosts.
    for (std::string host :
         {"amazonaws.com", "example.com", "amazonaws.com.evil.example", "xamazonaws.com", ""}) {
        Request r;
        r.method = "GET";
        r.target = "/";
        r.headers = {{"Host", host}};
        EXPECT_FALSE(classify(r, nullptr)) << host;
    }
}

TEST_F(AwsCallTest, SigV4Parsing) {
    auto s = parse_sigv4(auth("us-east-1", "dynamodb"));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->region, "us-east-1");
    EXPECT_EQ(s->service, "dynamodb");
    auto a = parse_sigv4(
        "AWS4-ECDSA-P256-SHA256 Credential=AKID/20261124/s3/aws4_request, SignedHeaders=host, "
        "Signature=30");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->service, "s3");
    EXPECT_TRUE(a->region.empty());
    for (std::string bad :
         {"AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=",
          "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/s3/aws4_request",
          "AWS4-HMAC-SHA256 Credential=AKID/20261124/US EAST/s3/aws4_request",
          "AWS4-HMAC-SHA256 Credential=AKID/20261124/us-east-1/s3/aws5_request",
          "AWS4-HMAC-SHA256 Credential=/20261124/us-east-1/s3/aws4_request",
          "AWS4-HMAC-SHA256 Credential=A/B/C/D/E/F/G/aws4_request", "Basic dXNlcjpwYXNz"}) {
        EXPECT_FALSE(parse_sigv4(bad)) << bad;
    }
}

TEST_F(AwsCallTest, NamesAndSnakeCase) {
    EXPECT_EQ(service_name("dynamodb"), "DynamoDB");
    EXPECT_EQ(service_name("states"), "SFN");
    EXPECT_EQ(service_name("brand-new-service"), "brand-new-service");
    EXPECT_EQ(snake_case("TableName"), "table_name");
    EXPECT_EQ(snake_case("QueueUrl"), "queue_url");
    EXPECT_EQ(snake_case("QueueOwnerAWSAccountId"), "queue_owner_aws_account_id");
    EXPECT_EQ(snake_case("Key"), "key");
}

TEST_F(AwsCallTest, EndpointOptionParsing) {
    auto a = parse_endpoint("localhost");
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->port);
    auto b = parse_endpoint("[::1]:4566");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->host, "::1");
    EXPECT_EQ(b->port, 4566);
    for (std::string bad :
         {"", "http://x:1", "x:0", "x:99999", "x:", "::1", "[::1", "host/path", "a b"}) {
        EXPECT_FALSE(parse_endpoint(bad)) << bad;
    }
}

TEST_F(AwsCallTest, HostileInputNeverCrashesAndStaysSane) {
    // Huge header values, malformed authorization, binary bodies, absurd targets.
    Request r = dynamodb(
        "PutItem", std::string("\x00\xff\xfe{\"TableName\":", 16) + std::string(70000, '\x80'));
    r.headers.emplace_back("x-amz-target", std::string(100000, '.'));
    r.headers.emplace_back("Cookie", std::string(30000, 'c'));
    auto call = classify(r, nullptr);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->operation, "PutItem");  // the first X-Amz-Target counts
    EXPECT_FALSE(call->resources.contains("table_name"));

    Request weird;
    weird.method = "POST";
    weird.target = std::string(40000, '/') + "?Action=" + std::string(5000, 'A');
    weird.headers = {{"Host", std::string(300, 'a') + ".amazonaws.com"},
                     {"Authorization", "AWS4-HMAC-SHA256 Credential=" + std::string(10000, '/')},
                     {"amz-sdk-request", "attempt=99999999999999999999"}};
    weird.body_prefix = std::string(kBodyPrefixBytes, '\0');
    auto w = classify(weird, nullptr);  // too long a host to trust
    EXPECT_FALSE(w);

    Request s3 =
        sdk_request("GET", "/%zz/%%%?x-id=" + std::string(1000, 'X'), "s3.amazonaws.com", {});
    auto s = classify(s3, nullptr);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->resources["bucket_name"], "%zz");
    EXPECT_LE(s->operation.size(), 128u);

    Response bad;
    bad.status = 500;
    bad.headers = {{"x-amzn-RequestId", std::string(1000, 'r')},
                   {"x-amzn-ErrorType", std::string(1000, '#')}};
    bad.body_prefix = "<Code>" + std::string(10000, 'C');
    auto b = classify(dynamodb("GetItem", "{}"), &bad);
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->request_id.empty());
    EXPECT_TRUE(b->error_code.empty());
    EXPECT_NO_THROW((void)b->to_json().dump());
}

// Real request shapes with random bytes overwritten, inserted and cut: classify never crashes,
// and whatever it returns serialises.
TEST_F(AwsCallTest, MutatedRequestsAndResponsesStaySafe) {
    std::mt19937 rng(20261124);
    const std::vector<Request> seeds = {
        dynamodb("BatchWriteItem",
                 R"({"RequestItems":{"orders":[{"PutRequest":{"Item":{"pk":{"S":"1"}}}}]}})"),
        sdk_request("POST", "/", "sqs.us-west-2.amazonaws.com",
                    {{"content-type", "application/x-www-form-urlencoded"},
                     {"authorization", auth("us-west-2", "sqs")}},
                    "Action=SendMessage&QueueUrl=https%3A%2F%2Fq&DelaySeconds=3"),
        sdk_request("GET", "/b/k%20x?x-id=GetObject&versionId=1", "b.s3.eu-west-1.amazonaws.com",
                    {{"authorization", auth("eu-west-1", "s3")}}),
        sdk_request("POST", "/2015-03-31/functions/f/invocations", "lambda.us-east-1.amazonaws.com",
                    {}, "{}"),
    };
    const Response resp = json_response(200, R"({"MessageId":"m","Count":2,"TableNames":["a"]})");
    auto mutate = [&](std::string& text) {
        if (text.empty()) text = "x";
        switch (rng() % 4) {
            case 0:
                text[rng() % text.size()] = static_cast<char>(rng());
                break;
            case 1:
                text.insert(rng() % text.size(), 1, "%/.=&:\"{}[],\\\0"[rng() % 14]);
                break;
            case 2:
                text.resize(rng() % text.size());
                break;
            default:
                text += std::string(rng() % 64, static_cast<char>(rng()));
                break;
        }
    };
    for (int i = 0; i < 20000; ++i) {
        Request r = seeds[static_cast<size_t>(i) % seeds.size()];
        Response p = resp;
        for (int m = 0; m < 1 + static_cast<int>(rng() % 4); ++m) {
            switch (rng() % 5) {
                case 0:
                    mutate(r.target);
                    break;
                case 1:
                    mutate(r.body_prefix);
                    break;
                case 2:
                    mutate(r.headers[rng() % r.headers.size()].second);
                    break;
                case 3:
                    mutate(p.body_prefix);
                    break;
                default:
                    mutate(p.headers[rng() % p.headers.size()].second);
                    break;
            }
        }
        auto call = classify(r, &p);
        if (call) {
            EXPECT_FALSE(call->service.empty());
            EXPECT_LE(call->operation.size(), 128u);
            EXPECT_NO_THROW((void)call->to_json().dump(-1, ' ', false,
                                                       nlohmann::json::error_handler_t::replace));
        }
    }
}

// A host name short enough to live inside its std::string (no heap buffer): the host labels
// the service comes from must not point into a moved-from copy (seen under ASan as a read of a
// dead stack frame).
TEST_F(AwsCallTest, ShortHostNameIsReadFromLiveStorage) {
    for (const std::string host : {"sqs.api.aws", "s3.api.aws", "x.amazonaws.com"}) {
        const auto call = classify(sdk_request("POST", "/", host, {}), nullptr);
        ASSERT_TRUE(call.has_value()) << host;
        EXPECT_EQ(call->signing_name, host.substr(0, host.find('.'))) << host;
    }
}

}  // namespace
}  // namespace passport::aws
