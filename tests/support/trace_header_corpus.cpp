#include "tests/support/trace_header_corpus.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>

#include "userspace/common/text.hpp"
#include "userspace/xray/trace_header.hpp"

namespace passport::testing {
namespace {

std::string expand(const std::string& line) {
    static const std::regex run(R"(\{(.)\*([0-9]+)\})");
    std::string out;
    auto it = std::sregex_iterator(line.begin(), line.end(), run);
    size_t last = 0;
    for (; it != std::sregex_iterator(); ++it) {
        const auto& m = *it;
        out += line.substr(last, static_cast<size_t>(m.position(0)) - last);
        out += std::string(std::stoul(m[2].str()), m[1].str()[0]);
        last = static_cast<size_t>(m.position(0) + m.length(0));
    }
    return out + line.substr(last);
}

// The value of the first header line named `name` (case-insensitive), trimmed, into value;
// false if there is none.
bool first_header(const HeaderCase& c, std::string_view name, std::string& value) {
    for (const auto& line : c.headers) {
        const size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        if (!text::iequals(text::trim(std::string_view(line).substr(0, colon)), name)) continue;
        value = std::string(text::trim(std::string_view(line).substr(colon + 1)));
        return true;
    }
    return false;
}

}  // namespace

std::vector<HeaderCase> load_trace_header_corpus() {
    std::ifstream in(std::string(PASSPORT_SOURCE_DIR) + "/tests/fixtures/trace_header_corpus.json");
    const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    std::vector<HeaderCase> out;
    if (!doc.is_object() || !doc.contains("cases")) return out;
    for (const auto& c : doc["cases"]) {
        HeaderCase hc;
        hc.name = c.value("name", "");
        for (const auto& h : c["headers"]) hc.headers.push_back(expand(h.get<std::string>()));
        hc.differs = c.value("differs", "");
        out.push_back(std::move(hc));
    }
    return out;
}

std::string describe(const HeaderReading& r) {
    return "trace=" + r.trace + " parent=" + (r.parent.empty() ? "-" : r.parent) +
           " sampled=" + (r.sampled ? "1" : "0");
}

std::string as_trace(const HeaderCase& c, const std::string& id) {
    if (id.empty()) return "new";
    const std::string want = text::to_lower(id);
    for (const auto& line : c.headers)
        if (text::to_lower(line).find(want) != std::string::npos) return id;
    return "new";
}

HeaderReading userspace_reading(const HeaderCase& c) {
    xray::TraceHeader th;
    std::string v;
    if (first_header(c, "X-Amzn-Trace-Id", v)) th = xray::parse_trace_header(v);
    if (!th.has_root() && first_header(c, "traceparent", v)) {
        xray::TraceHeader w3c = xray::parse_traceparent(v);
        if (w3c.has_root()) th = w3c;
    }
    HeaderReading r;
    r.trace = th.has_root() ? th.root : "new";
    r.parent = th.has_root() ? th.parent : "";
    r.sampled = th.sampled != xray::SampledFlag::kNotSampled || !th.has_root();
    return r;
}

std::string request_head(const HeaderCase& c, const std::string& target) {
    std::string head = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (const auto& h : c.headers) head += h + "\r\n";
    return head + "\r\n";
}

}  // namespace passport::testing
