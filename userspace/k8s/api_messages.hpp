#pragma once
// The API server's answers to LIST and WATCH of pods, as described in
// https://kubernetes.io/docs/reference/using-api/api-concepts/ ("Efficient detection of changes",
// "Watch bookmarks", "Retrieving large results sets in chunks"): a LIST is one PodList object
// with metadata.resourceVersion (and metadata.continue when paged); a WATCH is a stream of JSON
// objects, one per line, {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}. An
// ERROR carries a Status object; code 410 (Gone) means the resourceVersion is too old and the
// client must list again.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "userspace/common/result.hpp"
#include "userspace/k8s/pod.hpp"

namespace passport::k8s {

struct PodList {
    std::vector<PodMeta> pods;
    std::string resource_version;
    std::string continue_token;  // non-empty: more pages
    size_t rejected_items = 0;   // items that were not valid pods (skipped)
};

Result<PodList> parse_pod_list(std::string_view body);

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
    WatchEventType type = WatchEventType::kAdded;
    PodMeta pod;                   // ADDED, MODIFIED, DELETED
    std::string resource_version;  // every type but ERROR
    int status_code = 0;           // ERROR: the Status code (410: list again)
    std::string message;           // ERROR: the Status message
};

// Splits a watch response body into events. Bytes arrive in any pieces (the HTTP layer has
// already removed the chunked framing); a line longer than max_line is an error, so a broken or
// hostile server cannot make the buffer grow without bound.
class WatchStreamParser {
  public:
    static constexpr size_t kDefaultMaxLine = size_t{4} << 20;
    explicit WatchStreamParser(size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

    // Appends `bytes` and moves every complete event to `out`. An error (line too long, not
    // JSON, not a watch event) leaves the stream unusable: the caller reconnects.
    Result<bool> feed(std::string_view bytes, std::vector<WatchEvent>& out);
    size_t buffered() const { return partial_.size(); }

  private:
    Result<bool> parse_line(std::string_view line, std::vector<WatchEvent>& out);
    size_t max_line_;
    std::string partial_;  // the bytes of the line not ended yet
};

// One watch line -> event (exposed for tests).
Result<WatchEvent> parse_watch_event(std::string_view line);

}  // namespace passport::k8s
