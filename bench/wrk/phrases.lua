-- wrk script for bench/embedder.py: POST one phrase per request to /v1/embeddings.
--
-- Usage: wrk ... -s bench/wrk/phrases.lua <url> -- <bodies-file> <mode> <threads>
--   bodies-file  one ready-made JSON request body per line ({"input": "..."}), written by
--                bench/embedder.py so no escaping happens here
--   mode         "once":  each phrase is sent at most once; a thread that runs out of phrases
--                         stops (and reports exhausted=1) rather than repeat one
--                "cycle": phrases are replayed in a loop (cache-hit phases)
--   threads      the -t given to wrk (each thread takes a disjoint slice of the file)
--
-- Each wrk thread has its own Lua state, so the counters below are per thread; done() (run
-- once, in the main state) collects them and prints one line "BENCH_JSON {...}" that
-- bench/embedder.py parses. Latencies are in microseconds, as wrk gives them.

local threads = {}

-- Main state: number the threads so each can pick its own slice in init().
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Thread state from here to response().
local requests = {}   -- pre-built HTTP requests for this thread's slice
local mode = "once"
local next_index = 1

-- Counters read by done() through thread:get (globals on purpose).
first = 0       -- 0-based line number of this thread's first phrase in the file
sent = 0        -- phrases handed to wrk by request()
ok = 0          -- 2xx responses
non2xx = 0      -- other responses
computed = 0    -- 2xx whose item says "cached":false
cached = 0      -- 2xx whose item says "cached":true
exhausted = 0   -- 1 if a "once" thread ran out of phrases

function init(args)
  local path, nthreads = args[1], tonumber(args[3])
  mode = args[2] or "once"
  local lines = {}
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  -- Thread tid of nthreads takes lines [lo, hi) (0-based), disjoint from the other threads.
  local lo = math.floor(tid * #lines / nthreads)
  local hi = math.floor((tid + 1) * #lines / nthreads)
  first = lo
  local headers = { ["Content-Type"] = "application/json" }
  for i = lo + 1, hi do
    requests[#requests + 1] = wrk.format("POST", "/v1/embeddings", headers, lines[i])
  end
end

function request()
  if next_index > #requests then
    if mode == "cycle" and #requests > 0 then
      next_index = 1
    else
      -- Never repeat a phrase: stop this thread. wrk still wants a request string for the
      -- connection; a health check is harmless and not a phrase.
      exhausted = 1
      wrk.thread:stop()
      return wrk.format("GET", "/health")
    end
  end
  local req = requests[next_index]
  next_index = next_index + 1
  sent = sent + 1
  return req
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    return
  end
  ok = ok + 1
  -- One phrase per request, so one "cached" flag per body (orjson writes no spaces).
  if string.find(body, '"cached":false', 1, true) then
    computed = computed + 1
  elseif string.find(body, '"cached":true', 1, true) then
    cached = cached + 1
  end
end

-- Main state again, after the run.
function done(summary, latency, requests_stats)
  local totals = { sent = 0, ok = 0, non2xx = 0, computed = 0, cached = 0, exhausted = 0 }
  local per_thread = {}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
    per_thread[#per_thread + 1] = string.format('{"first":%d,"sent":%d,"ok":%d}',
      thread:get("first"), thread:get("sent"), thread:get("ok"))
  end
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"socket_errors":%d', e.connect + e.read + e.write + e.timeout),
    string.format('"timeouts":%d', e.timeout),
    string.format('"status_errors":%d', e.status),
    string.format('"latency_mean_us":%.1f', latency.mean),
    string.format('"latency_max_us":%d', latency.max),
    string.format('"p50_us":%d', latency:percentile(50)),
    string.format('"p90_us":%d', latency:percentile(90)),
    string.format('"p99_us":%d', latency:percentile(99)),
    '"threads":[' .. table.concat(per_thread, ",") .. ']',
  }
  for name, value in pairs(totals) do
    parts[#parts + 1] = string.format('"%s":%d', name, value)
  end
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
