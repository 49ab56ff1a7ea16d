-- meta.cache on Redis: one operation on one connector's cache, atomically.
-- KEYS: the key's data, the connector's index (a sorted set: key -> expiry in
-- ms, NEVER without one), its sizes (a hash: key -> bytes) and its total bytes.
-- ARGV: op, key, max keys, max bytes, the prefix of the connector's data keys,
-- then the operation's arguments. Sizes are counted as the in-memory cache
-- counts them: the key, plus a value's JSON or each list element and 8.
local data, index, sizes, total = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, name = ARGV[1], ARGV[2]
local max_keys, max_bytes, prefix = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local NEVER = 1e15
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local function size_of(member)
  return tonumber(redis.call('HGET', sizes, member) or '0')
end

-- Drops a key's bookkeeping (and its data, if Redis has not yet).
local function forget(member)
  local bytes = size_of(member)
  redis.call('DEL', prefix .. member)
  redis.call('HDEL', sizes, member)
  redis.call('ZREM', index, member)
  if bytes ~= 0 then redis.call('DECRBY', total, bytes) end
end

local function purge()
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', index, '-inf', now)) do
    forget(member)
  end
end

-- Whether the key holds something now; an expired key is forgotten.
local function live()
  local expiry = redis.call('ZSCORE', index, name)
  if expiry and (tonumber(expiry) <= now or redis.call('EXISTS', data) == 0) then
    forget(name)
    return false
  end
  return expiry ~= false and expiry ~= nil
end

local function refuse(code)
  error({err = code})
end

-- Refuses a write that would pass the bounds (after dropping expired keys).
local function fits(is_new, added)
  if is_new and redis.call('ZCARD', index) >= max_keys then
    purge()
    if redis.call('ZCARD', index) >= max_keys then refuse('SANDPIPE_KEYS') end
  end
  if tonumber(redis.call('GET', total) or '0') + added > max_bytes then
    purge()
    if tonumber(redis.call('GET', total) or '0') + added > max_bytes then refuse('SANDPIPE_BYTES') end
  end
end

-- Records the key's new size, and its expiry when given.
local function keep(bytes, old, expiry)
  redis.call('HSET', sizes, name, bytes)
  redis.call('INCRBY', total, bytes - old)
  if expiry then redis.call('ZADD', index, expiry, name) end
end

local function list_only()
  if redis.call('TYPE', data).ok ~= 'list' then refuse('SANDPIPE_NOTLIST') end
end

if op == 'set' then
  local json, ttl = ARGV[6], tonumber(ARGV[7])
  local had = live()
  local old = had and size_of(name) or 0
  local bytes = #name + #json
  fits(not had, bytes - old)
  redis.call('SET', data, json)
  local expiry = NEVER
  if ttl >= 0 then
    expiry = now + ttl
    redis.call('PEXPIREAT', data, expiry)
  end
  keep(bytes, old, expiry)
  return 1
elseif op == 'get' then
  if not live() then return false end
  if redis.call('TYPE', data).ok == 'list' then
    return {'list', redis.call('LRANGE', data, 0, -1)}
  end
  return {'value', redis.call('GET', data)}
elseif op == 'incr' then
  local had = live()
  local old = 0
  if had then
    if redis.call('TYPE', data).ok ~= 'string' then refuse('SANDPIPE_NOTINT') end
    local value = redis.call('GET', data)
    local digits = string.match(value, '^%-?%d+$') or string.match(value, '^"(%-?%d+)"$')
    if not digits then refuse('SANDPIPE_NOTINT') end
    if digits ~= value then redis.call('SET', data, digits, 'KEEPTTL') end
    old = size_of(name)
  end
  -- At most one more digit, or a minus sign's place.
  fits(not had, #name + 21 - old)
  local next = redis.pcall('INCR', data)
  if type(next) == 'table' and next.err then
    if string.find(next.err, 'overflow') then refuse('SANDPIPE_OVERFLOW') end
    refuse('SANDPIPE_NOTINT')
  end
  keep(#name + redis.call('STRLEN', data), old, (not had) and NEVER or nil)
  -- As text: a Lua number would round counts past 2^53.
  return redis.call('GET', data)
elseif op == 'expire' then
  if not live() then return 0 end
  local expiry = now + tonumber(ARGV[6])
  redis.call('PEXPIREAT', data, expiry)
  redis.call('ZADD', index, expiry, name)
  return 1
elseif op == 'lpush' then
  local had = live()
  if had then list_only() end
  local added = 0
  for i = 6, #ARGV do added = added + #ARGV[i] + 8 end
  local old = had and size_of(name) or 0
  local bytes = (had and old or #name) + added
  fits(not had, bytes - old)
  local length = 0
  for i = 6, #ARGV, 1000 do
    length = redis.call('LPUSH', data, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  keep(bytes, old, (not had) and NEVER or nil)
  return length
elseif op == 'lrange' then
  if not live() then return {} end
  list_only()
  return redis.call('LRANGE', data, tonumber(ARGV[6]), tonumber(ARGV[7]))
elseif op == 'llen' then
  if not live() then return 0 end
  list_only()
  return redis.call('LLEN', data)
elseif op == 'lrem' then
  if not live() then return 0 end
  list_only()
  local element = ARGV[7]
  local removed = redis.call('LREM', data, tonumber(ARGV[6]), element)
  local old = size_of(name)
  if redis.call('EXISTS', data) == 0 then forget(name) else keep(old - removed * (#element + 8), old, nil) end
  return removed
elseif op == 'lpop' then
  if not live() then return false end
  list_only()
  local count = tonumber(ARGV[6])
  if count == 0 then return {} end
  local popped = redis.call('LPOP', data, count)
  if not popped then return {} end
  local freed = 0
  for _, element in ipairs(popped) do freed = freed + #element + 8 end
  local old = size_of(name)
  if redis.call('EXISTS', data) == 0 then forget(name) else keep(old - freed, old, nil) end
  return popped
elseif op == 'clear' then
  -- The connector was reset: every key and the bookkeeping go.
  for _, member in ipairs(redis.call('ZRANGE', index, 0, -1)) do forget(member) end
  redis.call('DEL', index, sizes, total)
  return 1
end
refuse('SANDPIPE_UNKNOWN')
