#!lua name=session
--[[
Sessions as hashes with a TTL, each operation atomic and on KEYS[1] only (hash tags work in a
cluster). TTLs are given in seconds and set with PEXPIRE (milliseconds), in the same step as
the read or write, so a session never outlives its TTL by a round trip.

As a Redis Function library: `redis-cli -x FUNCTION LOAD REPLACE < session_operations.lua`, then
  FCALL session_create 1 <key> <ttl_s> <field> <value> [<field> <value> ...]
      1 when created, 0 when the session already exists (it is left as it was)
  FCALL session_update_and_extend 1 <key> <ttl_s> <field> <value> [<field> <value> ...]
      1 when updated and its TTL reset to ttl_s, 0 when there is no such session (none is created:
      an expired or destroyed session is not brought back by a late update)
  FCALL session_get_and_extend 1 <key> <ttl_s>
      the hash's fields and values (flat: field, value, ...) with the TTL reset, empty when absent
  FCALL session_destroy 1 <key>
      1 when removed, 0 when absent

As a plain script (EVAL/EVALSHA): empty the first line (creativeflow.redis.redis_lua_script
mode=script does) and pass the function's name first:
  EVALSHA <sha1> 1 <key> session_get_and_extend <ttl_s>
]]

local MAX_TTL_S = 9007199254740 -- ttl_s * 1000 stays exact

local function key_of(keys)
  if #keys ~= 1 then
    return nil, 'ERR session: exactly one key is expected, got ' .. #keys
  end
  return keys[1]
end

local function ttl_of(v)
  local ttl = tonumber(v)
  if not ttl or ttl < 1 or ttl ~= math.floor(ttl) or ttl > MAX_TTL_S then
    return nil, 'ERR session: ttl_s must be a whole number of seconds, 1 or more, got ' .. tostring(v)
  end
  return ttl * 1000
end

local function pairs_of(args)
  if #args < 3 or (#args - 1) % 2 ~= 0 then
    return nil, 'ERR session: expected <ttl_s> <field> <value> [<field> <value> ...]'
  end
  local out = {}
  for i = 2, #args do out[#out + 1] = args[i] end
  return out
end

local function parse_write(keys, args)
  local key, err = key_of(keys)
  if not key then return nil, err end
  local ttl, terr = ttl_of(args[1])
  if not ttl then return nil, terr end
  local fields, ferr = pairs_of(args)
  if not fields then return nil, ferr end
  return key, ttl, fields
end

local function create(keys, args)
  local key, ttl, fields = parse_write(keys, args)
  if not key then return redis.error_reply(ttl) end
  if redis.call('EXISTS', key) == 1 then
    return 0
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttl)
  return 1
end

local function update_and_extend(keys, args)
  local key, ttl, fields = parse_write(keys, args)
  if not key then return redis.error_reply(ttl) end
  if redis.call('EXISTS', key) == 0 then
    return 0
  end
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIRE', key, ttl)
  return 1
end

local function get_and_extend(keys, args)
  local key, err = key_of(keys)
  if not key then return redis.error_reply(err) end
  if #args ~= 1 then
    return redis.error_reply('ERR session: expected <ttl_s>')
  end
  local ttl, terr = ttl_of(args[1])
  if not ttl then return redis.error_reply(terr) end
  local h = redis.call('HGETALL', key)
  if #h > 0 then
    redis.call('PEXPIRE', key, ttl)
  end
  return h
end

local function destroy(keys, args)
  local key, err = key_of(keys)
  if not key then return redis.error_reply(err) end
  if #args ~= 0 then
    return redis.error_reply('ERR session: session_destroy takes no arguments')
  end
  return redis.call('DEL', key)
end

local functions = {
  session_create = create,
  session_update_and_extend = update_and_extend,
  session_get_and_extend = get_and_extend,
  session_destroy = destroy,
}

if redis.register_function then
  -- FUNCTION LOAD. The load context has no pairs/ipairs: one call per function.
  redis.register_function('session_create', functions.session_create)
  redis.register_function('session_update_and_extend', functions.session_update_and_extend)
  redis.register_function('session_get_and_extend', functions.session_get_and_extend)
  redis.register_function('session_destroy', functions.session_destroy)
else
  local fn = functions[ARGV[1]]
  if not fn then
    return redis.error_reply('ERR session: the first argument must name a function: '
      .. 'session_create, session_update_and_extend, session_get_and_extend or session_destroy')
  end
  local rest = {}
  for i = 2, #ARGV do rest[#rest + 1] = ARGV[i] end
  return fn(KEYS, rest)
end
