-- REFERENCE ONLY (the benchmark's baseline), not for use: the common naive sliding-window log.
-- The caller's-style millisecond timestamp is the ZSET member, so requests in the same
-- millisecond overwrite each other and are counted once: a pipelined burst gets through.
-- KEYS[1] = key, ARGV[1] = limit, ARGV[2] = window_ms. Returns {allowed, remaining}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, now)
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - count - 1}
end
return {0, 0}
