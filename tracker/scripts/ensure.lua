-- Set one fact's contribution to a campaign, exactly once and in any order.
-- A fact (an order, a converter, a reply, an opt-out) has a version that the
-- join step raises whenever its contribution changes. This script swaps the
-- stored contribution for the given one, adjusting the campaign's counters
-- and distinct sets by the difference, and does nothing unless the version
-- is newer than the stored one: a replayed or late-arriving older version
-- can never undo a newer one, and a replay of the same version is a no-op.
-- KEYS[1]: contributions (hash fact -> {v, c, s}), KEYS[2]: campaign totals,
-- KEYS[3]: set reference counts (hash "set<US>member" -> n), KEYS[4]: rows,
-- KEYS[5]: time series (counters named "@..."), KEYS[6]: per-link counters
-- ("#..."), KEYS[7]: order counters by order hour and hours from click
-- ("%..."), for reports over a time range; kept apart so the totals a report
-- reads stay small.
-- ARGV[1]: fact id, ARGV[2]: version, ARGV[3]: contribution {c, s, row}.
local old = redis.call('HGET', KEYS[1], ARGV[1])
local prev = {c = {}, s = {}}
local prev_v = 0
if old then
  prev = cjson.decode(old)
  prev_v = tonumber(prev.v) or 0
end
local v = tonumber(ARGV[2])
if prev_v >= v then
  return 0
end
local new = cjson.decode(ARGV[3])
local nc, ns, pc, ps = new.c or {}, new.s or {}, prev.c or {}, prev.s or {}
local delta = {}
for k, n in pairs(pc) do delta[k] = (delta[k] or 0) - n end
for k, n in pairs(nc) do delta[k] = (delta[k] or 0) + n end
for k, d in pairs(delta) do
  if d ~= 0 then
    local first = string.sub(k, 1, 1)
    if first == '@' then
      redis.call('HINCRBY', KEYS[5], string.sub(k, 2), string.format('%.0f', d))
    elseif first == '#' then
      redis.call('HINCRBY', KEYS[6], string.sub(k, 2), string.format('%.0f', d))
    elseif first == '%' then
      redis.call('HINCRBY', KEYS[7], string.sub(k, 2), string.format('%.0f', d))
    else
      redis.call('HINCRBY', KEYS[2], k, string.format('%.0f', d))
    end
  end
end
-- Distinct members (repliers, opted-out recipients) with reference counts;
-- the distinct count of a set is the campaign total 'unique:<set>'.
local function step(set, member, by)
  local field = set .. '\31' .. member
  local n = redis.call('HINCRBY', KEYS[3], field, by)
  if by > 0 and n == 1 then
    redis.call('HINCRBY', KEYS[2], 'unique:' .. set, 1)
  elseif by < 0 and n <= 0 then
    redis.call('HDEL', KEYS[3], field)
    redis.call('HINCRBY', KEYS[2], 'unique:' .. set, -1)
  end
end
for set, member in pairs(ps) do
  if ns[set] ~= member then step(set, member, -1) end
end
for set, member in pairs(ns) do
  if ps[set] ~= member then step(set, member, 1) end
end
if new.row then
  redis.call('HSET', KEYS[4], ARGV[1], new.row)
else
  redis.call('HDEL', KEYS[4], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({v = v, c = nc, s = ns}))
return 1
