-- wrk script: POST a JSON body read from a file, and print the results as one
-- JSON line prefixed with "WRK_JSON " (latencies in microseconds).
--
--   wrk -t1 -c1 -d10s -s post.lua http://127.0.0.1:PORT/predict/churn -- body.json
--   WRK_TIMED=1 wrk -t1 -c1 ...     # also per-request ("raw") latencies
--
-- latency_us is wrk's own histogram. wrk 4 applies its coordinated-omission
-- correction to it before done() runs (stats_correct: for every sample
-- longer than the mean interval between requests of a connection it adds
-- synthetic samples), so a few millisecond stalls of a fast server turn
-- into many synthetic slow samples. With WRK_TIMED=1 the script times every
-- request itself (LuaJIT ffi, CLOCK_MONOTONIC, from request() to response())
-- and reports those samples uncorrected as raw_latency_us. That needs one
-- connection per wrk thread (the callbacks do not say which connection they
-- are for) and costs the client a little: use it for the 1-connection runs.
--
-- errors.status counts responses with a status >= 400 (wrk's rule); connect,
-- read, write and timeout are socket errors. In timed mode non2xx counts
-- every status outside 200-299 as well.

local timed = os.getenv("WRK_TIMED") == "1"

threads = {}

function setup(thread)
  table.insert(threads, thread)
end

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

if timed then
  local ffi = require("ffi")
  ffi.cdef [[
    struct bench_timespec { long tv_sec; long tv_nsec; };
    int clock_gettime(int clock_id, struct bench_timespec *tp);
  ]]
  local ts = ffi.new("struct bench_timespec")
  local CLOCK_MONOTONIC = 1
  local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
  end
  local formatted, started
  hist = {}    -- microseconds -> count; read by done() with thread:get
  non2xx = 0

  function request()
    if formatted == nil then
      formatted = wrk.format()
    end
    started = now_us()
    return formatted
  end

  function response(status, headers, body)
    local d = now_us() - started
    hist[d] = (hist[d] or 0) + 1
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
    end
  end
end

local function raw_stats()
  local merged, bad = {}, 0
  for _, t in ipairs(threads) do
    local h = t:get("hist")
    if h then
      for k, v in pairs(h) do
        merged[k] = (merged[k] or 0) + v
      end
    end
    bad = bad + (t:get("non2xx") or 0)
  end
  local keys, count, sum = {}, 0, 0
  for k, v in pairs(merged) do
    table.insert(keys, k)
    count = count + v
    sum = sum + k * v
  end
  if count == 0 then
    return nil
  end
  table.sort(keys)
  local function pct(q)
    local want, seen = math.ceil(count * q / 100), 0
    for _, k in ipairs(keys) do
      seen = seen + merged[k]
      if seen >= want then
        return k
      end
    end
    return keys[#keys]
  end
  return string.format(
    '{"count":%d,"min":%d,"mean":%.2f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},"non2xx":%d',
    count, keys[1], sum / count, keys[#keys], pct(50), pct(90), pct(99), pct(99.9), bad)
end

function done(summary, latency, requests)
  local e = summary.errors
  local function p(q) return latency:percentile(q) end
  local raw = timed and raw_stats() or nil
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%.1f,"mean":%.2f,"stdev":%.2f,"max":%.1f,' ..
    '"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f}%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    p(50), p(90), p(99), p(99.9),
    raw and (',"raw_latency_us":' .. raw) or ""))
end
