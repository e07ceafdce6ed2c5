-- wrk script for bench/bench.py: after the run, one line "BENCHJSON {...}" with the totals and
-- the latency percentiles in microseconds (wrk's own histogram). No request/response hooks, so
-- wrk keeps its fast path.
done = function(summary, latency, requests)
  local e = summary.errors
  local function us(p) return math.floor(latency:percentile(p)) end
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    us(50), us(90), us(99), us(99.9), math.floor(latency.max), latency.mean))
end
