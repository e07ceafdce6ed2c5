#include "userspace/sample/rules.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

namespace passport::sample {
namespace {

using nlohmann::json;

Error rule_error(const std::string& where, const std::string& what) {
    return make_error("sampling rules: " + where + ": " + what);
}

// Reads fixed_target and rate into rule; both are required.
Result<bool> read_numbers(const json& object, const std::string& where, LocalRule& rule) {
    const auto target = object.find("fixed_target");
    if (target == object.end()) return rule_error(where, "fixed_target is required");
    if (!target->is_number_integer() || *target < 0 ||
        *target > std::numeric_limits<uint32_t>::max()) {
        return rule_error(where, "fixed_target must be a non-negative integer");
    }
    rule.fixed_target = target->get<uint32_t>();

    const auto rate = object.find("rate");
    if (rate == object.end()) return rule_error(where, "rate is required");
    if (!rate->is_number()) return rule_error(where, "rate must be a number");
    const double value = rate->get<double>();
    if (!std::isfinite(value) || value < 0 || value > 1) {
        return rule_error(where, "rate must be between 0 and 1");
    }
    rule.rate = value;
    return true;
}

// Reads a required string field; the error names the field.
Result<std::string> read_pattern(const json& object, const std::string& where, const char* field) {
    const auto it = object.find(field);
    if (it == object.end()) return rule_error(where, std::string(field) + " is required");
    if (!it->is_string()) return rule_error(where, std::string(field) + " must be a string");
    return it->get<std::string>();
}

Result<LocalRule> read_rule(const json& object, int version, size_t index) {
    const std::string where = "rules[" + std::to_string(index) + "]";
    if (!object.is_object()) return rule_error(where, "must be an object");
    LocalRule rule;

    const char* host_field = version == 1 ? "service_name" : "host";
    const char* forbidden = version == 1 ? "host" : "service_name";
    if (object.contains(forbidden)) {
        return rule_error(where, std::string(forbidden) + " is not allowed in version " +
                                     std::to_string(version) + " rules");
    }
    auto host = read_pattern(object, where, host_field);
    if (!host) return make_error(host.error());
    auto method = read_pattern(object, where, "http_method");
    if (!method) return make_error(method.error());
    auto path = read_pattern(object, where, "url_path");
    if (!path) return make_error(path.error());
    rule.host = std::move(*host);
    rule.http_method = std::move(*method);
    rule.url_path = std::move(*path);

    if (auto numbers = read_numbers(object, where, rule); !numbers) {
        return make_error(numbers.error());
    }
    if (const auto d = object.find("description"); d != object.end() && d->is_string()) {
        rule.name = d->get<std::string>();
    }
    if (rule.name.empty()) rule.name = "rule-" + std::to_string(index + 1);
    return rule;
}

}  // namespace

LocalRules default_local_rules() {
    LocalRules rules;
    rules.version = 2;
    rules.default_rule.name = std::string(kDefaultRuleName);
    rules.default_rule.fixed_target = 1;
    rules.default_rule.rate = 0.05;
    return rules;
}

Result<LocalRules> parse_local_rules(std::string_view json_text) {
    const json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return make_error("sampling rules: not valid JSON");
    if (!doc.is_object()) return make_error("sampling rules: the document must be an object");

    LocalRules rules;
    const auto version = doc.find("version");
    if (version == doc.end()) return make_error("sampling rules: version is required");
    if (!version->is_number_integer() || (*version != 1 && *version != 2)) {
        return make_error("sampling rules: version must be 1 or 2");
    }
    rules.version = version->get<int>();

    const auto def = doc.find("default");
    if (def == doc.end()) return make_error("sampling rules: default is required");
    if (!def->is_object()) return make_error("sampling rules: default must be an object");
    for (const char* field : {"host", "service_name", "http_method", "url_path"}) {
        if (def->contains(field)) {
            return rule_error("default", std::string(field) + " is not allowed");
        }
    }
    rules.default_rule.name = std::string(kDefaultRuleName);
    if (auto numbers = read_numbers(*def, "default", rules.default_rule); !numbers) {
        return make_error(numbers.error());
    }

    if (const auto list = doc.find("rules"); list != doc.end() && !list->is_null()) {
        if (!list->is_array()) return make_error("sampling rules: rules must be an array");
        for (size_t i = 0; i < list->size(); ++i) {
            auto rule = read_rule((*list)[i], rules.version, i);
            if (!rule) return make_error(rule.error());
            rules.rules.push_back(std::move(*rule));
        }
    }
    return rules;
}

Result<LocalRules> load_local_rules(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error("sampling rules: cannot open " + path + ": " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto rules = parse_local_rules(text.str());
    if (!rules) return make_error(rules.error() + " (in " + path + ")");
    return rules;
}

}  // namespace passport::sample
