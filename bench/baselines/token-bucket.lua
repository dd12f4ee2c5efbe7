-- One all-or-nothing decision over #KEYS token buckets, the way a team would write it for Redis.
-- ARGV holds four numbers per key: capacity, refill tokens, refill period (us), cost.
-- Each bucket is a hash {t = tokens (float), at = last update, us since epoch}.
-- Returns {allowed (0/1), retry_after_us, then per key: remaining, retry_after_us, reset_after_us}.
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local n = #KEYS
local levels = {}
local allowed = 1
local retry = 0
for i = 1, n do
  local base = (i - 1) * 4
  local cap = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2]) / tonumber(ARGV[base + 3])
  local cost = tonumber(ARGV[base + 4])
  local h = redis.call('HMGET', KEYS[i], 't', 'at')
  local level = cap
  if h[1] then
    level = math.min(cap, tonumber(h[1]) + (now - tonumber(h[2])) * rate)
  end
  levels[i] = level
  if level < cost then
    allowed = 0
    local wait = math.ceil((cost - level) / rate)
    if wait > retry then retry = wait end
  end
end
local out = {allowed, retry}
for i = 1, n do
  local base = (i - 1) * 4
  local cap = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2]) / tonumber(ARGV[base + 3])
  local cost = tonumber(ARGV[base + 4])
  local level = levels[i]
  local wait = 0
  if allowed == 1 then
    level = level - cost
    redis.call('HSET', KEYS[i], 't', tostring(level), 'at', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil((cap - level) / rate / 1000) + 1000)
  elseif level < cost then
    wait = math.ceil((cost - level) / rate)
  end
  out[#out + 1] = math.floor(level)
  out[#out + 1] = wait
  out[#out + 1] = math.ceil((cap - level) / rate)
end
return out
