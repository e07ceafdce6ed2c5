#include "userspace/report/summary.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace passport::report {
namespace {

using nlohmann::json;

double num(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

bool flag(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

struct Span {
    std::string id, parent, name, label;
    double start = 0, end = 0;
    bool error = false, fault = false, throttle = false;
    int status = 0;
};

void collect(const json& doc, const std::string& parent, std::vector<Span>& out) {
    Span s;
    s.id = str(doc, "id");
    s.parent = parent.empty() ? str(doc, "parent_id") : parent;
    s.name = str(doc, "name");
    s.start = num(doc, "start_time");
    s.end = doc.contains("end_time") ? num(doc, "end_time") : s.start;
    s.error = flag(doc, "error");
    s.fault = flag(doc, "fault");
    s.throttle = flag(doc, "throttle");
    if (doc.contains("http") && doc["http"].contains("request")) {
        const json& r = doc["http"]["request"];
        s.label = str(r, "method") + " " + str(r, "url");
        if (doc["http"].contains("response"))
            s.status = static_cast<int>(num(doc["http"]["response"], "status"));
    }
    out.push_back(s);
    if (doc.contains("subsegments") && doc["subsegments"].is_array())
        for (const json& sub : doc["subsegments"]) collect(sub, s.id, out);
}

}  // namespace

std::vector<json> parse_datagrams(const std::vector<std::string>& datagrams, size_t* rejected) {
    std::vector<json> out;
    size_t bad = 0;
    for (const std::string& d : datagrams) {
        auto nl = d.find('\n');
        json j = nl == std::string::npos ? json() : json::parse(d.substr(nl + 1), nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            bad++;
            continue;
        }
        out.push_back(std::move(j));
    }
    if (rejected) *rejected = bad;
    return out;
}

std::vector<ServiceRow> service_table(const std::vector<json>& documents) {
    std::map<std::string, ServiceRow> rows;
    std::map<std::string, double> total_ms;
    for (const json& d : documents) {
        if (d.contains("type")) continue;  // independent subsegments are not requests
        ServiceRow& r = rows[str(d, "name")];
        r.name = str(d, "name");
        r.requests++;
        if (d.contains("end_time"))
            total_ms[r.name] += (num(d, "end_time") - num(d, "start_time")) * 1000.0;
        r.error_pct += flag(d, "error");
        r.fault_pct += flag(d, "fault");
        r.throttle_pct += flag(d, "throttle");
    }
    std::vector<ServiceRow> out;
    for (auto& [name, r] : rows) {
        auto n = static_cast<double>(r.requests);
        r.avg_latency_ms = total_ms[name] / n;
        r.error_pct = 100.0 * r.error_pct / n;
        r.fault_pct = 100.0 * r.fault_pct / n;
        r.throttle_pct = 100.0 * r.throttle_pct / n;
        out.push_back(r);
    }
    return out;
}

std::string format_service_table(const std::vector<ServiceRow>& rows) {
    std::ostringstream o;
    char line[256];
    std::snprintf(line, sizeof line, "%-28s %9s %12s %8s %8s %9s\n", "service", "requests",
                  "avg latency", "error", "fault", "throttle");
    o << line;
    for (const auto& r : rows) {
        std::snprintf(line, sizeof line, "%-28.28s %9zu %9.2f ms %7.1f%% %7.1f%% %8.1f%%\n",
                      r.name.c_str(), r.requests, r.avg_latency_ms, r.error_pct, r.fault_pct,
                      r.throttle_pct);
        o << line;
    }
    return o.str();
}

std::string format_waterfall(const std::vector<json>& documents, size_t width) {
    std::map<std::string, std::vector<const json*>> traces;
    for (const json& d : documents) {
        std::string t = str(d, "trace_id");
        if (!t.empty()) traces[t].push_back(&d);
    }
    if (traces.empty()) return "(no traces)\n";
    const std::vector<const json*>* best = nullptr;
    std::string best_id;
    double best_start = 0;
    for (const auto& [id, docs] : traces) {
        double start = num(*docs.front(), "start_time");
        if (!best || docs.size() > best->size() ||
            (docs.size() == best->size() && start < best_start)) {
            best = &docs;
            best_id = id;
            best_start = start;
        }
    }
    std::vector<Span> spans;
    for (const json* d : *best) collect(*d, d->contains("type") ? str(*d, "parent_id") : "", spans);
    double t0 = spans.front().start, t1 = spans.front().end;
    for (const Span& s : spans) {
        t0 = std::min(t0, s.start);
        t1 = std::max(t1, s.end);
    }
    double span_s = std::max(t1 - t0, 1e-6);

    // Depth by parent chain inside this trace (by id, so the sort below cannot disturb it).
    std::map<std::string, std::string> parent_of;
    for (const Span& s : spans) parent_of[s.id] = s.parent;
    auto depth = [&](const Span& s) {
        int d = 0;
        std::string cur = s.parent;
        while (d < 16 && parent_of.count(cur)) {
            cur = parent_of[cur];
            d++;
        }
        return d;
    };
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.start < b.start; });

    std::ostringstream o;
    o << "trace " << best_id << "  ("
      << static_cast<double>(static_cast<long>(span_s * 1e6)) / 1000.0 << " ms)\n";
    for (const Span& s : spans) {
        auto from = static_cast<size_t>((s.start - t0) / span_s * static_cast<double>(width));
        size_t len = std::max<size_t>(
            1, static_cast<size_t>((s.end - s.start) / span_s * static_cast<double>(width)));
        from = std::min(from, width - 1);
        len = std::min(len, width - from);
        std::string bar =
            std::string(from, ' ') + std::string(len, '#') + std::string(width - from - len, ' ');
        std::string name = std::string(static_cast<size_t>(depth(s)) * 2, ' ') + s.name;
        char line[512];
        std::snprintf(line, sizeof line, "  %-30.30s |%s| %8.2f ms %s%s%s%s\n", name.c_str(),
                      bar.c_str(), (s.end - s.start) * 1000.0,
                      s.status ? std::to_string(s.status).c_str() : "", s.fault ? " fault" : "",
                      s.error ? " error" : "", s.throttle ? " throttle" : "");
        o << line;
        if (!s.label.empty())
            o << "  " << std::string(static_cast<size_t>(depth(s)) * 2 + 2, ' ')
              << s.label.substr(0, 100) << "\n";
    }
    return o.str();
}

}  // namespace passport::report
