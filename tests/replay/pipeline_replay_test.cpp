// Replay: a capture recorded from the real kernel (tests/replay/data) through the whole userspace
// pipeline — decode is skipped, everything after it runs — and the documents checked request by
// request. A second run re-splits every payload at random points to prove the result does not
// depend on how the kernel happened to chunk the bytes.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <regex>

#include "userspace/events/record_redactor.hpp"
#include "userspace/events/recording.hpp"
#include "userspace/pipeline/pipeline.hpp"
#include "userspace/report/summary.hpp"
#include "userspace/sample/rules.hpp"

namespace passport {
namespace {

constexpr const char* kCapture =
    PASSPORT_SOURCE_DIR "/tests/replay/data/demo_storefront_inventory.events.jsonl";

std::vector<events::Event> load_capture() {
    std::ifstream in(kCapture);
    auto r = events::read_recording(in);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error());
    return r.ok() ? std::move(*r) : std::vector<events::Event>{};
}

std::vector<nlohmann::json> replay(const std::vector<events::Event>& evs, Counters& counters) {
    ClockOffset clock(1'795'000'000'000'000'000LL);
    report::MemoryEmitter sink;
    auto rules = sample::parse_local_rules(
        R"({"version":2,"default":{"fixed_target":0,"rate":1.0},"rules":[]})");
    EXPECT_TRUE(rules.ok());
    pipeline::PipelineConfig cfg;
    cfg.correlator.configured_service_name = "replayed";
    cfg.proc_root = "/nonexistent-proc-for-replay";
    uint64_t n = 1;
    pipeline::Pipeline p(cfg, std::make_unique<sample::LocalSampler>(std::move(*rules)), sink,
                         counters, clock, [&n] { return n++ * 0x9E3779B97F4A7C15ULL; });
    for (const auto& e : evs) p.on_event(e);
    p.shutdown();
    size_t rejected = 0;
    auto docs = report::parse_datagrams(sink.datagrams(), &rejected);
    EXPECT_EQ(rejected, 0u);
    return docs;
}

// "(local port) status" -> count
std::map<std::string, int> by_port_and_status(const std::vector<nlohmann::json>& docs) {
    std::map<std::string, int> out;
    for (const auto& d : docs) {
        std::string local = d["metadata"]["passport"]["connection"]["local"];
        out[local.substr(local.rfind(':') + 1) + " " +
            std::to_string(d["http"]["response"]["status"].get<int>())]++;
    }
    return out;
}

TEST(ReplayDemoCapture, EveryRequestBecomesTheRightSegment) {
    Counters counters;
    auto docs = replay(load_capture(), counters);
    ASSERT_EQ(docs.size(), 36u);
    std::map<std::string, int> ports;
    for (const auto& d : docs) {
        EXPECT_TRUE(std::regex_match(d["id"].get<std::string>(), std::regex("[0-9a-f]{16}")));
        EXPECT_TRUE(std::regex_match(d["trace_id"].get<std::string>(),
                                     std::regex("1-[0-9a-f]{8}-[0-9a-f]{24}")));
        EXPECT_EQ(d["name"], "replayed");
        EXPECT_LE(d["start_time"].get<double>(), d["end_time"].get<double>());
        EXPECT_FALSE(d.contains("in_progress"));
        EXPECT_EQ(d["aws"]["xray"]["sdk"], "Passport");
        std::string local = d["metadata"]["passport"]["connection"]["local"];
        ports[local.substr(local.rfind(':') + 1)]++;
    }
    ASSERT_EQ(ports.size(), 2u);
    std::string shop, inv;
    for (const auto& [port, n] : ports) (n == 21 ? shop : inv) = port;
    ASSERT_FALSE(shop.empty());
    ASSERT_EQ(ports[inv], 15);
    auto counts = by_port_and_status(docs);
    EXPECT_EQ(counts[shop + " 200"], 9);
    EXPECT_EQ(counts[shop + " 429"], 3);
    EXPECT_EQ(counts[shop + " 404"], 6);
    EXPECT_EQ(counts[shop + " 500"], 3);
    EXPECT_EQ(counts[inv + " 200"], 12);
    EXPECT_EQ(counts[inv + " 404"], 3);

    // Same-node stitching: every inventory segment hangs under the storefront call that caused
    // it (same trace, parent = that subsegment), and every /buy/ request has exactly one call.
    std::map<std::string, const nlohmann::json*> calls_by_id;
    std::map<std::string, std::string> trace_of_call;
    for (const auto& d : docs) {
        std::string local = d["metadata"]["passport"]["connection"]["local"];
        if (local.substr(local.rfind(':') + 1) != shop) continue;
        std::string url = d["http"]["request"]["url"];
        size_t n = d.contains("subsegments") ? d["subsegments"].size() : 0;
        EXPECT_EQ(n, url.find("/buy/") != std::string::npos ? 1u : 0u) << url;
        if (!d.contains("subsegments")) continue;
        for (const auto& sub : d.at("subsegments")) {
            EXPECT_EQ(sub["namespace"], "remote");
            EXPECT_EQ(sub["name"], "127.0.0.1");
            EXPECT_EQ(sub["http"]["request"]["traced"], true);
            EXPECT_GE(sub["start_time"].get<double>(), d["start_time"].get<double>());
            EXPECT_LE(sub["end_time"].get<double>(), d["end_time"].get<double>());
            calls_by_id[sub["id"]] = &sub;
            trace_of_call[sub["id"]] = d["trace_id"];
        }
    }
    EXPECT_EQ(calls_by_id.size(), 15u);
    int continued = 0;
    for (const auto& d : docs) {
        int status = d["http"]["response"]["status"];
        EXPECT_EQ(d.value("error", false), status >= 400 && status < 500);
        EXPECT_EQ(d.value("throttle", false), status == 429);
        EXPECT_EQ(d.value("fault", false), status >= 500);
        std::string local = d["metadata"]["passport"]["connection"]["local"];
        if (local.substr(local.rfind(':') + 1) == inv) {
            ASSERT_TRUE(d.contains("parent_id"));
            ASSERT_TRUE(calls_by_id.count(d["parent_id"])) << d.dump();
            EXPECT_EQ(d["trace_id"], trace_of_call[d["parent_id"]]);
            const auto& sub = *calls_by_id[d["parent_id"]];
            EXPECT_EQ(sub["http"]["response"]["status"], status)
                << "the call saw the callee's status";
        } else if (d["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793") {
            continued++;
            EXPECT_EQ(d["parent_id"], "53995c3f42cd8ad8");
            EXPECT_EQ(d["http"]["request"]["user_agent"], "passport-demo-client/1.0");
        } else {
            EXPECT_FALSE(d.contains("parent_id"));
        }
    }
    EXPECT_EQ(continued, 1);
    EXPECT_EQ(counters.get("pairing.complete"), 36u + 15u)
        << "client side of the 15 inventory calls too";
}

TEST(ReplayDemoCapture, ResplitPayloadsGiveTheSameDocuments) {
    auto original = load_capture();
    std::mt19937 rng(7);
    std::vector<events::Event> split;
    for (const auto& e : original) {
        const auto* d = std::get_if<events::Data>(&e);
        if (!d || d->bytes.size() < 2 || d->bytes.size() != d->len) {
            split.push_back(e);
            continue;
        }
        // Cut into up to 4 pieces at random offsets, as if read by several syscalls.
        std::vector<size_t> cuts = {0, d->bytes.size()};
        for (int i = 0; i < 3; i++) cuts.push_back(1 + rng() % (d->bytes.size() - 1));
        std::sort(cuts.begin(), cuts.end());
        cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
        for (size_t i = 0; i + 1 < cuts.size(); i++) {
            events::Data piece = *d;
            piece.bytes = d->bytes.substr(cuts[i], cuts[i + 1] - cuts[i]);
            piece.len = static_cast<uint32_t>(piece.bytes.size());
            piece.pos = d->pos + cuts[i];
            split.emplace_back(piece);
        }
    }
    ASSERT_GT(split.size(), original.size());
    Counters c1, c2;
    auto a = replay(original, c1);
    auto b = replay(split, c2);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(by_port_and_status(a), by_port_and_status(b));
    for (size_t i = 0; i < a.size(); i++) {
        EXPECT_EQ(a[i]["http"], b[i]["http"]) << i;
        EXPECT_EQ(a[i].contains("parent_id"), b[i].contains("parent_id")) << i;
        EXPECT_EQ(a[i].value("subsegments", nlohmann::json::array()).size(),
                  b[i].value("subsegments", nlohmann::json::array()).size())
            << i;
        // Times depend only on the first and last byte's syscalls, which a split keeps.
        EXPECT_DOUBLE_EQ(a[i]["start_time"].get<double>(), b[i]["start_time"].get<double>()) << i;
        EXPECT_DOUBLE_EQ(a[i]["end_time"].get<double>(), b[i]["end_time"].get<double>()) << i;
    }
}

// A recording masked the way `passport --record` masks it replays to the same documents. The
// capture's User-Agent headers are renamed X-Auth-Key (same length) first, so there is something
// to mask in every request.
TEST(ReplayDemoCapture, MaskedRecordingGivesTheSameDocuments) {
    auto original = load_capture();
    size_t renamed = 0;
    for (auto& e : original) {
        auto* d = std::get_if<events::Data>(&e);
        for (size_t at = 0; d && (at = d->bytes.find("User-Agent:", at)) != std::string::npos;) {
            d->bytes.replace(at, 10, "X-Auth-Key");
            renamed++;
        }
    }
    ASSERT_GT(renamed, 0u);
    auto masked = original;
    events::RecordRedactor redactor(redact::Policy{});
    for (auto& e : masked) {
        if (auto* d = std::get_if<events::Data>(&e)) redactor.redact(*d);
        if (auto* c = std::get_if<events::ConnClose>(&e)) redactor.forget(c->conn);
    }
    for (const auto& e : masked) {
        if (const auto* d = std::get_if<events::Data>(&e)) {
            EXPECT_EQ(d->bytes.find("passport-demo-client"), std::string::npos) << d->bytes;
        }
    }
    Counters c1, c2;
    auto a = replay(original, c1);
    auto b = replay(masked, c2);
    ASSERT_EQ(a.size(), 36u);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); i++) EXPECT_EQ(a[i]["http"], b[i]["http"]) << i;
}

}  // namespace
}  // namespace passport
