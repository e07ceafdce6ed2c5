#pragma once
// The trace-header corpus (tests/fixtures/trace_header_corpus.json): request heads whose
// X-Amzn-Trace-Id (and traceparent) the X-Ray SDK for Node, OpenTelemetry and Passport's two
// parsers are compared on. A case's header lines may hold "{c*N}": N copies of the character c.
// A case with "differs" is one where Passport deliberately reads the header otherwise than the
// SDK's Express middleware; the text says why.
#include <string>
#include <vector>

namespace passport::testing {

struct HeaderCase {
    std::string name;
    std::vector<std::string> headers;  // "Name: value" lines, expanded
    std::string differs;               // empty: Passport reads it as the SDK does
};

// The corpus, expanded; empty when the file is missing or not the expected JSON (callers assert
// its size).
std::vector<HeaderCase> load_trace_header_corpus();

// What a reader made of a case, in words the readers share: the trace it continues (its id) or
// "new", the parent it names ("" none), and whether the request is recorded (a request no header
// decides is sampled: every reader under test samples everything left to its rules).
struct HeaderReading {
    std::string trace;
    std::string parent;
    bool sampled = true;
    bool operator==(const HeaderReading&) const = default;
};
std::string describe(const HeaderReading& r);

// An id the reader produced, as a reading: itself when the case's headers contain it (in any
// case), else "new" (a trace the reader started).
std::string as_trace(const HeaderCase& c, const std::string& id);

// Passport's userspace reading: the first X-Amzn-Trace-Id line through parse_trace_header, else
// the first traceparent line through parse_traceparent (as the correlator does).
HeaderReading userspace_reading(const HeaderCase& c);

// The head a client sends for the case: "GET target HTTP/1.1", Host, the case's lines.
std::string request_head(const HeaderCase& c, const std::string& target);

}  // namespace passport::testing
