// libFuzzer target: the AWS request classifier (userspace/aws/aws_call.*). The input is a
// request stream and a response stream separated by the first "\n\n\n"; each goes through the
// HTTP/1 parser with the client side's body-prefix settings, and every request (with the
// response in the same place, if any) is classified and its `aws` object serialised as
// documents are. The SigV4, endpoint and naming helpers see the raw input too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "userspace/aws/aws_call.hpp"
#include "userspace/common/counters.hpp"
#include "userspace/protocol/http1/http1_parser.hpp"
#include "userspace/stream/stream_buffer.hpp"

namespace {

using namespace passport;
using protocol::MessageKind;
using protocol::ParseStatus;
using protocol::http1::Message;

std::vector<Message> parse_all(std::string_view bytes, MessageKind kind) {
    Counters counters;
    stream::StreamBuffer buf(counters);
    protocol::http1::ParserLimits limits;
    limits.body_prefix_bytes = aws::kBodyPrefixBytes;
    limits.body_interest = &aws::body_interest;
    protocol::http1::Http1Parser parser(kind, counters, false, limits);
    if (kind == MessageKind::kResponse)
        parser.set_keep_response_body(protocol::http1::KeepBody::kYes);
    buf.add(0, bytes, bytes.size(), stream::ChunkTiming{100, 150, 1});
    std::vector<Message> out;
    for (int i = 0; i < 10000; ++i) {
        Message m;
        const ParseStatus s = parser.parse(buf, m);
        if (s == ParseStatus::kNeedMore) break;
        if (s == ParseStatus::kFrame) out.push_back(std::move(m));
    }
    Message last;
    if (parser.finish(last)) out.push_back(std::move(last));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const size_t sep = input.find("\n\n\n");
    const std::string_view req_bytes = input.substr(0, sep);
    const std::string_view resp_bytes =
        sep == std::string_view::npos ? std::string_view{} : input.substr(sep + 3);

    const auto requests = parse_all(req_bytes, MessageKind::kRequest);
    const auto responses = parse_all(resp_bytes, MessageKind::kResponse);
    for (size_t i = 0; i < requests.size(); ++i) {
        const auto& req = requests[i].request;
        (void)aws::wants_body(req);
        (void)aws::body_interest(req);
        const protocol::http1::Response* resp =
            i < responses.size() ? &responses[i].response : nullptr;
        if (auto call = aws::classify(req, resp)) {
            const nlohmann::json j = call->to_json();
            (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
    }

    (void)aws::parse_sigv4(input);
    (void)aws::parse_endpoint(input);
    (void)aws::service_name(input.substr(0, 64));
    (void)aws::snake_case(input.substr(0, 256));
    return 0;
}
