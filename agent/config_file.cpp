#include "agent/config_file.hpp"

#include <spdlog/fmt/fmt.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>
#include <vector>

namespace passport::agent {
namespace {

struct KeyRow {
    std::string flag;
    bool takes_value = false;
    bool negated = false;
};

// Every key, from the option table.
std::map<std::string, KeyRow> key_rows() {
    std::map<std::string, KeyRow> rows;
    for (const auto& row : option_rows()) {
        auto key = config_key(row.flag);
        if (!key.empty()) rows[key.name] = {row.flag, row.takes_value, key.negated};
    }
    return rows;
}

std::string where(const std::string& path, const YAML::Mark& mark) {
    return path + ":" + std::to_string(mark.line + 1);
}

// Whether an option collects its values (--pid 1 --pid 2) rather than keeping the last one:
// applying a good value twice then differs from applying it once.
bool repeatable(const std::string& flag, const std::string& value) {
    Config once, twice;
    (void)apply_option(flag, value, once);
    (void)apply_option(flag, value, twice);
    (void)apply_option(flag, value, twice);
    return !(once == twice);
}

// The scalar values of a key: one value, or a list of them.
Result<std::vector<YAML::Node>> scalar_values(const YAML::Node& v) {
    if (v.IsScalar()) return std::vector<YAML::Node>{v};
    if (v.IsNull()) return make_error("needs a value");
    if (!v.IsSequence()) return make_error("expected a value or a list of values, got a mapping");
    std::vector<YAML::Node> out;
    for (const auto& item : v) {
        if (!item.IsScalar()) return make_error("expected a list of plain values");
        out.push_back(item);
    }
    return out;
}

// An option with a value. Errors start with the file and line of the value at fault.
Result<bool> apply_value_key(const std::string& path, const std::string& key, const KeyRow& row,
                             const YAML::Node& v, Config& c, std::vector<std::string>& set) {
    auto values = scalar_values(v);
    if (!values) return make_error(where(path, v.Mark()) + ": " + key + ": " + values.error());
    for (const auto& item : *values) {
        if (std::string error = apply_option(row.flag, item.Scalar(), c); !error.empty())
            return make_error(fmt::format("{}: {}: {}", where(path, item.Mark()), key, error));
        set.push_back(item.Scalar());
    }
    if (values->size() > 1 && !repeatable(row.flag, values->front().Scalar()))
        return make_error(where(path, v.Mark()) + ": " + key + ": takes one value, not a list (" +
                          row.flag + " is not repeatable)");
    return true;
}

// A switch: true or false. "--no-X" applies on false, any other switch on true.
Result<bool> apply_switch_key(const std::string& path, const std::string& key, const KeyRow& row,
                              const YAML::Node& v, Config& c, std::vector<std::string>& set) {
    bool on = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, on))
        return make_error(where(path, v.Mark()) + ": " + key + ": expected true or false");
    if (on == row.negated) return true;  // the default
    (void)apply_option(row.flag, "", c);
    set.emplace_back(on ? "true" : "false");
    return true;
}

Result<YAML::Node> load(const std::string& path) {
    try {
        return YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
        return make_error(path + ": cannot read the configuration file");
    } catch (const YAML::ParserException& e) {
        return make_error(where(path, e.mark) + ": not valid YAML: " + e.msg);
    }
}

}  // namespace

ConfigKey config_key(const std::string& flag) {
    if (flag.rfind("--", 0) != 0) return {};
    ConfigKey key{flag.substr(2), false};
    if (key.name.rfind("no-", 0) == 0) {
        key.name.erase(0, 3);
        key.negated = true;
    }
    std::replace(key.name.begin(), key.name.end(), '-', '_');
    return key;
}

Result<bool> apply_config_file(const std::string& path, Config& c, const Settings& given,
                               Settings& applied) {
    auto root = load(path);
    if (!root) return make_error(root.error());
    if (root->IsNull()) return true;  // an empty file
    if (!root->IsMap())
        return make_error(where(path, root->Mark()) +
                          ": expected keys and values (a YAML mapping or a JSON object)");
    const auto rows = key_rows();
    std::set<std::string> seen;
    for (const auto& entry : *root) {
        const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
        const std::string at = where(path, entry.first.Mark());
        auto row = rows.find(key);
        if (row == rows.end()) {
            return make_error(
                fmt::format("{}: unknown key '{}' (keys are the long options without --, dashes "
                            "as underscores; see docs/configuration.md)",
                            at, key));
        }
        if (!seen.insert(key).second)
            return make_error(fmt::format("{}: key '{}' given twice", at, key));
        if (given.count(row->second.flag)) continue;  // the command line wins
        std::vector<std::string> set;
        auto ok = row->second.takes_value
                      ? apply_value_key(path, key, row->second, entry.second, c, set)
                      : apply_switch_key(path, key, row->second, entry.second, c, set);
        if (!ok) return make_error(ok.error());
        if (!set.empty()) applied[key] = std::move(set);
    }
    return true;
}

}  // namespace passport::agent
