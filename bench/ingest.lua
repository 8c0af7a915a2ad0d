-- bench/ingest.lua: wrk script for webhook ingestion (issue 2 item 14), driven by bench/wrk.sh.
--
-- Sends precomputed, signed GitHub deliveries to POST /repo?provider=github&token=...; the
-- signature (X-Hub-Signature-256) covers the body only, so one body serves every request. Each
-- request gets its own X-GitHub-Delivery id (run, thread, counter), so none is a duplicate.
-- A request counts as an error unless it is answered 202 with a body starting with <expect>
-- ("accepted" for stored deliveries, "ignored" for pings).
--
-- Arguments after `--`: <run-id> <expect> then, per delivery kind, <event> <body-file>
-- <signature>. Several kinds alternate request by request (the mixed scenario).

local thread_list = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   thread:set("thread_id", thread_count)
   table.insert(thread_list, thread)
end

-- Per-thread state (each wrk thread has its own Lua state). `errors` and `first_error` are
-- globals so that done() can read them with thread:get.
errors = 0
first_error = ""
local kinds = {}
local expect = "accepted"
local run_id = "0"
local sent = 0

local function read_file(path)
   local f = assert(io.open(path, "rb"))
   local data = f:read("*a")
   f:close()
   return data
end

function init(args)
   run_id = args[1]
   expect = args[2]
   local i = 3
   while args[i] do
      local event, body, signature = args[i], read_file(args[i + 1]), args[i + 2]
      -- Format the request once with a placeholder id, then keep the text around it.
      local text = wrk.format("POST", wrk.path, {
         ["Host"] = wrk.host .. ":" .. wrk.port,
         ["User-Agent"] = "GitHub-Hookshot/wrk",
         ["Content-Type"] = "application/json",
         ["X-GitHub-Event"] = event,
         ["X-Hub-Signature-256"] = signature,
         ["X-GitHub-Delivery"] = "@DELIVERY@",
      }, body)
      local at = assert(string.find(text, "@DELIVERY@", 1, true))
      table.insert(kinds, { string.sub(text, 1, at - 1), string.sub(text, at + 10) })
      i = i + 3
   end
   assert(#kinds > 0, "no delivery given")
end

function request()
   sent = sent + 1
   local kind = kinds[(sent % #kinds) + 1]
   local id = string.format("%s-%d-%d", run_id, thread_id, sent)
   return kind[1] .. id .. kind[2]
end

function response(status, headers, body)
   if status ~= 202 or string.sub(body, 1, #expect) ~= expect then
      errors = errors + 1
      if first_error == "" then
         first_error = status .. " " .. string.sub(body, 1, 80)
      end
   end
end

function done(summary, latency, requests)
   local bad, example = 0, ""
   for _, thread in ipairs(thread_list) do
      bad = bad + thread:get("errors")
      local e = thread:get("first_error")
      if example == "" and e ~= "" then
         example = e
      end
   end
   local e = summary.errors
   local socket = e.connect + e.read + e.write + e.timeout
   local seconds = summary.duration / 1e6
   -- One line for bench/wrk.sh: requests/s, latency percentiles in ms, errors.
   io.write(string.format(
      "RESULT requests=%d rps=%.0f p50=%.2f p90=%.2f p99=%.2f max=%.2f not_accepted=%d socket_errors=%d\n",
      summary.requests, summary.requests / seconds,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, bad, socket))
   if example ~= "" then
      io.write("first error: " .. example .. "\n")
   end
end
