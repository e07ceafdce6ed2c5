#include "userspace/stream/stream_buffer.hpp"

#include <algorithm>
#include <iterator>
#include <limits>

namespace passport::stream {

namespace {
// Compacting the head string costs a copy; do it only when the dead prefix is large.
constexpr size_t kCompactThreshold = 4096;
// Storage kept when everything buffered was consumed: enough for a typical request head, so a
// busy stream of small messages does not reallocate per message, while a connection that goes
// idle after a larger message (a response with its body) does not keep that message's worth.
constexpr size_t kKeepCapacity = 512;
}  // namespace

StreamBuffer::StreamBuffer(Counters& counters, StreamLimits limits)
    : counters_(counters), limits_(limits) {}

std::string_view StreamBuffer::head() const { return std::string_view(data_).substr(off_); }

uint64_t StreamBuffer::gap_ahead() const {
    if (ahead_.empty()) return 0;
    const auto& [start, piece] = *ahead_.begin();
    if (start != head_end() || !piece.bytes.empty()) return 0;
    return piece.len;
}

void StreamBuffer::unsampled_from(uint64_t pos) {
    auto next = ahead_.lower_bound(pos);
    const bool covered =
        pos < head_end() ||
        (next != ahead_.begin() && std::prev(next)->first + std::prev(next)->second.len > pos);
    if (covered) {
        // pos itself arrived: not a span the kernel skipped as it says.
        counters_.add("stream.unsampled_late");
        return;
    }
    if (next == ahead_.end()) {
        if (!unsampled_from_ || pos < *unsampled_from_) unsampled_from_ = pos;
        return;
    }
    // What follows the span arrived first (the notice came with a later piece): close it now.
    unsampled_from_ = pos;
    close_unsampled(next->first);
    absorb();
}

void StreamBuffer::close_unsampled(uint64_t pos) {
    const uint64_t from = *unsampled_from_;
    unsampled_from_.reset();
    if (pos <= from) return;
    const uint64_t inserted = insert_piece(from, pos - from, {});
    counters_.add("stream.unsampled_bytes", inserted);
    for (auto it = ahead_.lower_bound(from); it != ahead_.end() && it->first < pos; ++it) {
        if (it->second.bytes.empty()) it->second.unsampled = true;
    }
}

void StreamBuffer::add(uint64_t pos, std::string_view bytes, uint64_t len,
                       const ChunkTiming& timing) {
    if (len < bytes.size()) len = bytes.size();  // a malformed record; trust what was copied
    if (len == 0) return;
    if (pos > std::numeric_limits<uint64_t>::max() - len) {
        counters_.add("stream.bad_chunks");  // positions would wrap: a corrupt record
        return;
    }
    if (unsampled_from_ && pos >= *unsampled_from_) close_unsampled(pos);
    const uint64_t end = pos + len;
    const uint64_t captured_end = pos + bytes.size();  // positions past this were never copied
    delivered_end_ = std::max(delivered_end_, end);

    uint64_t start = pos;
    if (end <= head_end()) {
        counters_.add("stream.duplicate_bytes", len);
        return;
    }
    if (start < head_end()) {
        // The front of this chunk is already buffered or consumed: keep only the new tail.
        const uint64_t cut = head_end() - start;
        counters_.add("stream.duplicate_bytes", cut);
        bytes.remove_prefix(static_cast<size_t>(std::min<uint64_t>(cut, bytes.size())));
        start = head_end();
    }
    // Remember who moved these positions (only the part not yet consumed is ever asked for).
    timings_.emplace(pos, TimingEntry{len, timing});

    uint64_t inserted = 0;
    if (!bytes.empty() && captured_end > start) {
        if (start == head_end() && ahead_.empty()) {
            // In order with nothing waiting behind a hole (nearly every chunk): straight into the
            // head, without a piece of its own to copy it into first.
            if (head_size() == 0) {
                data_.clear();
                off_ = 0;
            }
            data_.append(bytes.data(), static_cast<size_t>(captured_end - start));
            inserted += captured_end - start;
        } else {
            inserted += insert_piece(start, captured_end - start, bytes);
        }
    }
    const uint64_t gap_start = std::max(start, captured_end);
    if (end > gap_start) {
        const uint64_t gap_inserted = insert_piece(gap_start, end - gap_start, {});
        counters_.add("stream.gap_bytes", gap_inserted);
        inserted += gap_inserted;
    }
    if (inserted < end - start) counters_.add("stream.duplicate_bytes", end - start - inserted);

    absorb();
    enforce_limits();
}

uint64_t StreamBuffer::insert_piece(uint64_t start, uint64_t len, std::string_view bytes) {
    const uint64_t end = start + len;
    uint64_t cur = start;
    uint64_t inserted = 0;
    // A piece starting before `cur` may cover its beginning (first writer wins).
    auto it = ahead_.upper_bound(cur);
    if (it != ahead_.begin()) {
        auto prev = std::prev(it);
        cur = std::max(cur, prev->first + prev->second.len);
    }
    while (cur < end) {
        it = ahead_.lower_bound(cur);
        const uint64_t stop = (it == ahead_.end()) ? end : std::min(end, it->first);
        if (stop > cur) {
            Piece piece;
            piece.len = stop - cur;
            if (!bytes.empty()) {
                piece.bytes.assign(
                    bytes.substr(static_cast<size_t>(cur - start), static_cast<size_t>(piece.len)));
                ahead_bytes_ += piece.bytes.size();
            }
            ahead_.emplace_hint(it, cur, std::move(piece));
            inserted += stop - cur;
        }
        if (it == ahead_.end() || it->first >= end) break;
        cur = it->first + it->second.len;
    }
    return inserted;
}

void StreamBuffer::absorb() {
    while (!ahead_.empty()) {
        auto it = ahead_.begin();
        if (it->first != head_end()) break;
        if (it->second.unsampled && head_size() == 0) {
            pos_ += it->second.len;  // where a message starts: nothing of it to parse
            data_.clear();
            off_ = 0;
            ahead_.erase(it);
            continue;
        }
        if (it->second.bytes.empty()) break;
        if (head_size() == 0) {
            data_.clear();
            off_ = 0;
        }
        data_.append(it->second.bytes);
        ahead_bytes_ -= it->second.bytes.size();
        ahead_.erase(it);
    }
}

void StreamBuffer::consume(size_t n) {
    n = std::min(n, head_size());
    off_ += n;
    pos_ += n;
    if (off_ == data_.size()) {
        if (data_.capacity() > kKeepCapacity) {
            std::string().swap(data_);  // see kKeepCapacity
        } else {
            data_.clear();
        }
        off_ = 0;
    } else if (off_ >= kCompactThreshold && off_ * 2 >= data_.size()) {
        data_.erase(0, off_);
        off_ = 0;
    }
    if (head_size() == 0 && !ahead_.empty()) absorb();  // an unsampled span may follow
    trim_timings();
}

uint64_t StreamBuffer::skip(uint64_t n) {
    uint64_t done = 0;
    while (done < n) {
        if (head_size() > 0) {
            const size_t take = static_cast<size_t>(std::min<uint64_t>(head_size(), n - done));
            consume(take);
            done += take;
            continue;
        }
        if (ahead_.empty() || ahead_.begin()->first != pos_) break;  // not delivered yet
        auto it = ahead_.begin();
        if (!it->second.bytes.empty()) {
            absorb();
            continue;
        }
        const uint64_t take = std::min(it->second.len, n - done);
        if (take == it->second.len) {
            ahead_.erase(it);
        } else {
            auto node = ahead_.extract(it);
            node.key() += take;
            node.mapped().len -= take;
            ahead_.insert(std::move(node));
        }
        pos_ += take;
        done += take;
        absorb();
    }
    trim_timings();
    return done;
}

std::optional<ChunkTiming> StreamBuffer::timing_at(uint64_t pos) const {
    auto it = timings_.upper_bound(pos);
    // Overlapping chunks are rare; look back a few entries for one that covers pos.
    constexpr int kLookBack = 8;
    for (int i = 0; i < kLookBack && it != timings_.begin(); ++i) {
        --it;
        if (pos < it->first + it->second.len) return it->second.timing;
    }
    return std::nullopt;
}

void StreamBuffer::trim_timings() {
    while (!timings_.empty()) {
        auto it = timings_.begin();
        if (it->first + it->second.len > pos_) break;
        timings_.erase(it);
    }
}

bool StreamBuffer::has_hole() const {
    uint64_t cur = head_end();
    for (const auto& [start, piece] : ahead_) {
        if (start > cur) return true;
        cur = start + piece.len;
    }
    return false;
}

void StreamBuffer::declare_holes_lost() {
    uint64_t cur = head_end();
    for (auto it = ahead_.begin(); it != ahead_.end(); ++it) {
        if (it->first > cur) {
            counters_.add("stream.lost_bytes", it->first - cur);
            ahead_.emplace_hint(it, cur, Piece{it->first - cur, {}});
        }
        cur = it->first + it->second.len;
    }
}

void StreamBuffer::enforce_limits() {
    if (ahead_bytes_ > limits_.max_ahead_bytes || ahead_.size() > limits_.max_ahead_chunks) {
        // Waited long enough for the missing positions: treat them as lost so parsing goes on.
        counters_.add("stream.reorder_overflow");
        declare_holes_lost();
    }
    // If nobody consumes (or the holes did not help), drop everything rather than grow. Declaring
    // holes adds a gap piece per hole, hence the extra room in the piece count.
    if (head_size() > limits_.max_head_bytes || ahead_bytes_ > 2 * limits_.max_ahead_bytes ||
        ahead_.size() > 4 * limits_.max_ahead_chunks) {
        drop_all();
    }
}

void StreamBuffer::drop_all() {
    const size_t dropped = buffered_bytes();
    if (dropped > 0) counters_.add("stream.overflow_bytes", dropped);
    uint64_t end = head_end();
    if (!ahead_.empty()) {
        const auto& last = *ahead_.rbegin();
        end = std::max(end, last.first + last.second.len);
    }
    data_.clear();
    off_ = 0;
    ahead_.clear();
    ahead_bytes_ = 0;
    pos_ = end;
    ++discontinuities_;
    trim_timings();
}

size_t StreamBuffer::shed() {
    const size_t dropped = buffered_bytes();
    drop_all();
    std::string().swap(data_);
    return dropped;
}

size_t StreamBuffer::memory_bytes() const {
    // A std::map node: the value plus three pointers, a colour and the allocator's header.
    constexpr size_t kNodeOverhead = 48;
    const size_t storage = data_.capacity() > sizeof(std::string) ? data_.capacity() : 0;
    return storage + ahead_bytes_ +
           ahead_.size() * (sizeof(Piece) + sizeof(uint64_t) + kNodeOverhead) +
           timings_.size() * (sizeof(TimingEntry) + sizeof(uint64_t) + kNodeOverhead);
}

void StreamBuffer::release_idle_memory() {
    if (head_size() != 0 || data_.capacity() <= sizeof(std::string)) return;
    std::string().swap(data_);
    off_ = 0;
}

void StreamBuffer::clear() {
    uint64_t end = std::max(head_end(), delivered_end_);
    std::string().swap(data_);  // not parsed any more: give the storage back too
    off_ = 0;
    ahead_.clear();
    ahead_bytes_ = 0;
    timings_.clear();
    unsampled_from_.reset();
    pos_ = end;
    ++discontinuities_;
}

}  // namespace passport::stream
