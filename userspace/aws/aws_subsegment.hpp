#pragma once
// Turns the subsegment of an outgoing call into an `aws` subsegment when the call is an AWS API
// call (aws_call.hpp): the correlator's one hook into this module.
#include "userspace/common/counters.hpp"
#include "userspace/pairing/http_exchange.hpp"
#include "userspace/xray/ids.hpp"
#include "userspace/xray/segment.hpp"

namespace passport::aws {

// `sub` was filled as a `remote` HTTP subsegment from `ex`. If `ex` is an AWS call, renames it
// to the service, sets namespace "aws" and the `aws` object, keeps only http.response (as the
// SDKs write it), flags throttling error codes, and records the service's error code as a
// remote cause. Returns whether it did; otherwise `sub` is untouched.
bool fill_aws_subsegment(const pairing::HttpExchange& ex, xray::Subsegment& sub,
                         xray::IdGenerator& ids, Counters& counters);

}  // namespace passport::aws
