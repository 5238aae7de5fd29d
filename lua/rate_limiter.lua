#!lua name=ratelimit
--[[
Rate limiters, one Redis key each, atomic (one script run per request).

As a Redis Function library (Redis 7+: persisted in RDB/AOF, replicated, copied by cluster
add-node), load this file as it is:

  redis-cli -x FUNCTION LOAD REPLACE < rate_limiter.lua
  FCALL <function> 1 <key> <limit> <window_ms> [<cost>]

The same file is also a plain script for EVAL/EVALSHA (Redis 6, or where Functions are not
allowed). EVAL refuses the `#!lua name=...` first line, so empty that line first (keeping the
line numbers; creativeflow.redis.redis_lua_script mode=script does exactly that) and pass the
function's name as the first argument:

  EVALSHA <sha1> 1 <key> <function> <limit> <window_ms> [<cost>]

Every function returns {allowed (1|0), remaining, retry_after_ms (-1 when allowed), reset_ms}:
  remaining       requests (of cost 1) still allowed now, after this one;
  retry_after_ms  when denied, milliseconds until the same request would be allowed;
  reset_ms        milliseconds until the key is back to its empty state (nothing counted).
A denied request is not counted. cost (default 1) may be 0 to read the state without consuming;
a cost above limit is an error (it could never be allowed).

What naive versions get wrong and these do not:
  * the clock is the server's (TIME, or the key's own expiry), never the caller's;
  * the sliding log gives every request its own member, so two requests in the same
    microsecond are both counted;
  * expiry is in milliseconds (PEXPIRE / PX);
  * the only key touched is KEYS[1], so hash tags route it in a cluster.
]]

-- limit * window_ms * 1000 must stay below 2^53 so that the integer arithmetic on microseconds
-- is exact in Lua's doubles.
local MAX_PRODUCT = 9007199254740

local function parse(keys, args)
  if #keys ~= 1 then
    return nil, 'ERR ratelimit: exactly one key is expected, got ' .. #keys
  end
  local limit, window, cost = tonumber(args[1]), tonumber(args[2]), tonumber(args[3] or '1')
  if not limit or limit < 1 or limit ~= math.floor(limit) then
    return nil, 'ERR ratelimit: limit must be a whole number of 1 or more, got ' .. tostring(args[1])
  end
  if not window or window < 1 or window ~= math.floor(window) then
    return nil, 'ERR ratelimit: window_ms must be a whole number of 1 or more, got ' .. tostring(args[2])
  end
  if not cost or cost < 0 or cost ~= math.floor(cost) then
    return nil, 'ERR ratelimit: cost must be a whole number of 0 or more, got ' .. tostring(args[3])
  end
  if cost > limit then
    return nil, 'ERR ratelimit: cost ' .. cost .. ' is above the limit ' .. limit .. ' and could never be allowed'
  end
  if limit * window > MAX_PRODUCT then
    return nil, 'ERR ratelimit: limit * window_ms must be at most ' .. string.format('%d', MAX_PRODUCT)
  end
  return limit, window, cost
end

-- The server's clock in microseconds (exact in a double until the year 2255).
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function ceil_ms(us)
  return math.ceil(us / 1000)
end

-- Fixed window: a counter that lives window_ms from the first request of its window
-- (INCRBY, then PEXPIRE on the first hit, in the same atomic step). The clock is the key's own
-- expiry, kept by the server: no TIME call needed. Up to 2 * limit may pass around a window edge;
-- that is what a fixed window is.
local function fixed_window(keys, args)
  local limit, window, cost = parse(keys, args)
  if not limit then return redis.error_reply(window) end
  local key = keys[1]
  local n = redis.call('INCRBY', key, cost)
  local ttl
  if n == cost then
    redis.call('PEXPIRE', key, window)
    ttl = window
  else
    ttl = redis.call('PTTL', key)
    if ttl < 0 then
      -- A counter without a TTL (written by something else) would never reset.
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
  end
  if n > limit then
    redis.call('DECRBY', key, cost)
    return {0, math.max(0, limit - (n - cost)), ttl, ttl}
  end
  return {1, limit - n, -1, ttl}
end

-- Sliding window log: a sorted set with one member per admitted request, scored by the
-- server's time in microseconds; exact. The window is (now - window, now]. Members are
-- "<micros>-<count>" (count after this request): two requests in the same microsecond see
-- different counts, requests in different microseconds differ in the first part, so no two
-- requests share a member. (Only a clock stepped back onto the very microsecond of an entry
-- still in the window, with the same count, could meet one; no extra read is spent on that.)
local function sliding_log(keys, args)
  local limit, window, cost = parse(keys, args)
  if not limit then return redis.error_reply(window) end
  local key = keys[1]
  local window_us = window * 1000
  local now = now_us()
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window_us)
  local count = redis.call('ZCARD', key)
  if count + cost > limit then
    -- Allowed again once enough of the oldest entries have left the window.
    local k = count + cost - limit
    local e = redis.call('ZRANGE', key, k - 1, k - 1, 'WITHSCORES')
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    return {0, math.max(0, limit - count), ceil_ms(tonumber(e[2]) + window_us - now),
            ceil_ms(tonumber(last[2]) + window_us - now)}
  end
  if cost == 1 then
    -- The common case, without building an argument table.
    redis.call('ZADD', key, now, string.format('%d-%d', now, count + 1))
    redis.call('PEXPIRE', key, window)
    return {1, limit - count - 1, -1, window}
  end
  if cost > 0 then
    local zargs = {}
    for i = 1, cost do
      zargs[#zargs + 1] = now
      zargs[#zargs + 1] = string.format('%d-%d', now, count + i)
    end
    redis.call('ZADD', key, unpack(zargs))
    redis.call('PEXPIRE', key, window)
    return {1, limit - count - cost, -1, window}
  end
  if count == 0 then
    return {1, limit, -1, 0}
  end
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  return {1, limit - count, -1, ceil_ms(tonumber(last[2]) + window_us - now)}
end

-- Sliding window counter (approximate, O(1) memory): counts of the current and the previous
-- aligned window, the previous one weighted by how much of it still overlaps the sliding
-- window. One string "<window index>:<current>:<previous>"; integer arithmetic, exact.
local function sliding_window(keys, args)
  local limit, window, cost = parse(keys, args)
  if not limit then return redis.error_reply(window) end
  local key = keys[1]
  local window_us = window * 1000
  local now = now_us()
  local idx = math.floor(now / window_us)
  local elapsed = now - idx * window_us
  local cur, prev = 0, 0
  local v = redis.call('GET', key)
  if v then
    local i, c, p = string.match(v, '^(%d+):(%d+):(%d+)$')
    i, c, p = tonumber(i), tonumber(c), tonumber(p)
    if i == idx then
      cur, prev = c, p
    elseif i == idx - 1 then
      prev = c
    end
  end
  -- weighted * window_us = prev * (window_us - elapsed) + cur * window_us
  local left = window_us - elapsed
  local used = prev * left + cur * window_us
  if used + cost * window_us <= limit * window_us then
    cur = cur + cost
    used = used + cost * window_us
    if cost > 0 then
      -- Kept until the end of the next window, where it is still the "previous" count.
      redis.call('SET', key, string.format('%d:%d:%d', idx, cur, prev), 'PX', ceil_ms(left + window_us))
    end
    local reset = 0
    if cur > 0 then reset = ceil_ms(left + window_us) elseif prev > 0 then reset = ceil_ms(left) end
    return {1, math.floor((limit * window_us - used) / window_us), -1, reset}
  end
  -- Denied: the earliest time t (from now) at which the request fits.
  local retry
  local room = (limit - cur - cost) * window_us -- what the previous window's share may use
  if cur + cost <= limit and prev > 0 then
    -- prev * (left - t) <= room  =>  t >= left - room / prev
    retry = left - math.floor(room / prev)
  else
    -- In the next window the current count becomes the previous one.
    local room2 = (limit - cost) * window_us
    if cur > 0 then
      retry = left + math.max(0, window_us - math.floor(room2 / cur))
    else
      retry = left
    end
  end
  local reset = 0
  if cur > 0 then reset = ceil_ms(left + window_us) elseif prev > 0 then reset = ceil_ms(left) end
  return {0, math.max(0, math.floor((limit * window_us - used) / window_us)), math.max(1, ceil_ms(retry)), reset}
end

-- GCRA (a token bucket without a refill timer): one integer, the theoretical arrival time
-- (TAT) in microseconds. A full bucket holds `limit` and refills one per emission interval
-- T = floor(window_ms * 1000 / limit) microseconds, so a burst on a fresh key admits exactly
-- `limit`, and a full refill takes limit * T <= window_ms (short of it by under `limit` us).
local function gcra(keys, args)
  local limit, window, cost = parse(keys, args)
  if not limit then return redis.error_reply(window) end
  local key = keys[1]
  local t = math.floor(window * 1000 / limit)
  if t < 1 then
    return redis.error_reply('ERR ratelimit: gcra needs limit <= window_ms * 1000 (one request per microsecond)')
  end
  local cap = t * limit
  local now = now_us()
  local tat = tonumber(redis.call('GET', key) or '') or now
  if tat < now then tat = now end
  local new_tat = tat + cost * t
  if new_tat - now <= cap then
    if cost > 0 then
      redis.call('SET', key, string.format('%d', new_tat), 'PX', ceil_ms(new_tat - now))
    end
    return {1, math.floor((cap - (new_tat - now)) / t), -1, ceil_ms(new_tat - now)}
  end
  return {0, math.floor((cap - (tat - now)) / t), ceil_ms(new_tat - now - cap), ceil_ms(tat - now)}
end

local functions = {
  ratelimit_fixed_window = fixed_window,
  ratelimit_sliding_log = sliding_log,
  ratelimit_sliding_window = sliding_window,
  ratelimit_gcra = gcra,
}

if redis.register_function then
  -- FUNCTION LOAD. The load context has no pairs/ipairs: one call per function.
  redis.register_function('ratelimit_fixed_window', functions.ratelimit_fixed_window)
  redis.register_function('ratelimit_sliding_log', functions.ratelimit_sliding_log)
  redis.register_function('ratelimit_sliding_window', functions.ratelimit_sliding_window)
  redis.register_function('ratelimit_gcra', functions.ratelimit_gcra)
else
  -- EVAL/EVALSHA: ARGV[1] names the function, the rest are its arguments.
  local fn = functions[ARGV[1]]
  if not fn then
    return redis.error_reply('ERR ratelimit: the first argument must name a function: '
      .. 'ratelimit_fixed_window, ratelimit_sliding_log, ratelimit_sliding_window or ratelimit_gcra')
  end
  local rest = {}
  for i = 2, #ARGV do rest[#rest + 1] = ARGV[i] end
  return fn(KEYS, rest)
end
