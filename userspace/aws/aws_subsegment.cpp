#include "userspace/aws/aws_subsegment.hpp"

#include "userspace/aws/aws_call.hpp"

namespace passport::aws {

bool fill_aws_subsegment(const pairing::HttpExchange& ex, xray::Subsegment& sub,
                         xray::IdGenerator& ids, Counters& counters) {
    if (ex.role != events::Role::kClient) return false;
    const protocol::http1::Response* resp = ex.response ? &*ex.response : nullptr;
    std::optional<AwsCall> call = classify(ex.request, resp);
    if (!call) return false;
    counters.add("aws.calls");
    if (call->operation.empty()) counters.add("aws.unknown_operation");
    sub.name = call->service;
    sub.namespace_ = "aws";
    sub.aws = call->to_json();
    // The SDKs record the response only: the request is described by the `aws` object.
    if (sub.http) sub.http->request.reset();
    if (call->throttled) {
        // A throttling error code is a throttle whatever status carried it (DynamoDB says 400).
        sub.throttle = true;
        sub.error = true;
        counters.add("aws.throttled");
    }
    if (!call->error_code.empty() && !sub.cause) {
        xray::Cause cause;
        xray::ExceptionInfo exc;
        exc.id = ids.new_segment_id();
        exc.type = call->error_code;
        exc.message = call->error_code;
        exc.remote = true;
        cause.exceptions.push_back(std::move(exc));
        sub.cause = std::move(cause);
    }
    return true;
}

}  // namespace passport::aws
