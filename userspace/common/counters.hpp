#pragma once
// Counters: named monotonically increasing numbers for everything the pipeline drops, rejects or
// produces. One instance is owned by the pipeline and shared by reference with each stage; the
// pipeline runs on one thread, so no atomics. Names are dotted: "<stage>.<what>", e.g.
// "http.invalid_request", "export.udp_send_failed". The agent prints them all on exit.
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

namespace passport {

class Counters {
  public:
    Counters() = default;
    // The index points into values_: copies and moves rebuild it.
    Counters(const Counters& o) : values_(o.values_) { reindex(); }
    Counters(Counters&& o) noexcept : values_(std::move(o.values_)) {
        o.values_.clear();
        o.index_.clear();
        o.recent_ = {};
        reindex();
    }
    Counters& operator=(const Counters& o) {
        if (this != &o) {
            values_ = o.values_;
            reindex();
        }
        return *this;
    }
    Counters& operator=(Counters&& o) noexcept {
        if (this != &o) {
            values_ = std::move(o.values_);
            o.values_.clear();
            o.index_.clear();
            o.recent_ = {};
            reindex();
        }
        return *this;
    }

    void add(std::string_view name, uint64_t n = 1) { slot(name) += n; }
    void set(std::string_view name, uint64_t v) { slot(name) = v; }
    uint64_t get(std::string_view name) const {
        auto it = values_.find(name);
        return it == values_.end() ? 0 : it->second;
    }
    const std::map<std::string, uint64_t, std::less<>>& all() const { return values_; }

  private:
    // Hashing the name once beats the ordered map's string comparisons on the pipeline's hot
    // path (several adds per event); the ordered map stays for all(). Its nodes never move.
    struct NameHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    void reindex() {
        index_.clear();
        recent_ = {};
        for (auto& [name, value] : values_) index_.emplace(name, &value);
    }
    uint64_t& slot(std::string_view name) {
        // Most names are literals at fixed addresses: a direct-mapped cache by address finds
        // them without hashing; the name is still compared, so a reused address cannot alias.
        Recent& r = recent_[(reinterpret_cast<uintptr_t>(name.data()) >> 3) % kRecent];
        if (r.key != nullptr && r.key->size() == name.size() &&
            std::char_traits<char>::compare(r.key->data(), name.data(), name.size()) == 0) {
            return *r.value;
        }
        auto it = index_.find(name);
        if (it == index_.end()) {
            auto placed = values_.emplace(std::string(name), 0).first;
            it = index_.emplace(placed->first, &placed->second).first;
        }
        r = Recent{&it->first, it->second};
        return *it->second;
    }
    struct Recent {
        const std::string* key = nullptr;  // a key of values_ (map nodes never move)
        uint64_t* value = nullptr;
    };
    static constexpr size_t kRecent = 64;

    std::map<std::string, uint64_t, std::less<>> values_;
    std::unordered_map<std::string, uint64_t*, NameHash, std::equal_to<>> index_;
    std::array<Recent, kRecent> recent_{};
};

}  // namespace passport
