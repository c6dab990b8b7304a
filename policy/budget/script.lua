-- aigw budget: one operation over all of an org's periods, atomically.
--
-- Per period i: KEYS[2i-1] is the account hash, KEYS[2i] its holds ZSET
-- (hold id -> expiry, ms); every key carries the org's hash tag.
-- The account hash has fields
--   s         committed spend, µUSD
--   r         total of the unexpired holds, µUSD
--   h:<id>    a hold's amount
--   f<pct>    threshold pct fired
--   x         the Exhausted alert fired
--
-- ARGV[1] op: "r" reserve, "c" commit, "x" release, "s" status
-- ARGV[2] now, ms since the Unix epoch (the gateway's clock)
-- ARGV[3] hold id
-- ARGV[4] amount, µUSD: the cost (reserve) or the actual cost (commit)
-- ARGV[5] the hold's expiry, ms (reserve)
-- ARGV[6] "1" to reserve even without room (PriorityOnly)
-- Then four values per period, from ARGV[7]:
--   limit     µUSD
--   expire    ms: when the period's keys may vanish; set as a PEXPIRE of
--             expire - now, so Redis's own clock does not matter
--   seed      the spend to create a missing account with, or "?" to
--             report it missing instead
--   thr       "pct:amount,pct:amount": thresholds and the spend at which
--             each fires (commit)
--
-- Returns {2, mask} when the accounts in mask (bit i-1: period i) are
-- missing and their seed is "?" (nothing changed); {3} when the hold id is
-- taken; else {code, spent_1, reserved_1, flags_1, ...}: code 1 done (for
-- a reserve: admitted) or 0 refused; reserved is before the hold for a
-- reserve, after the op otherwise; flags for a reserve: 1 no room, +2 the
-- period's first refusal; for a commit: bit j-1 when threshold j fired.
-- Every amount stays below 2^53, so Lua's numbers are exact; integers go
-- back to Redis as strings formatted with %.0f, never as Lua numbers.
local op = ARGV[1]
local now = tonumber(ARGV[2])
local id = ARGV[3]
local hf = 'h:' .. id
local amount = tonumber(ARGV[4])
local n = #KEYS / 2

local function int(x)
  return string.format('%.0f', x)
end

local function arg(i, k)
  return ARGV[6 + (i - 1) * 4 + k]
end

-- ttl returns the ms period i's keys have left (at least 1 s).
local function ttl(i)
  local t = tonumber(arg(i, 2)) - now
  if t < 1000 then
    t = 1000
  end
  return int(t)
end

-- Missing accounts: report or create.
local need = 0
local exists = {}
for i = 1, n do
  exists[i] = redis.call('EXISTS', KEYS[2 * i - 1]) == 1
  if not exists[i] and op ~= 'x' and arg(i, 3) == '?' then
    need = need + 2 ^ (i - 1)
  end
end
if need > 0 then
  return {2, need}
end

local spent, res = {}, {}
for i = 1, n do
  local A, Z = KEYS[2 * i - 1], KEYS[2 * i]
  if not exists[i] and op ~= 'x' then
    redis.call('HSET', A, 's', arg(i, 3), 'r', '0')
    redis.call('PEXPIRE', A, ttl(i))
    exists[i] = true
  end
  if exists[i] then
    -- Purge the expired holds.
    local gone = redis.call('ZRANGEBYSCORE', Z, '-inf', now, 'LIMIT', 0, 1000)
    if #gone > 0 then
      local freed = 0
      for _, h in ipairs(gone) do
        local v = redis.call('HGET', A, 'h:' .. h)
        if v then
          freed = freed + tonumber(v)
          redis.call('HDEL', A, 'h:' .. h)
        end
      end
      redis.call('ZREM', Z, unpack(gone))
      if freed > 0 then
        redis.call('HINCRBY', A, 'r', int(-freed))
      end
    end
    local v = redis.call('HMGET', A, 's', 'r')
    spent[i], res[i] = tonumber(v[1] or '0'), tonumber(v[2] or '0')
    if res[i] < 0 or redis.call('ZCARD', Z) == 0 then -- repair drift
      if res[i] ~= 0 then
        redis.call('HSET', A, 'r', '0')
      end
      res[i] = 0
    end
  else
    spent[i], res[i] = 0, 0
  end
end

local flags = {}
for i = 1, n do
  flags[i] = 0
end
local code = 1

-- removeHold takes hold id off period i; returns nothing.
local function removeHold(i)
  local A, Z = KEYS[2 * i - 1], KEYS[2 * i]
  local v = redis.call('HGET', A, hf)
  if v then
    redis.call('HDEL', A, hf)
    redis.call('ZREM', Z, id)
    local a = tonumber(v)
    if a > 0 then
      redis.call('HINCRBY', A, 'r', int(-a))
      res[i] = res[i] - a
    end
  end
end

if op == 'r' then
  for i = 1, n do
    if redis.call('HEXISTS', KEYS[2 * i - 1], hf) == 1 then
      return {3}
    end
  end
  local need1 = amount
  if need1 < 1 then
    need1 = 1
  end
  for i = 1, n do
    if spent[i] + res[i] + need1 > tonumber(arg(i, 1)) then
      flags[i] = 1
      code = 0
    end
  end
  if code == 0 and ARGV[6] ~= '1' then
    for i = 1, n do
      if flags[i] == 1 and redis.call('HSETNX', KEYS[2 * i - 1], 'x', '1') == 1 then
        flags[i] = 3
      end
    end
  else
    code = 1
    for i = 1, n do
      local A, Z = KEYS[2 * i - 1], KEYS[2 * i]
      redis.call('HSET', A, hf, ARGV[4])
      if amount > 0 then
        redis.call('HINCRBY', A, 'r', ARGV[4])
      end
      redis.call('ZADD', Z, ARGV[5], id)
      redis.call('PEXPIRE', Z, ttl(i))
    end
  end
elseif op == 'c' then
  for i = 1, n do
    local A = KEYS[2 * i - 1]
    removeHold(i)
    if amount > 0 then
      spent[i] = tonumber(redis.call('HINCRBY', A, 's', ARGV[4]))
    end
    local j = 0
    for pct, amt in string.gmatch(arg(i, 4), '(%d+):(%d+)') do
      if spent[i] >= tonumber(amt) and redis.call('HSETNX', A, 'f' .. pct, '1') == 1 then
        flags[i] = flags[i] + 2 ^ j
      end
      j = j + 1
    end
  end
elseif op == 'x' then
  for i = 1, n do
    if exists[i] then
      removeHold(i)
    end
  end
end

local out = {code}
for i = 1, n do
  out[#out + 1] = spent[i]
  out[#out + 1] = res[i]
  out[#out + 1] = flags[i]
end
return out
