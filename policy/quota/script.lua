-- aigw quota: one decision over all of an org's limits, atomically.
--
-- KEYS[i] is the state key of rule i; every key carries the org's hash tag.
-- ARGV[1]: now, µs since the Unix epoch (the gateway's clock).
-- ARGV[2]: "t" to take (check every rule, then consume all or none) or
--          "a" to adjust (add signed costs, no checks).
-- Then six values per rule, starting at ARGV[3]:
--   kind  "r" rate (a leaky bucket in scaled integer units) or "c" counter
--   cost  scaled units (rate) or count (counter); signed when adjusting
--   p1    rate: drain per tick        counter: limit
--   p2    rate: µs per tick           counter: key lifetime (ms)
--   p3    rate: capacity              counter: unused
--   flag  "e" enforced or "s" shadow (over its limit: neither refuses nor
--         is consumed)
-- A rate's state is "level last": the level after draining to time last.
-- Every number stays below 2^52, so Lua's doubles compute exactly.
-- Returns {allowed, level_1, last_1, ..., level_n, last_n}, the state
-- before this call (a counter's last is 0).
local now = tonumber(ARGV[1])
local take = ARGV[2] == 't'
local n = #KEYS
local lvl, lst = {}, {}
local allowed = 1
for i = 1, n do
  local a = 3 + (i - 1) * 6
  local v = redis.call('GET', KEYS[i])
  local cost = tonumber(ARGV[a + 1])
  local limit
  if ARGV[a] == 'r' then
    local rate, res = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local level, t = 0, now
    if v then
      local sp = string.find(v, ' ', 1, true)
      level = tonumber(string.sub(v, 1, sp - 1))
      t = tonumber(string.sub(v, sp + 1))
      if level <= 0 then
        level, t = 0, now
      elseif now > t then
        local el = math.floor((now - t) / res)
        if el > 0 then
          if el * rate >= level then
            level, t = 0, now
          else
            level, t = level - el * rate, t + el * res
          end
        end
      end
    end
    lvl[i], lst[i] = level, t
    limit = tonumber(ARGV[a + 4])
  else
    lvl[i], lst[i] = tonumber(v or '0'), 0
    limit = tonumber(ARGV[a + 2])
  end
  if take and ARGV[a + 5] == 'e' and lvl[i] + cost > limit then
    allowed = 0
  end
end
if allowed == 1 then
  for i = 1, n do
    local a = 3 + (i - 1) * 6
    local cost = tonumber(ARGV[a + 1])
    local limit = tonumber(ARGV[a + 4])
    if ARGV[a] == 'c' then
      limit = tonumber(ARGV[a + 2])
    end
    if cost ~= 0 and (not take or lvl[i] + cost <= limit) then
      local level = lvl[i] + cost
      if level > 4503599627370496 then
        level = 4503599627370496
      end
      if level <= 0 then
        redis.call('DEL', KEYS[i])
      elseif ARGV[a] == 'r' then
        local rate, res = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
        local ahead = lst[i] - now
        if ahead < 0 then
          ahead = 0
        end
        local ttl = math.ceil((math.ceil(level / rate) * res + ahead) / 1000) + 1
        redis.call('SET', KEYS[i], string.format('%.0f %.0f', level, lst[i]), 'PX', ttl)
      else
        redis.call('SET', KEYS[i], string.format('%.0f', level), 'PX', ARGV[a + 3])
      end
    end
  end
end
local out = {allowed}
for i = 1, n do
  out[2 * i] = lvl[i]
  out[2 * i + 1] = lst[i]
end
return out
