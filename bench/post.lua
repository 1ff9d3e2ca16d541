-- bench/post.lua: wrk script that POSTs one JSON body, again and again, to the URL on
-- wrk's command line. Everything comes from the environment so that one script serves
-- every request kind and target (bench/run.sh sets these):
--   BENCH_BODY_FILE  file holding the request body (required)
--   BENCH_KEY        sent as "Authorization: Bearer KEY" (nginx and the mock ignore it)
--   BENCH_HEADERS    extra request headers, one "Name: value" per line
-- done() prints one machine-readable line, exact to the microsecond, that run.sh parses:
--   BENCH_RESULT requests=N duration_us=N p50_us=N ... err_status=N (non-2xx/3xx)
local path = assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is not set")
local f = assert(io.open(path, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = (body:gsub("%s+$", ""))
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = line:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f" ..
    " mean_us=%.0f max_us=%.0f err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
