#pragma once
// Keys of the correlator's tables: plain structs and integers with their hashes, never text.
//  - RequestKey: a request, by its connection and the time its head started;
//  - ConnPos: a request as the kernel names it, by its connection and the stream offset of its
//    head (kernel contexts, the writing thread's request in an injection report);
//  - TupleKey: a connection's two ends (same-node stitching pairs a call's tuple with the
//    mirrored tuple of the server request that read it);
//  - InjectKey: an outgoing request as an injection report names it (process, tuple, offset);
//  - subsegment ids as the 64-bit numbers the kernel writes; hex only at the edges (hex16).
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "userspace/events/event.hpp"

namespace passport::correlate {

inline size_t hash_mix(size_t seed, uint64_t v) {
    return seed ^ (std::hash<uint64_t>{}(v) + 0x9E3779B97F4A7C15ULL + (seed << 6) + (seed >> 2));
}

struct RequestKey {
    events::ConnKey conn;
    uint64_t start_ns = 0;
    bool operator==(const RequestKey&) const = default;
};
struct RequestKeyHash {
    size_t operator()(const RequestKey& k) const {
        return events::ConnKeyHash{}(k.conn) ^ (k.start_ns * 0x9E3779B97F4A7C15ULL);
    }
};

struct ConnPos {
    events::ConnKey conn;
    uint64_t pos = 0;
    bool operator==(const ConnPos&) const = default;
};
struct ConnPosHash {
    size_t operator()(const ConnPos& k) const {
        return events::ConnKeyHash{}(k.conn) ^ (k.pos * 0x9E3779B97F4A7C15ULL);
    }
};

// A thread, as (tgid << 32) | tid.
inline uint64_t thread_key(uint32_t tgid, uint32_t tid) { return (uint64_t{tgid} << 32) | tid; }

// Ports and addresses of both ends (the family is not part of it).
struct TupleKey {
    std::array<uint8_t, 16> local_addr{};
    std::array<uint8_t, 16> remote_addr{};
    uint16_t local_port = 0;
    uint16_t remote_port = 0;
    bool operator==(const TupleKey&) const = default;
};
TupleKey tuple_of(const events::Endpoint& local, const events::Endpoint& remote);
struct TupleKeyHash {
    size_t operator()(const TupleKey& k) const;
};

struct InjectKey {
    TupleKey tuple;
    uint32_t tgid = 0;
    uint64_t pos = 0;  // egress offset of the request's head
    bool operator==(const InjectKey&) const = default;
};
struct InjectKeyHash {
    size_t operator()(const InjectKey& k) const {
        return hash_mix(hash_mix(TupleKeyHash{}(k.tuple), k.tgid), k.pos);
    }
};

// 16 lowercase hex digits, as X-Ray writes ids.
std::string hex16(uint64_t v);
// The inverse: nullopt unless exactly 16 lowercase hex digits.
std::optional<uint64_t> parse_hex16(std::string_view hex);

// A map that keeps at most `max` keys, forgetting the oldest inserted first.
template <typename K, typename V, typename Hash>
class BoundedMap {
  public:
    explicit BoundedMap(size_t max) : max_(max) {}
    // Inserts or replaces; returns how many entries were forgotten to stay within the bound.
    size_t put(const K& key, V value) {
        auto [it, inserted] = map_.insert_or_assign(key, std::move(value));
        if (inserted) order_.push_back(key);
        size_t evicted = 0;
        while (order_.size() > max_) {
            evicted += map_.erase(order_.front());
            order_.pop_front();
        }
        return evicted;
    }
    V* find(const K& key) {
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : &it->second;
    }
    const V* find(const K& key) const {
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : &it->second;
    }
    // The key's slot in the order goes lazily (when it reaches the front).
    void erase(const K& key) { map_.erase(key); }
    bool empty() const { return map_.empty(); }
    size_t size() const { return map_.size(); }

  private:
    size_t max_;
    std::unordered_map<K, V, Hash> map_;
    std::deque<K> order_;
};

}  // namespace passport::correlate
