// The real AWS SDK for JavaScript v3 (@aws-sdk/client-dynamodb, -sqs, -s3 from npm, pinned in
// tests/e2e/fixtures/aws_sdk/package-lock.json and installed by .ci/install-deps.sh) inside an
// unmodified Node service (fixtures/aws_sdk/aws_app.js) that calls a local endpoint answering
// like the services (fixtures/aws_sdk/fake_aws_endpoint.js, untraced), with the endpoint
// override and fake credentials an app would use against LocalStack. Each call must arrive as an
// `aws` subsegment of the request being served, named and filled as the X-Ray SDK's AWS
// instrumentation does, and carry the request id the SDK itself reported.
//
// The endpoint scheme is the test parameter: "http", and "https" (a certificate made here, which
// the SDK trusts through NODE_EXTRA_CA_CERTS; HttpsEndpointIsTrustedByTheSdk checks that), where
// the calls are seen as the plaintext of node's statically linked OpenSSL (docs/tls.md).
#include <fstream>

#include "tests/e2e/e2e_common.hpp"

namespace passport::testing::e2e {
namespace {

using nlohmann::json;

std::filesystem::path sdk_dir() {
    return std::filesystem::path(PASSPORT_SOURCE_DIR) / "tests" / "e2e" / "fixtures" / "aws_sdk";
}

// Environment that must not leak from the test runner into the app's SDK configuration.
const std::vector<std::string> kAwsEnv = {"AWS_PROFILE",
                                          "AWS_REGION",
                                          "AWS_DEFAULT_REGION",
                                          "AWS_ACCESS_KEY_ID",
                                          "AWS_SECRET_ACCESS_KEY",
                                          "AWS_SESSION_TOKEN",
                                          "AWS_ENDPOINT_URL",
                                          "AWS_CONFIG_FILE",
                                          "AWS_SHARED_CREDENTIALS_FILE"};

class AwsSdkE2E : public E2eTest, public ::testing::WithParamInterface<std::string> {
  protected:
    void SetUp() override {
        E2eTest::SetUp();
        if (IsSkipped()) return;
        ASSERT_TRUE(std::filesystem::exists(sdk_dir() / "node_modules" / "@aws-sdk" / "client-s3"))
            << "the AWS SDK packages are not installed: run .ci/install-deps.sh "
               "(it runs tests/e2e/fixtures/aws_sdk/install.sh)";
    }

    // The local service endpoint, over `scheme`; returns its base URL.
    std::string start_endpoint(const std::string& scheme) {
        std::vector<std::string> argv = {node_path(), (sdk_dir() / "fake_aws_endpoint.js").string(),
                                         scheme};
        if (scheme == "https") {
            make_certificate();
            argv.push_back(cert_.string());
            argv.push_back(key_.string());
        }
        endpoint_ = start_script_server(argv, dir().path(), server_env());
        return scheme + "://127.0.0.1:" + std::to_string(endpoint_->port());
    }

    void make_certificate() {
        cert_ = dir().path() / "endpoint-cert.pem";
        key_ = dir().path() / "endpoint-key.pem";
        CommandResult r = run_command(
            ChildOptions{{"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                          key_.string(), "-out", cert_.string(), "-days", "2", "-subj",
                          "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
                         {},
                         {},
                         dir().path()},
            deadline_in(std::chrono::seconds(60)));
        ASSERT_TRUE(r.status.success()) << r.err;
    }

    // The traced app, calling `endpoint`.
    std::unique_ptr<TestServer> start_app(const std::string& endpoint) {
        ServerOptions options = server_env({{"AWS_XRAY_TRACING_NAME", "aws-app"}});
        for (const auto& name : kAwsEnv) options.env_remove.push_back(name);
        if (!cert_.empty()) options.env["NODE_EXTRA_CA_CERTS"] = cert_.string();
        options.env["NODE_PATH"] = (sdk_dir() / "node_modules").string();
        return start_script_server({node_path(), (sdk_dir() / "aws_app.js").string(), endpoint},
                                   dir().path(), options);
    }

    // GET /ROUTE/TAG on the app: what the SDK reported for each call (operation, request_id,
    // attempts, message_id).
    json drive(TestServer& app, const std::string& path) {
        HttpResponse r = http_get(app.url(path));
        EXPECT_EQ(r.status, 200) << r.body << r.curl_stderr;
        json calls = json::parse(r.body, nullptr, false);
        EXPECT_TRUE(calls.is_array()) << r.body;
        return calls.is_array() ? calls : json::array();
    }

    static json first_exception(const json& sub) {
        const json exceptions = field(sub, "cause.exceptions");
        return exceptions.is_array() && !exceptions.empty() ? exceptions[0] : json::object();
    }

    static std::vector<json> aws_subsegments(const json& doc) {
        std::vector<json> out;
        for (const auto& s : doc.value("subsegments", json::array())) {
            if (s.value("namespace", "") == "aws") out.push_back(s);
        }
        return out;
    }

    // One call's subsegment against what the SDK said about the same call.
    static void expect_call(const json& sub, const std::string& service, const json& sdk,
                            const json& resources) {
        SCOPED_TRACE(sub.dump());
        EXPECT_EQ(sub.value("name", ""), service);
        EXPECT_EQ(sub.value("namespace", ""), "aws");
        const json aws = sub.value("aws", json::object());
        EXPECT_EQ(aws.value("operation", ""), sdk.value("operation", "?"));
        EXPECT_EQ(aws.value("region", ""), "us-west-2");
        EXPECT_EQ(aws.value("request_id", ""), sdk.value("request_id", "?"));
        EXPECT_EQ(aws.value("retries", -1), sdk.value("attempts", 0) - 1);
        for (auto it = resources.begin(); it != resources.end(); ++it) {
            EXPECT_EQ(aws.value(it.key(), json()), it.value()) << it.key();
        }
        // Nothing else from the request bodies: only whitelisted names.
        json known = {
            {"operation", 1}, {"region", 1}, {"request_id", 1}, {"retries", 1}, {"id_2", 1}};
        for (auto it = aws.begin(); it != aws.end(); ++it) {
            EXPECT_TRUE(known.contains(it.key()) || resources.contains(it.key()))
                << "unexpected aws." << it.key();
        }
        EXPECT_EQ(field(sub, "http.response.status"), 200);
        EXPECT_TRUE(field(sub, "http.request").is_null())
            << "the SDKs record no http.request for AWS calls";
        EXPECT_FALSE(sub.value("error", false) || sub.value("fault", false) ||
                     sub.value("throttle", false));
        EXPECT_TRUE(is_segment_id(sub.value("id", "")));
    }

    std::unique_ptr<TestServer> endpoint_;
    std::filesystem::path cert_;
    std::filesystem::path key_;
};

TEST_P(AwsSdkE2E, DynamoDbSqsAndS3CallsBecomeAwsSubsegments) {
    const std::string endpoint = start_endpoint(GetParam());
    auto app = start_app(endpoint);
    start_agent({"--pid", std::to_string(app->pid())});

    const std::string tag = unique_tag();
    struct Route {
        std::string path;
        std::string service;
        std::vector<json> resources;  // per call, in call order
    };
    const std::string queue = endpoint + "/123456789012/jobs";
    const std::string key = "reports/" + tag + ".txt";
    std::vector<Route> routes = {
        {"/ddb/" + tag,
         "DynamoDB",
         {{{"table_name", "orders"}},
          {{"table_name", "orders"}, {"consistent_read", true}},
          {{"table_name", "orders"}},
          {{"table_names", json::array({"orders", "audit"})}}}},
        {"/sqs/" + tag,
         "SQS",
         {{{"queue_url", queue}},
          {{"queue_url", queue}, {"max_number_of_messages", 1}, {"message_count", 1}}}},
        // ListObjectsV2 is not in the X-Ray SDK's S3 whitelist: operation only, like the SDK.
        {"/s3/" + tag,
         "S3",
         {{{"bucket_name", "media"}, {"key", key}},
          {{"bucket_name", "media"}, {"key", key}},
          json::object()}},
    };
    for (Route& route : routes) {
        SCOPED_TRACE(route.path);
        json sdk = drive(*app, route.path);
        ASSERT_EQ(sdk.size(), route.resources.size()) << sdk.dump();
        if (route.service == "SQS")
            route.resources[0]["message_id"] = sdk[0].value("message_id", "?");
        auto doc = wait_for_url(route.path);
        ASSERT_TRUE(doc) << agent_diagnostics();
        EXPECT_TRUE(is_valid_segment(*doc));
        EXPECT_EQ(field(*doc, "name"), "aws-app");
        std::vector<json> subs = aws_subsegments(*doc);
        ASSERT_EQ(subs.size(), route.resources.size()) << brief(*doc);
        for (size_t i = 0; i < subs.size(); ++i) {
            expect_call(subs[i], route.service, sdk[i], route.resources[i]);
            if (route.service == "S3") {
                EXPECT_FALSE(field(subs[i], "aws.id_2").is_null()) << "S3 answers carry x-amz-id-2";
            }
        }
        // No call was left as a plain remote subsegment.
        for (const auto& s : doc->value("subsegments", json::array())) {
            EXPECT_EQ(s.value("namespace", ""), "aws") << s.dump();
        }
    }
    AgentExit exit = stop_agent_and_sync();
    if (GetParam() == "https") {
        // The calls were read as TLS plaintext (node's static OpenSSL), the handshakes never
        // parsed.
        EXPECT_GE(exit.counter("stream.tls_connections"), 1u) << exit.counters_text();
        EXPECT_EQ(exit.counter("stream.non_http_connections"), 0u) << exit.counters_text();
    } else {
        EXPECT_EQ(exit.counter("stream.tls_connections"), 0u) << exit.counters_text();
    }
}

// Failed calls: a throttled DynamoDB write (400 + ProvisionedThroughputExceededException) is a
// throttle, as the SDKs see it, and a missing S3 key (404 NoSuchKey) an error; both carry the
// service's error code as a remote cause.
TEST_P(AwsSdkE2E, ServiceErrorsAndThrottlingAreFlagged) {
    const std::string endpoint = start_endpoint(GetParam());
    auto app = start_app(endpoint);
    start_agent({"--pid", std::to_string(app->pid())});

    const std::string tag = unique_tag();
    const std::string path = "/errors/" + tag;
    json sdk = drive(*app, path);
    ASSERT_EQ(sdk.size(), 2u);
    EXPECT_EQ(sdk[0].value("error", ""), "ProvisionedThroughputExceededException") << sdk.dump();
    EXPECT_EQ(sdk[1].value("error", ""), "NoSuchKey") << sdk.dump();
    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    std::vector<json> subs = aws_subsegments(*doc);
    ASSERT_EQ(subs.size(), 2u) << brief(*doc);

    const json& put = subs[0];
    EXPECT_EQ(put.value("name", ""), "DynamoDB") << put.dump();
    EXPECT_EQ(field(put, "aws.operation"), "PutItem");
    EXPECT_EQ(field(put, "aws.table_name"), "hot");
    EXPECT_EQ(field(put, "aws.request_id"), sdk[0].value("request_id", "?"));
    EXPECT_EQ(field(put, "http.response.status"), 400);
    EXPECT_TRUE(put.value("throttle", false)) << put.dump();
    EXPECT_TRUE(put.value("error", false));
    EXPECT_FALSE(put.value("fault", false));
    EXPECT_EQ(first_exception(put).value("type", ""), "ProvisionedThroughputExceededException")
        << put.dump();
    EXPECT_EQ(first_exception(put).value("remote", false), true);

    const json& get = subs[1];
    EXPECT_EQ(get.value("name", ""), "S3") << get.dump();
    EXPECT_EQ(field(get, "aws.operation"), "GetObject");
    EXPECT_EQ(field(get, "aws.bucket_name"), "media");
    EXPECT_EQ(field(get, "aws.key"), "missing/" + tag);
    EXPECT_EQ(field(get, "aws.request_id"), sdk[1].value("request_id", "?"));
    EXPECT_EQ(field(get, "http.response.status"), 404);
    EXPECT_TRUE(get.value("error", false));
    EXPECT_FALSE(get.value("throttle", false) || get.value("fault", false));
    EXPECT_EQ(first_exception(get).value("type", ""), "NoSuchKey") << get.dump();
}

TEST_P(AwsSdkE2E, TurnedOffTheCallsStayRemote) {
    const std::string endpoint = start_endpoint(GetParam());
    auto app = start_app(endpoint);
    start_agent({"--pid", std::to_string(app->pid()), "--no-aws-calls"});

    const std::string path = "/sqs/" + unique_tag();
    json sdk = drive(*app, path);
    ASSERT_EQ(sdk.size(), 2u);
    auto doc = wait_for_url(path);
    ASSERT_TRUE(doc) << agent_diagnostics();
    const json subs = doc->value("subsegments", json::array());
    ASSERT_EQ(subs.size(), 2u) << brief(*doc);
    for (const auto& s : subs) {
        EXPECT_EQ(s.value("namespace", ""), "remote");
        EXPECT_EQ(s.value("name", ""), "127.0.0.1");
        EXPECT_FALSE(s.contains("aws"));
    }
}

INSTANTIATE_TEST_SUITE_P(Http, AwsSdkE2E, ::testing::Values(std::string("http")));
INSTANTIATE_TEST_SUITE_P(Https, AwsSdkE2E, ::testing::Values(std::string("https")));

// The HTTPS endpoint works with the real SDK (no agent involved): switching the scheme above is
// all the TLS variant needs.
class AwsSdkEndpointE2E : public AwsSdkE2E {};

TEST_F(AwsSdkEndpointE2E, HttpsEndpointIsTrustedByTheSdk) {
    const std::string endpoint = start_endpoint("https");
    ASSERT_EQ(endpoint.rfind("https://", 0), 0u);
    auto app = start_app(endpoint);
    for (const std::string route : {"/ddb/", "/sqs/", "/s3/"}) {
        json sdk = drive(*app, route + unique_tag());
        EXPECT_FALSE(sdk.empty()) << route;
        for (const auto& call : sdk)
            EXPECT_FALSE(call.value("request_id", "").empty()) << call.dump();
    }
}

}  // namespace
}  // namespace passport::testing::e2e
