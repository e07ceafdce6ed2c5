#pragma once
// Masks credentials in the payload bytes `passport --record` writes, unless --record-raw: the
// values of the Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Amz-Security-Token and
// X-Api-Key headers and of any header whose name is a credential name by the word rule of
// userspace/redact (not the x-amz- prefix: X-Amz-Target and X-Amz-Date stay), and credential
// query values in request lines (the full rule, x-amz- prefix and --redact-query-param names
// included). Every masked byte becomes '*', so lengths and stream offsets are unchanged and a
// masked recording replays like the original (minus the masked values).
//
// Works line by line per connection, direction and source (socket or TLS plaintext), across Data
// events (a header split over two reads is still masked). After a gap in the stream (bytes not
// captured) the current line is skipped unless a value was being masked, which continues to the end
// of the line.
#include <cstdint>
#include <string>
#include <unordered_map>

#include "userspace/events/event.hpp"
#include "userspace/redact/redact.hpp"

namespace passport::events {

class RecordRedactor {
  public:
    explicit RecordRedactor(redact::Policy policy) : policy_(std::move(policy)) {}
    // Masks d's bytes in place.
    void redact(Data& d);
    // The connection closed: its line state goes.
    void forget(const ConnKey& conn);

  private:
    enum class Mode : uint8_t { kLineStart, kSkip, kMaskLine, kTarget };
    struct Stream {
        Mode mode = Mode::kLineStart;
        std::string head;         // the line so far while it is classified, or the param name
        bool in_query = false;    // kTarget: past '?' or '#'
        bool in_value = false;    // kTarget: past '=' of the current parameter
        bool mask_value = false;  // kTarget: that value is a credential
        uint64_t next_pos = 0;
        bool started = false;
    };
    struct Key {
        ConnKey conn;
        Direction dir;
        DataSource source;  // socket bytes and TLS plaintext are separate streams
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        size_t operator()(const Key& k) const {
            return ConnKeyHash{}(k.conn) ^ (static_cast<size_t>(k.dir) << 1) ^
                   static_cast<size_t>(k.source);
        }
    };

    void step(Stream& s, char& c) const;
    void classify(Stream& s, char c) const;
    void target_step(Stream& s, char& c) const;
    bool sensitive_header(const std::string& name) const;

    redact::Policy policy_;
    std::unordered_map<Key, Stream, KeyHash> streams_;
};

}  // namespace passport::events
