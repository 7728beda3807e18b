-- wrk script: every request carries a random x-user-id (1 of 10 million), so routing hashes a
-- new key each time, as in production; a GET whose url ends with "/" also names a random order,
-- "o<n>" with n in 1..BENCH_AFFINITY_IDS (default 10000): a bounded pool, so that with affinity
-- lookups on, the gateway's per-replica cache (owners, and unknown ids for 1 s) sees repeats.
-- the POST variants set `method` and `body_bytes` and then load this file.
method = method or "GET"
body_bytes = body_bytes or 0

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local body = nil
local path = nil
local per_order = false
local order_ids = 10000

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
  path = wrk.path
  per_order = method == "GET" and path:sub(-1) == "/"
  order_ids = tonumber(os.getenv("BENCH_AFFINITY_IDS") or "") or 10000
  if body_bytes > 0 then
    -- a JSON order of exactly body_bytes bytes; orderId lets affinity learn from the echo
    local head = '{"orderId":"o-bench-1","currency":"CNY","items":[{"sku":"A-1","qty":1,"price":19.99}],"pad":"'
    local tail = '"}'
    body = head .. string.rep("x", body_bytes - #head - #tail) .. tail
  end
end

function request()
  local headers = { ["x-user-id"] = "u" .. math.random(1, 10000000) }
  local p = path
  if per_order then p = path .. "o" .. math.random(1, order_ids) end
  if body then headers["content-type"] = "application/json" end
  return wrk.format(method, p, headers, body)
end
