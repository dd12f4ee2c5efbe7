-- wrk script for the user-level bench: GET /api with an x-api-key drawn uniformly from KEYS keys
-- (fixed-width names, a fixed seed per thread), and a one-line JSON summary the bench parses.
local keys = tonumber(os.getenv("TOKENMESH_BENCH_KEYS") or "10000")
math.randomseed(tonumber(os.getenv("TOKENMESH_BENCH_SEED") or "20261123"))

request = function()
  return wrk.format("GET", "/api", { ["x-api-key"] = string.format("key-%07d", math.random(0, keys - 1)) })
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"durationUs":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
