// The configuration file: every key of the option table gives the same Config as its flag, the
// command line wins over the file, and bad files are refused naming the file, the line and the key.
#include "agent/config_file.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace passport::agent {
namespace {

using passport::testing::TempDir;

// Values tried, in order, until an option accepts one that is not its default; an option added to
// the table that accepts none of them fails KeysRoundTripToTheirFlags until a value it accepts is
// added here.
constexpr std::array<const char*, 16> kCandidateValues = {"8",          "127.0.0.1:2000",
                                                          "10.0.0.0/8", "example.com",
                                                          "json",       "auto",
                                                          "app=web",    "deployment/web",
                                                          "/",          "x",
                                                          "0.5",        "off",
                                                          "64",         "shop/Deployment/cart=cart",
                                                          "keep",       "local"};

// The first candidate the option accepts and that changes the Config from the defaults.
std::string first_accepted_value(const std::string& flag) {
    const auto defaults = parse_args({}, nullptr);
    for (const char* v : kCandidateValues) {
        auto c = parse_args({flag, v}, nullptr);
        if (c.ok() && !(*c == *defaults)) return v;
    }
    return {};
}

// A YAML scalar in double quotes, so "8" stays the text the flag would get.
std::string quoted(const std::string& v) { return "\"" + v + "\""; }

class ConfigFile : public ::testing::Test {
  protected:
    Result<Config> from_file(const std::string& yaml, std::vector<std::string> flags = {}) {
        auto path = dir_.write_file("passport.yaml", yaml);
        flags.insert(flags.begin(), {"--config", path.string()});
        return parse_args(flags, nullptr);
    }
    std::string path() const { return (dir_.path() / "passport.yaml").string(); }

    // The error of a file that must be refused.
    std::string refusal(const std::string& yaml) {
        auto c = from_file(yaml);
        EXPECT_FALSE(c.ok()) << "accepted:\n" << yaml;
        return c.ok() ? std::string() : c.error();
    }

    TempDir dir_{"passport-config-"};
};

TEST_F(ConfigFile, KeysRoundTripToTheirFlags) {
    const auto rows = option_rows();
    ASSERT_GT(rows.size(), 20u);
    for (const auto& row : rows) {
        SCOPED_TRACE(row.flag);
        const auto key = config_key(row.flag);
        ASSERT_FALSE(key.empty());
        std::vector<std::string> flag_args{row.flag};
        std::string yaml = key.name + ": ";
        if (row.takes_value) {
            const std::string v = first_accepted_value(row.flag);
            ASSERT_FALSE(v.empty()) << "no candidate value is accepted by " << row.flag;
            flag_args.push_back(v);
            yaml += quoted(v);
        } else {
            yaml += key.negated ? "false" : "true";
        }
        auto by_flag = parse_args(flag_args, nullptr);
        ASSERT_TRUE(by_flag.ok()) << by_flag.error();
        auto by_file = from_file(yaml + "\n");
        ASSERT_TRUE(by_file.ok()) << by_file.error();
        by_file->config_file.clear();
        EXPECT_TRUE(*by_flag == *by_file) << yaml;
        EXPECT_FALSE(*by_file == *parse_args({}, nullptr)) << yaml << " changed nothing";
    }
}

TEST_F(ConfigFile, KeyNamesFollowTheFlags) {
    EXPECT_EQ(config_key("--daemon-address").name, "daemon_address");
    EXPECT_EQ(config_key("--max-connections").name, "max_connections");
    EXPECT_EQ(config_key("--no-tls").name, "tls");
    EXPECT_TRUE(config_key("--no-tls").negated);
    EXPECT_TRUE(config_key("-v").empty());
}

TEST_F(ConfigFile, ListsAndJson) {
    auto c = from_file("pid: [12, 13]\nexe:\n  - nginx\n  - 'python3*'\nport: 8080\n");
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->pids, (std::vector<uint32_t>{12, 13}));
    EXPECT_EQ(c->exe_globs, (std::vector<std::string>{"nginx", "python3*"}));
    EXPECT_EQ(c->ports, (std::vector<uint16_t>{8080}));
    auto j = from_file(R"({"pid": [12, 13], "tls": false, "ringbuf_mb": 16, "verbose": true})");
    ASSERT_TRUE(j.ok()) << j.error();
    EXPECT_EQ(j->pids, (std::vector<uint32_t>{12, 13}));
    EXPECT_FALSE(j->tls);
    EXPECT_EQ(j->ringbuf_mb, 16u);
    EXPECT_TRUE(j->verbose);
    EXPECT_TRUE(from_file("").ok());
    EXPECT_TRUE(from_file("# nothing\n").ok());
}

TEST_F(ConfigFile, FlagsOverrideTheFile) {
    auto c = from_file("pid: [12, 13]\nringbuf_mb: 16\ntls: false\nservice_name: file\n",
                       {"--pid", "7", "--ringbuf-mb=32", "--service-name", "flag"});
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c->pids, (std::vector<uint32_t>{7}));
    EXPECT_EQ(c->ringbuf_mb, 32u);
    EXPECT_EQ(c->service_name, "flag");
    EXPECT_FALSE(c->tls);  // not given on the command line: the file's
    auto env =
        parse_args({"--config", dir_.write_file("d.yaml", "daemon_address: 10.0.0.9:2000\n")},
                   "10.0.0.5:2000");
    ASSERT_TRUE(env.ok()) << env.error();
    EXPECT_EQ(env->daemon_address, "10.0.0.9:2000") << "the file's key wins over the environment";
}

TEST_F(ConfigFile, SettingsNameEachKeyGiven) {
    dir_.write_file("passport.yaml", "exe: [nginx]\ntls: false\n");
    Settings s;
    auto c = parse_args({"--config", path(), "--port", "80", "-v"}, nullptr, &s);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(s["exe"], (std::vector<std::string>{"nginx"}));
    EXPECT_EQ(s["tls"], (std::vector<std::string>{"false"}));
    EXPECT_EQ(s["port"], (std::vector<std::string>{"80"}));
    EXPECT_EQ(s["verbose"], (std::vector<std::string>{"true"}));
}

TEST_F(ConfigFile, BadFilesNameFileLineAndKey) {
    auto unknown = refusal("pid: 1\n\ndeamon_address: 127.0.0.1:2000\n");
    EXPECT_NE(unknown.find(path() + ":3:"), std::string::npos) << unknown;
    EXPECT_NE(unknown.find("deamon_address"), std::string::npos) << unknown;

    auto range = refusal("service_name: shop\nringbuf_mb: 3\n");
    EXPECT_NE(range.find(path() + ":2:"), std::string::npos) << range;
    EXPECT_NE(range.find("ringbuf_mb"), std::string::npos) << range;
    EXPECT_NE(range.find("power of two"), std::string::npos) << range;

    auto number = refusal("pid:\n  - 12\n  - twelve\n");
    EXPECT_NE(number.find(path() + ":3:"), std::string::npos) << number;
    EXPECT_NE(number.find("pid"), std::string::npos) << number;

    auto flag_type = refusal("tls: maybe\n");
    EXPECT_NE(flag_type.find(path() + ":1:"), std::string::npos) << flag_type;
    EXPECT_NE(flag_type.find("expected true or false"), std::string::npos) << flag_type;

    auto not_a_list = refusal("\ndaemon_address: [127.0.0.1:2000, 127.0.0.1:2001]\n");
    EXPECT_NE(not_a_list.find(path() + ":2:"), std::string::npos) << not_a_list;
    EXPECT_NE(not_a_list.find("not repeatable"), std::string::npos) << not_a_list;

    auto mapping = refusal("exe: {a: b}\n");
    EXPECT_NE(mapping.find("exe: expected a value or a list"), std::string::npos) << mapping;

    auto twice = refusal("port: 80\nport: 81\n");
    EXPECT_NE(twice.find(path() + ":2:"), std::string::npos) << twice;

    auto syntax = refusal("pid: [1, 2\n");
    EXPECT_NE(syntax.find("not valid YAML"), std::string::npos) << syntax;
    EXPECT_NE(refusal("- pid\n").find("expected keys and values"), std::string::npos);
    EXPECT_NE(refusal("log_format: xml\n").find("log_format"), std::string::npos);
    EXPECT_NE(refusal("summary_interval: -1\n").find("summary_interval"), std::string::npos);
    EXPECT_NE(refusal("summary_interval: 0.001\n").find("summary_interval"), std::string::npos);
    EXPECT_TRUE(from_file("summary_interval: 0\n").ok());

    auto missing = parse_args({"--config", (dir_.path() / "absent.yaml").string()}, nullptr);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().find("absent.yaml: cannot read"), std::string::npos);
}

// The file the package installs as /etc/passport/passport.yaml parses, and selects no process:
// the agent must not trace (and inject into) every process of a host it was just installed on.
TEST(ShippedConfig, ParsesAndTracesNothingByDefault) {
    auto c = parse_args({"--config", PASSPORT_SOURCE_DIR "/packaging/passport.yaml"}, nullptr);
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_FALSE(c->trace_all());
    EXPECT_TRUE(c->pids.empty());
    for (const auto& glob : c->exe_globs) {
        for (const char* program : {"/usr/sbin/nginx", "/usr/bin/python3", "/usr/bin/node",
                                    "/usr/bin/java", "/usr/lib/systemd/systemd", "/bin/sh"})
            EXPECT_FALSE(exe_matches(glob, program, "")) << glob << " selects " << program;
    }
    EXPECT_EQ(c->daemon_address, "127.0.0.1:2000");
}

}  // namespace
}  // namespace passport::agent
