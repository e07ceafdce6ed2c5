#pragma once
// StreamBuffer: one direction of one connection, reassembled by stream position.
//
// The kernel reports every read/write as a chunk: the stream position of its first byte, how many
// bytes the syscall moved (len) and the prefix of them it managed to copy (at most PP_MAX_CHUNK).
// Chunks may arrive out of order or overlap (exits can be reported late), and the copied prefix
// may be shorter than len. This class turns that into what a parser wants:
//   - head(): the contiguous captured bytes starting at position(), ready to parse;
//   - gap_ahead(): positions right after head() that are known to be missing (moved by a syscall
//     but never copied, or given up on after waiting too long for them);
//   - consume()/skip(): move past bytes, skip() also across known gaps (bodies are only counted);
//   - timing_at(pos): which syscall moved position pos (entry/exit ns and thread), so a parser can
//     say when a message's first and last byte moved even if those bytes were never copied.
// Positions before position() are forgotten. Everything is bounded: a head longer than
// StreamLimits::max_head_bytes, or too much data waiting behind a hole, is dropped and counted,
// and discontinuities() changes so the parser knows to resynchronise.
//
// Owned by a stream::Connection (one per direction); used only on the pipeline thread.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "userspace/common/counters.hpp"

namespace passport::stream {

// When, and by which thread, one syscall moved its bytes.
struct ChunkTiming {
    uint64_t enter_ns = 0;  // syscall entry, CLOCK_MONOTONIC
    uint64_t exit_ns = 0;   // syscall exit, CLOCK_MONOTONIC
    uint32_t tid = 0;
    bool operator==(const ChunkTiming&) const = default;
};

struct StreamLimits {
    // Contiguous unconsumed bytes. A parser that keeps up never gets near this: HTTP headers are
    // capped far lower and bodies are consumed as they arrive.
    size_t max_head_bytes = size_t{64} * 1024;
    // Captured bytes and chunks waiting behind a hole (positions not delivered yet). Past this,
    // the holes are declared lost so the stream moves on.
    size_t max_ahead_bytes = size_t{64} * 1024;
    size_t max_ahead_chunks = 256;
};

class StreamBuffer {
  public:
    explicit StreamBuffer(Counters& counters, StreamLimits limits = {});

    // Adds one syscall's worth: `bytes` is the captured prefix of the `len` bytes moved from
    // stream position `pos`. Parts already consumed or already present are ignored (counted as
    // stream.duplicate_bytes); len - bytes.size() positions become a known gap (stream.gap_bytes).
    void add(uint64_t pos, std::string_view bytes, uint64_t len, const ChunkTiming& timing);

    // Positions from `pos` up to the next chunk delivered at or after it (already, or later)
    // belong to unsampled messages the kernel did not ship: they are passed over where a message
    // would start (stream.unsampled_bytes), without counting as a gap or a loss. Inside a
    // message (its bytes were cut short) they are a known gap like any other.
    void unsampled_from(uint64_t pos);

    // Contiguous captured bytes starting at position(). Invalidated by any non-const call.
    std::string_view head() const;
    // Stream position of head()[0].
    uint64_t position() const { return pos_; }
    // Number of known-missing positions starting right after head(); 0 when the next position is
    // simply not delivered yet (or nothing follows).
    uint64_t gap_ahead() const;
    // True when head() is empty and the next position is a known gap.
    bool at_gap() const { return head_size() == 0 && gap_ahead() > 0; }

    // Drops the first n bytes of head(); n > head().size() is clamped.
    void consume(size_t n);
    // Moves past up to n positions, through captured bytes and known gaps alike, stopping early at
    // a position not delivered yet. Returns how many positions were passed.
    uint64_t skip(uint64_t n);

    // The syscall that moved position `pos` (captured or not), if still known. Positions are
    // remembered until consumed, so ask before consume()/skip().
    std::optional<ChunkTiming> timing_at(uint64_t pos) const;

    // True when some position not delivered yet is followed by delivered data (a hole).
    bool has_hole() const;
    // Declares every position not delivered yet but followed by delivered data a known gap
    // (stream.lost_bytes): used when waiting longer is pointless (connection closed, too much
    // data waiting behind the hole).
    void declare_holes_lost();
    // Forgets everything buffered (the connection is not parsed any more).
    void clear();
    // Drops every buffered byte and its storage to free memory (the memory budget); the parser
    // resynchronises at the next message start, as after an overflow. Returns the bytes dropped.
    size_t shed();
    // Heap this buffer holds, approximately: head storage, bytes and nodes waiting behind holes,
    // and the per-syscall timing records (a head trickled in one byte per syscall holds one
    // record per byte).
    size_t memory_bytes() const;
    // Frees the head's storage when nothing is buffered. Consumed bytes leave their capacity
    // behind (so a busy stream does not reallocate per message); an idle keep-alive connection
    // should not keep a message's worth of it. Called from the expiry tick.
    void release_idle_memory();
    // True when nothing is buffered, no storage is held and no timing is remembered.
    bool holds_nothing() const {
        return head_size() == 0 && ahead_.empty() && timings_.empty() &&
               data_.capacity() <= sizeof(std::string);
    }

    // Changes whenever buffered bytes were dropped without being consumed (overflow): a parser
    // holding state about earlier positions must resynchronise.
    uint64_t discontinuities() const { return discontinuities_; }
    // Captured bytes held (head + waiting behind holes).
    size_t buffered_bytes() const { return head_size() + ahead_bytes_; }
    // One past the highest position any chunk covered.
    uint64_t delivered_end() const { return delivered_end_; }

  private:
    // A stretch of positions at or after the head's end. `bytes` empty means a known gap;
    // otherwise bytes.size() == len.
    struct Piece {
        uint64_t len = 0;
        std::string bytes;
        bool unsampled = false;  // a known gap of positions the kernel did not ship on purpose
    };
    struct TimingEntry {
        uint64_t len = 0;
        ChunkTiming timing;
    };

    size_t head_size() const { return data_.size() - off_; }
    uint64_t head_end() const { return pos_ + head_size(); }
    // Inserts [start, start+len) where no piece is yet; returns positions actually inserted.
    uint64_t insert_piece(uint64_t start, uint64_t len, std::string_view bytes);
    // Moves captured pieces that start at the head's end into the head, and passes over the
    // unsampled ones when nothing is buffered before them.
    void absorb();
    // Ends a pending unsampled_from() at `pos`, where a delivered chunk starts.
    void close_unsampled(uint64_t pos);
    void trim_timings();
    void enforce_limits();
    void drop_all();

    Counters& counters_;
    StreamLimits limits_;
    uint64_t pos_ = 0;  // position of data_[off_]
    std::string data_;  // head bytes live in data_[off_..]
    size_t off_ = 0;
    std::map<uint64_t, Piece> ahead_;  // non-overlapping, all starting at or after head_end()
    size_t ahead_bytes_ = 0;           // captured bytes in ahead_
    std::map<uint64_t, TimingEntry> timings_;  // by chunk start position
    uint64_t delivered_end_ = 0;
    uint64_t discontinuities_ = 0;
    std::optional<uint64_t> unsampled_from_;  // see unsampled_from()
};

}  // namespace passport::stream
