-- wrk script of benchmarks/bench_serve.py: POST JSON bodies round-robin, count refusals.
--
-- The bodies are read from the file named by BODY_FILE, one JSON document per line, and
-- formatted into requests once per wrk thread (init), so a request costs wrk a table lookup.
-- done() prints one line "WRKJSON {...}" with the request count, the duration, latency
-- percentiles (microseconds) and the status counts: 503 (refused) and any other non-200.

local requests = {}
local counter = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  refused = 0
  failed = 0
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(os.getenv("BODY_FILE")) do
    if #line > 0 then
      table.insert(requests, wrk.format("POST", nil, headers, line))
    end
  end
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function response(status, headers, body)
  if status == 503 then
    refused = refused + 1
  elseif status ~= 200 then
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local r, f = 0, 0
  for _, thread in ipairs(threads) do
    r = r + thread:get("refused")
    f = f + thread:get("failed")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "refused": %d, "failed": %d, "socket_errors": %d, ' ..
    '"timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, r, f, e.connect + e.read + e.write, e.timeout))
end
