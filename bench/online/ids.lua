-- wrk script: POST /predict/<model> {"user_id": ...} cycling through the ids
-- in a file (one per line), and print the results as one JSON line prefixed
-- with "WRK_JSON " in bench/serve/post.lua's shape (latencies in
-- microseconds, wrk's histogram).
--
--   wrk -t1 -c1 -d10s -s ids.lua http://127.0.0.1:PORT/predict/churn -- ids.txt

local ids = {}
local next_id = 1

function init(args)
  for line in io.lines(args[1]) do
    table.insert(ids, line)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local id = ids[next_id]
  next_id = next_id % #ids + 1
  return wrk.format(nil, nil, nil, '{"user_id": "' .. id .. '"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  local function p(q) return latency:percentile(q) end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%.1f,"p99":%.1f}}\n',
    summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout, p(50), p(99)))
end
