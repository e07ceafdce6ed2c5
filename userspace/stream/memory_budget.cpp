#include "userspace/stream/memory_budget.hpp"

#include <algorithm>

namespace passport::stream {

MemoryBudget::MemoryBudget(size_t limit_bytes) : limit_(limit_bytes) {
    head_.prev = &head_;
    head_.next = &head_;
}

void MemoryBudget::update(BudgetNode& node, size_t bytes) {
    charged_ = charged_ - node.charged + bytes;
    node.charged = bytes;
    peak_ = std::max(peak_, charged_);
    if (bytes == 0 && node.linked()) {
        unlink(node);
    } else if (bytes != 0 && !node.linked()) {
        link_back(node);
    }
}

void MemoryBudget::unlink(BudgetNode& node) {
    node.prev->next = node.next;
    node.next->prev = node.prev;
    node.prev = nullptr;
    node.next = nullptr;
    --holders_;
}

void MemoryBudget::link_back(BudgetNode& node) {
    node.prev = head_.prev;
    node.next = &head_;
    head_.prev->next = &node;
    head_.prev = &node;
    ++holders_;
}

}  // namespace passport::stream
