-- wrk script: POST the lines of a file in turn (each line one JSON body, e.g.
-- {"user_id": "u0000042"} for scoring by id, or {"user_id": ..., "features":
-- {...}} for features sent), and print the results as one JSON line prefixed
-- with "WRK_JSON ", in bench/serve/post.lua's shape (latencies in
-- microseconds).
--
--   wrk -t1 -c1 -d10s -s bodies.lua http://127.0.0.1:PORT/predict/churn -- bodies.ndjson
--   WRK_TIMED=1 wrk -t1 -c1 ...     # also per-request ("raw") latencies
--
-- Every wrk thread starts at its own offset in the file (thread k at line
-- 1 + k * 0.618... * lines, modulo the line count: setup() and init() run
-- thread by thread, so init cannot know how many threads follow) and cycles
-- through it, so a run scores many distinct users rather than one answer.
--
-- latency_us is wrk's own histogram, which wrk 4 "corrects" for coordinated
-- omission before done() runs (see bench/serve/post.lua). With WRK_TIMED=1
-- (one connection per thread) the script times every request itself
-- (LuaJIT ffi, CLOCK_MONOTONIC, from request() to response()) and reports
-- those samples uncorrected as raw_latency_us.
--
-- errors.status counts responses with a status >= 400 (wrk's rule); in timed
-- mode non2xx counts every status outside 200-299 as well.

local timed = os.getenv("WRK_TIMED") == "1"

threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local bodies = {}
local next_body = 1

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s bodies.lua URL -- BODIES_FILE")
  end
  for line in io.lines(path) do
    if line ~= "" then
      table.insert(bodies, line)
    end
  end
  if #bodies == 0 then
    error(path .. " has no bodies")
  end
  local index = tonumber(thread_index) or 0
  next_body = 1 + math.floor(index * 0.6180339887 * #bodies) % #bodies
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local function next_request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, body)
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
  local started
  hist = {}    -- microseconds -> count; read by done() with thread:get
  non2xx = 0

  function request()
    local r = next_request()
    started = now_us()
    return r
  end

  function response(status, headers, body)
    local d = now_us() - started
    hist[d] = (hist[d] or 0) + 1
    if status < 200 or status > 299 then
      non2xx = non2xx + 1
    end
  end
else
  request = next_request
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
