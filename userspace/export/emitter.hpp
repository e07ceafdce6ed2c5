#pragma once
// Emitter: where finished X-Ray datagrams go. The pipeline hands every datagram from
// xray::serialize_documents() (header line "\n" body) to one Emitter on its thread;
// implementations: UdpEmitter (the X-Ray daemon), FileEmitter (JSON lines), FanoutEmitter.
// emit() never throws and never blocks for long: failures are counted, not reported.
#include <string>

namespace passport::exporter {

class Emitter {
  public:
    virtual ~Emitter() = default;
    virtual void emit(std::string datagram) = 0;
    // An empty string to write the next datagram into. An emitter that is done with the
    // datagrams it was given hands their buffers back here, so the writer reuses their capacity
    // instead of allocating one per document; the default has none to give.
    virtual std::string spare() { return {}; }
    virtual void flush() {}
};

}  // namespace passport::exporter
