// Secrets stay home: a Python http.server started with a password argument receives a request
// with a credential in the query and an Authorization header. The documents carry the query with
// the credential value replaced and none of the secrets; the --record file is 0600 and masked.
#include <sys/stat.h>

#include <fstream>

#include "tests/e2e/e2e_common.hpp"
#include "userspace/events/recording.hpp"

namespace passport::testing::e2e {
namespace {

constexpr std::string_view kServer = R"(import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "sess=c00k1e-from-server")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print("listening on port %d" % s.server_address[1], flush=True)
s.serve_forever()
)";

class SecretsE2E : public E2eTest {};

TEST_F(SecretsE2E, SecretsStayOutOfDocumentsAndRecordings) {
    const auto script = dir().write_file("secret_server.py", kServer);
    auto server =
        start_script_server({python3_path(), script.string(), "--db-password=hunter2"},
                            dir().path(), server_env({{"AWS_XRAY_TRACING_NAME", "secrets"}}));
    const auto record = dir().path() / "events.jsonl";
    start_agent({"--pid", std::to_string(server->pid()), "--record", record.string(),
                 "--export-process-args"});

    const std::string path = "/x-" + unique_tag();
    HttpResponse response =
        http_get(server->url(path + "?token=abc123&page=2"), {"Authorization: Bearer s3cr3t"});
    ASSERT_EQ(response.status, 200) << response.curl_stderr;

    auto doc = wait_for_url(path + "?token=REDACTED&page=2");
    ASSERT_TRUE(doc) << agent_diagnostics();
    EXPECT_TRUE(is_valid_segment(*doc));
    EXPECT_NE(doc->dump().find("--db-password=REDACTED"), std::string::npos) << brief(*doc);
    stop_agent_and_sync();

    for (const auto& d : collector().datagrams()) {
        for (const char* secret : {"abc123", "s3cr3t", "hunter2", "c00k1e-from-server"})
            EXPECT_EQ(d.raw.find(secret), std::string::npos) << secret << " in " << d.raw;
    }

    struct stat st {};
    ASSERT_EQ(::lstat(record.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    std::ifstream in(record);
    auto events = events::read_recording(in);
    ASSERT_TRUE(events.ok()) << events.error();
    bool saw_request = false;
    for (const auto& e : *events) {
        const auto* data = std::get_if<events::Data>(&e);
        if (!data) continue;
        saw_request =
            saw_request || data->bytes.find(path + "?token=******&page=2") != std::string::npos;
        for (const char* secret : {"abc123", "s3cr3t", "c00k1e-from-server"})
            EXPECT_EQ(data->bytes.find(secret), std::string::npos) << secret << " recorded";
    }
    EXPECT_TRUE(saw_request) << "the masked request line is not in the recording";
}

TEST_F(SecretsE2E, RecordRefusesASymlink) {
    const auto target = dir().write_file("target.txt", "keep");
    const auto link = dir().path() / "link.jsonl";
    std::filesystem::create_symlink(target, link);
    AgentOptions options;
    options.agent_path = agent_path();
    options.args = {"--record", link.string(), "--duration", "1"};
    try {
        AgentRunner agent(collector(), options);
        ADD_FAILURE() << "the agent started with --record pointing at a symbolic link";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
    }
    EXPECT_EQ(dir().read_file("target.txt"), "keep");
}

}  // namespace
}  // namespace passport::testing::e2e
