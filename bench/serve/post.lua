-- wrk script: POST a JSON body read from a file, and print the results as one
-- JSON line (latencies in microseconds) prefixed with "WRK_JSON ".
--
--   wrk -t1 -c1 -d10s -s post.lua http://127.0.0.1:PORT/predict/churn -- body.json
--
-- errors.status counts responses with a status >= 400 (wrk's rule); connect,
-- read, write and timeout are socket errors. No response() callback: it
-- would make wrk parse every body and slow the client down.

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s post.lua URL -- BODY_FILE")
  end
  local f = assert(io.open(path, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  local function p(q) return latency:percentile(q) end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%.1f,"mean":%.2f,"stdev":%.2f,"max":%.1f,' ..
    '"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    p(50), p(90), p(99), p(99.9)))
end
