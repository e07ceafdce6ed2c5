#pragma once
// ExchangeSink: where protocol sessions hand finished exchanges. One callback per exchange type;
// a new protocol adds its own member here, so existing protocols' code stays untouched.
// Built by stream::ConnectionTracker from the callbacks it was given; called on the pipeline thread
// from inside ConnectionTracker::on_event/expire/flush_all (callbacks must not re-enter the
// tracker).
#include <functional>

#include "userspace/pairing/http_exchange.hpp"

namespace passport::pairing {

struct ExchangeSink {
    std::function<void(HttpExchange&&)> http;
    std::function<void(const HttpRequestSeen&)> http_request_seen;  // optional
};

}  // namespace passport::pairing
