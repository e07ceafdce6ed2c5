#pragma once
// Counters: named monotonically increasing numbers for everything the pipeline drops, rejects or
// produces. One instance is owned by the pipeline and shared by reference with each stage; the
// pipeline runs on one thread, so no atomics. Names are dotted: "<stage>.<what>", e.g.
// "http.invalid_request", "export.udp_send_failed". The agent prints them all on exit.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace passport {

class Counters {
public:
    void add(std::string_view name, uint64_t n = 1) {
        auto it = values_.find(name);
        if (it == values_.end()) {
            values_.emplace(std::string(name), n);
        } else {
            it->second += n;
        }
    }
    void set(std::string_view name, uint64_t v) {
        auto it = values_.find(name);
        if (it == values_.end()) {
            values_.emplace(std::string(name), v);
        } else {
            it->second = v;
        }
    }
    uint64_t get(std::string_view name) const {
        auto it = values_.find(name);
        return it == values_.end() ? 0 : it->second;
    }
    const std::map<std::string, uint64_t, std::less<>>& all() const { return values_; }

private:
    std::map<std::string, uint64_t, std::less<>> values_;
};

}  // namespace passport
