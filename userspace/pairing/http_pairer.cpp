#include "userspace/pairing/http_pairer.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "userspace/aws/aws_call.hpp"

namespace passport::pairing {

namespace {

using protocol::MessageKind;
using protocol::ParseStatus;

// Early responses held while a request body arrives; more than this means we are out of step.
constexpr size_t kMaxEarlyResponses = 4;
// Frames per on_data call; each consumes bytes, so this is only a guard against a parser bug.
constexpr int kMaxStepsPerCall = 1 << 20;

size_t index(events::Direction dir) { return static_cast<size_t>(dir); }

// Requests the traced process sends keep a body prefix when they look like AWS API calls (their
// resource names are in the body); its server-side requests and everything else are only counted.
protocol::http1::ParserLimits request_limits(events::Role role) {
    protocol::http1::ParserLimits limits;
    if (role == events::Role::kClient) {
        limits.body_prefix_bytes = aws::kBodyPrefixBytes;
        limits.body_interest = &aws::body_interest;
    }
    return limits;
}

protocol::http1::ParserLimits response_limits(events::Role role) {
    protocol::http1::ParserLimits limits;
    if (role == events::Role::kClient) limits.body_prefix_bytes = aws::kBodyPrefixBytes;
    return limits;
}

std::string_view outcome_counter(Outcome outcome) {
    switch (outcome) {
        case Outcome::kComplete:
            return "pairing.complete";
        case Outcome::kConnectionClosed:
            return "pairing.connection_closed";
        case Outcome::kProcessExited:
            return "pairing.process_exited";
        case Outcome::kTimedOut:
            return "pairing.timed_out";
        case Outcome::kShutdown:
            return "pairing.shutdown";
        case Outcome::kPipelineOverflow:
            return "pairing.pipeline_overflow";
        case Outcome::kMemoryBudget:
            return "pairing.memory_budget";
    }
    return "pairing.unknown_outcome";
}

// When a request started, the same for its early report and its exchange (http_exchange.hpp): a
// server times it from the read that returned its first byte, a client from its first write.
uint64_t request_start_ns(const protocol::http1::Message& request, events::Role role) {
    return role != events::Role::kClient ? request.timing.first.exit_ns
                                         : request.timing.first.enter_ns;
}

// Heap a parsed request holds: its strings and header list, plus the list node around it.
size_t message_bytes(const protocol::http1::Message& m) {
    const auto& r = m.request;
    size_t n = sizeof(protocol::http1::Message) + 32 + r.method.capacity() + r.target.capacity() +
               r.version.capacity() + r.body_prefix.capacity();
    n += r.headers.capacity() * sizeof(protocol::http1::Headers::value_type);
    for (const auto& [name, value] : r.headers) n += name.capacity() + value.capacity();
    return n;
}

}  // namespace

HttpPairer::HttpPairer(const protocol::SessionParams& params)
    : counters_(params.counters),
      sink_(params.sink),
      limits_(params.limits),
      request_dir_(params.role == events::Role::kClient ? events::Direction::kEgress
                                                        : events::Direction::kIngress),
      requests_(MessageKind::kRequest, params.counters, params.mid_stream[index(request_dir_)],
                request_limits(params.role)),
      responses_(MessageKind::kResponse, params.counters,
                 params.mid_stream[1 - index(request_dir_)], response_limits(params.role)) {}

size_t HttpPairer::pending_requests() const { return waiting_; }

void HttpPairer::on_data(events::Direction dir, stream::StreamBuffer& buffer,
                         const protocol::ConnContext& ctx) {
    const bool is_request = dir == request_dir_;
    protocol::http1::Http1Parser& parser = is_request ? requests_ : responses_;
    Message frame;
    for (int i = 0; i < kMaxStepsPerCall && wants_data_; ++i) {
        if (!is_request) {
            responses_.set_request_method(next_response_method());
            responses_.set_keep_response_body(next_response_keeps_body());
        }
        switch (parser.parse(buffer, frame)) {
            case ParseStatus::kNeedMore:
                if (!is_request)
                    response_started_ = responses_.in_message() || !buffer.head().empty();
                return;
            case ParseStatus::kSkip:
                break;
            case ParseStatus::kFrame:
                if (is_request) {
                    on_request(std::move(frame), ctx);
                } else {
                    on_response(std::move(frame), ctx);
                }
                break;
            case ParseStatus::kInvalid:
                if (is_request) {
                    on_request_lost(ctx);
                } else {
                    on_response_lost();
                }
                break;
        }
    }
}

void HttpPairer::on_request(Message&& request, const protocol::ConnContext& ctx) {
    if (sink_.http_request_seen) {
        HttpRequestSeen seen;
        static_cast<ConnFacts&>(seen) = ctx;
        seen.tgid = ctx.conn.tgid;
        seen.tid = request.timing.first.tid;
        seen.request_start_ns = request_start_ns(request, ctx.role);
        seen.request_pos = request.start_pos;
        seen.request = &request.request;
        sink_.http_request_seen(seen);
    }
    push_pending(Pending{std::move(request), false}, ctx);
}

void HttpPairer::on_request_lost(const protocol::ConnContext& ctx) {
    counters_.add("pairing.lost_requests");
    push_placeholder();
    drain_early(ctx);
}

void HttpPairer::push_pending(Pending&& pending, const protocol::ConnContext& ctx) {
    if (waiting_ >= limits_.max_pending) {
        // Not kept: reported now, and its response will be discarded rather than shift the rest.
        counters_.add("pairing.pending_overflow");
        emit(std::move(pending.message), std::nullopt, Outcome::kPipelineOverflow, ctx);
        push_placeholder();
    } else {
        pending_bytes_ += message_bytes(pending.message);
        pending_.push_back(std::move(pending));
        ++waiting_;
    }
    drain_early(ctx);
}

void HttpPairer::push_placeholder() {
    if (!pending_.empty() && pending_.back().placeholder) {
        ++pending_.back().count;
        return;
    }
    pending_.push_back(Pending{Message{}, true, 1});
}

std::list<HttpPairer::Pending>::iterator HttpPairer::make_placeholder(
    std::list<Pending>::iterator it) {
    --waiting_;
    pending_bytes_ -= std::min(pending_bytes_, message_bytes(it->message));
    it->message = Message{};
    it->placeholder = true;
    it->count = 1;
    if (it != pending_.begin() && std::prev(it)->placeholder) {
        std::prev(it)->count += it->count;
        it = std::prev(pending_.erase(it));
    }
    auto next = std::next(it);
    if (next != pending_.end() && next->placeholder) {
        it->count += next->count;
        next = pending_.erase(next);
    }
    return next;
}

void HttpPairer::pop_placeholder() {
    if (--pending_.front().count == 0) pending_.pop_front();
}

uint64_t HttpPairer::waiting_since(const Pending& front) const {
    return std::max(front.message.timing.last.exit_ns, last_response_end_ns_);
}

void HttpPairer::drain_early(const protocol::ConnContext& ctx) {
    while (!early_.empty() && !pending_.empty()) {
        Message response = std::move(early_.front());
        early_.pop_front();
        on_response(std::move(response), ctx);
    }
}

void HttpPairer::on_response(Message&& response, const protocol::ConnContext& ctx) {
    if (pending_.empty()) {
        if (requests_.in_message() && early_.size() < kMaxEarlyResponses) {
            early_.push_back(std::move(response));
        } else {
            counters_.add("pairing.orphan_responses");
        }
        return;
    }
    response_started_ = false;
    last_response_end_ns_ = std::max(last_response_end_ns_, response.timing.last.exit_ns);
    Pending& front = pending_.front();
    if (front.placeholder) {
        pop_placeholder();
        counters_.add("pairing.discarded_responses");
        return;
    }
    // Finished before its supposed request even began: it answers one we never saw.
    const auto& req_first = front.message.timing.first;
    const auto& resp_first = response.timing.first;
    if (resp_first.exit_ns != 0 && req_first.enter_ns != 0 &&
        resp_first.exit_ns < req_first.enter_ns) {
        counters_.add("pairing.orphan_responses");
        return;
    }
    Message request = take_front();
    const bool upgraded = responses_.upgraded();
    emit(std::move(request), std::move(response), Outcome::kComplete, ctx);
    if (upgraded) wants_data_ = false;  // 101 or CONNECT: the rest is not HTTP
}

void HttpPairer::on_response_lost() {
    response_started_ = false;
    if (pending_.empty()) return;
    if (pending_.front().placeholder) {
        pop_placeholder();
        return;
    }
    counters_.add("pairing.response_lost");
    take_front();
}

HttpPairer::Message HttpPairer::take_front() {
    Message m = std::move(pending_.front().message);
    pending_.pop_front();
    --waiting_;
    pending_bytes_ -= std::min(pending_bytes_, message_bytes(m));
    return m;
}

void HttpPairer::shed(const protocol::ConnContext& ctx) {
    // Every waiting request is reported now; one placeholder run stands for all of them, so
    // their responses are discarded and the connection stays in step.
    uint64_t placeholders = 0;
    while (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        placeholders += p.placeholder ? p.count : 1;
        if (!p.placeholder) emit(std::move(p.message), std::nullopt, Outcome::kMemoryBudget, ctx);
    }
    waiting_ = 0;
    pending_bytes_ = 0;
    if (placeholders > 0) pending_.push_back(Pending{Message{}, true, placeholders});
}

std::string_view HttpPairer::next_response_method() const {
    if (!pending_.empty()) {
        return pending_.front().placeholder ? std::string_view{}
                                            : pending_.front().message.request.method;
    }
    if (requests_.in_message()) return requests_.current().request.method;
    return {};
}

protocol::http1::KeepBody HttpPairer::next_response_keeps_body() const {
    using protocol::http1::KeepBody;
    if (!pending_.empty()) {
        return pending_.front().placeholder ? KeepBody::kNo
                                            : pending_.front().message.request.response_body;
    }
    return requests_.in_message() ? requests_.current().request.response_body : KeepBody::kNo;
}

void HttpPairer::end(Outcome outcome, const protocol::ConnContext& ctx) {
    if (outcome == Outcome::kConnectionClosed || outcome == Outcome::kProcessExited) {
        // The byte stream really ended: a response delimited by the close is complete.
        Message frame;
        if (responses_.finish(frame)) on_response(std::move(frame), ctx);
    }
    while (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        if (!p.placeholder) emit(std::move(p.message), std::nullopt, outcome, ctx);
    }
    waiting_ = 0;
    pending_bytes_ = 0;
    if (requests_.in_message()) {
        // A request whose body never finished arriving; if the server already answered it
        // (e.g. 413 before reading the body), that answer is complete.
        counters_.add("pairing.partial_requests");
        Message request = requests_.current();
        if (!early_.empty()) {
            Message response = std::move(early_.front());
            early_.pop_front();
            emit(std::move(request), std::move(response), Outcome::kComplete, ctx);
        } else {
            emit(std::move(request), std::nullopt, outcome, ctx);
        }
    }
    if (!early_.empty()) counters_.add("pairing.orphan_responses", early_.size());
    early_.clear();
    wants_data_ = false;
}

void HttpPairer::expire(uint64_t now_ns, uint64_t timeout_ns, const protocol::ConnContext& ctx) {
    // A response under way answers the first request waiting: nothing behind it has waited for
    // its own response yet, so nothing is given up while bytes of a response are still coming.
    if (response_started_) return;
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->placeholder) {
            ++it;
            continue;
        }
        const uint64_t since_ns = waiting_since(*it);
        if (now_ns < since_ns || now_ns - since_ns < timeout_ns) break;  // later ones are younger
        emit(std::move(it->message), std::nullopt, Outcome::kTimedOut, ctx);
        // Its response, should it come, must not pair with the next request.
        it = make_placeholder(it);
    }
}

void HttpPairer::emit(Message&& request, std::optional<Message>&& response, Outcome outcome,
                      const protocol::ConnContext& ctx) {
    HttpExchange x;
    static_cast<ConnFacts&>(x) = ctx;
    x.tgid = ctx.conn.tgid;
    const bool server = ctx.role != events::Role::kClient;
    // Server: the request was read, the response written. Client: the other way round. Each side
    // is timed from the moment its bytes were available to the process (see http_exchange.hpp).
    x.request_start_ns = request_start_ns(request, ctx.role);
    x.request_end_ns = request.timing.last.exit_ns;
    x.request_tid = request.timing.first.tid;
    x.request_pos = request.start_pos;
    x.request = std::move(request.request);
    if (response) {
        x.response_start_ns =
            server ? response->timing.first.enter_ns : response->timing.first.exit_ns;
        x.response_end_ns = response->timing.last.exit_ns;
        x.response_tid = response->timing.first.tid;
        x.response = std::move(response->response);
    }
    x.outcome = outcome;
    counters_.add("pairing.exchanges");
    counters_.add(outcome_counter(outcome));
    if (sink_.http) sink_.http(std::move(x));
}

std::unique_ptr<protocol::Session> make_http_session(const protocol::SessionParams& params) {
    return std::make_unique<HttpPairer>(params);
}

}  // namespace passport::pairing
