#pragma once
// MemoryBudget: one accountant for the bytes every connection's stream buffers hold (captured
// bytes, their storage and per-syscall timing records), shared by the whole connection table.
//
// Each connection owns a BudgetNode and reports what it holds after every change (update()).
// Connections holding something are kept in one intrusive list ordered by when they started
// holding it: a connection that empties its buffers (a message was parsed) leaves the list, and
// joins again at the back when bytes wait once more. The front is therefore the connection
// whose oldest unfinished message began longest ago. When the total is over the limit, the
// owner (ConnectionTracker) sheds connections from the front until it fits again.
//
// Single-threaded (pipeline thread); the list needs no allocation.
#include <cstddef>
#include <cstdint>

namespace passport::stream {

class Connection;

struct BudgetNode {
    BudgetNode* prev = nullptr;
    BudgetNode* next = nullptr;
    size_t charged = 0;
    Connection* owner = nullptr;
    bool linked() const { return prev != nullptr; }
};

class MemoryBudget {
  public:
    // limit_bytes == 0: unlimited (still counted).
    explicit MemoryBudget(size_t limit_bytes);
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    // The node now holds `bytes` (0 removes it from the list).
    void update(BudgetNode& node, size_t bytes);
    bool over() const { return limit_ != 0 && charged_ > limit_; }
    // The node holding bytes for the longest time, or nullptr.
    BudgetNode* oldest() const { return head_.next == &head_ ? nullptr : head_.next; }
    size_t charged() const { return charged_; }
    size_t peak() const { return peak_; }
    size_t limit() const { return limit_; }
    size_t holders() const { return holders_; }

  private:
    void unlink(BudgetNode& node);
    void link_back(BudgetNode& node);

    size_t limit_;
    size_t charged_ = 0;
    size_t peak_ = 0;
    size_t holders_ = 0;
    BudgetNode head_;  // sentinel of the circular list
};

}  // namespace passport::stream
