#pragma once
// FanoutEmitter: hands every datagram to several emitters (e.g. the daemon and an --output
// file). Owns them; used on the pipeline thread like any Emitter.
#include <memory>
#include <string>
#include <vector>

#include "userspace/export/emitter.hpp"

namespace passport::exporter {

class FanoutEmitter : public Emitter {
  public:
    FanoutEmitter() = default;
    explicit FanoutEmitter(std::vector<std::unique_ptr<Emitter>> emitters);

    void add(std::unique_ptr<Emitter> emitter);
    size_t size() const { return emitters_.size(); }

    void emit(std::string datagram) override;
    // The last emitter gets the original datagram, so its buffers are the ones to reuse.
    std::string spare() override;
    void flush() override;

  private:
    std::vector<std::unique_ptr<Emitter>> emitters_;
};

}  // namespace passport::exporter
