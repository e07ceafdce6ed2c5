#include "userspace/export/fanout_emitter.hpp"

#include <utility>

namespace passport::exporter {

FanoutEmitter::FanoutEmitter(std::vector<std::unique_ptr<Emitter>> emitters) {
    for (auto& emitter : emitters) add(std::move(emitter));
}

void FanoutEmitter::add(std::unique_ptr<Emitter> emitter) {
    if (emitter) emitters_.push_back(std::move(emitter));
}

void FanoutEmitter::emit(std::string datagram) {
    // Each emitter takes ownership of its copy; the last one gets the original.
    if (emitters_.empty()) return;
    for (size_t i = 0; i + 1 < emitters_.size(); ++i) emitters_[i]->emit(datagram);
    emitters_.back()->emit(std::move(datagram));
}

std::string FanoutEmitter::spare() {
    return emitters_.empty() ? std::string() : emitters_.back()->spare();
}

void FanoutEmitter::flush() {
    for (auto& emitter : emitters_) emitter->flush();
}

}  // namespace passport::exporter
