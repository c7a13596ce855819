-- users_app/rate_limits.py's gcra_admit, run inside Redis so a call's check and update are one atomic step.
-- KEYS: the call's buckets (each holds its theoretical arrival time in ms; absent = full).
-- ARGV[1]: the runs of items, ";"-separated, each "numbers*count": the ","-separated 1-based numbers of the
--          buckets each of its `count` items counts against ("0": none).
-- ARGV[2]: "1" = admit the call whole or not at all.
-- ARGV[3]: the limits, ";"-separated, each "interval,tolerance" (ms per token, burst * interval).
-- ARGV[4]: each bucket's limit (1-based), ","-separated.
-- Returns {retry_ms, "admitted_1,blocking_1;...;admitted_n,blocking_n"}: per run, how many of its first items
-- were admitted and the number of the bucket that refused the rest (0 if none was); {0, ""} when all were admitted.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local clock = redis.call("TIME")
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000

local limits = {}
for pair in string.gmatch(ARGV[3], "[^;]+") do
  local interval_text, tolerance_text = string.match(pair, "([^,]+),([^,]+)")
  limits[#limits + 1] = {tonumber(interval_text), tonumber(tolerance_text)}
end

local count = #KEYS
local stored = redis.call("MGET", unpack(KEYS))
local interval, tolerance, start, room, used, waiting = {}, {}, {}, {}, {}, {}
local k = 0
for number in string.gmatch(ARGV[4], "%d+") do
  k = k + 1
  local limit = limits[tonumber(number)]
  interval[k] = limit[1]
  tolerance[k] = limit[2]
  start[k] = math.max(tonumber(stored[k] or "0") or 0, now)
  -- (start - now) first, and an epsilon of a token: as gcra_admit in rate_limits.py (rounding must not cost a token).
  room[k] = math.floor((tolerance[k] - (start[k] - now)) / interval[k] + 1e-6)
  used[k] = 0
  waiting[k] = 0
end

local rows, counts, admitted, refused, any_refused = {}, {}, {}, {}, false
for run in string.gmatch(ARGV[1], "[^;]+") do
  local numbers, count_text = string.match(run, "([^*]*)%*(%d+)")
  local items = tonumber(count_text)
  local row, times = {}, {}
  for number in string.gmatch(numbers, "%d+") do
    local bucket = tonumber(number)
    if bucket > 0 then
      row[#row + 1] = bucket
      times[bucket] = (times[bucket] or 0) + 1
    end
  end
  -- Item by item, one is admitted while each of its buckets has used < room: the run's first `fits` are.
  local fits = items
  for k, n in pairs(times) do
    local left = room[k] - used[k]
    local most = 0
    if left > 0 then most = math.ceil(left / n) end
    if most < fits then fits = most end
  end
  for _, k in ipairs(row) do used[k] = used[k] + fits end
  local blocking = 0
  if fits < items then
    any_refused = true
    for _, k in ipairs(row) do
      if used[k] >= room[k] then blocking = k break end
    end
  end
  rows[#rows + 1] = row
  counts[#counts + 1] = items
  admitted[#admitted + 1] = fits
  refused[#refused + 1] = blocking
end

if ARGV[2] == "1" and any_refused then
  local first = 0
  for _, blocking in ipairs(refused) do
    if blocking > 0 then first = blocking break end
  end
  for i = 1, #refused do
    refused[i] = first
    admitted[i] = 0
  end
  for k = 1, count do used[k] = 0 end
end

local retry = 0
for i, row in ipairs(rows) do
  for _, k in ipairs(row) do waiting[k] = waiting[k] + counts[i] - admitted[i] end
end
for k = 1, count do
  local arrival = start[k] + used[k] * interval[k]
  if used[k] > 0 then
    -- Expires when the bucket is full again: an absent key means exactly that, so memory stays bounded.
    redis.call("SET", KEYS[k], string.format("%.3f", arrival), "PX", math.ceil(arrival - now) + 1000)
  end
  if waiting[k] > 0 then
    local burst = math.max(math.floor(tolerance[k] / interval[k] + 0.5), 1)
    local wait = arrival + math.min(waiting[k], burst) * interval[k] - tolerance[k] - now
    if wait > retry then retry = wait end
  end
end

-- Usually nothing is refused: then the answer is short, whatever the call's size.
if not any_refused then return {0, ""} end
for i = 1, #refused do refused[i] = admitted[i] .. "," .. refused[i] end
return {math.ceil(retry), table.concat(refused, ";")}
