-- Fold clicks of one campaign into its aggregates, each exactly once.
-- The click row doubles as the "already applied" marker: it is written in
-- the same atomic step as the counters, so a redelivered or reclaimed entry
-- (a crash before XACK) finds it and changes nothing.
-- KEYS[1]: click rows (hash: click id -> row), KEYS[2]: campaign totals,
-- KEYS[3]: per-link counters, KEYS[4]: campaign clickers (set of recipients),
-- KEYS[5]: link clickers (set of "code recipient", and "device=<d> recipient"
-- etc. for the device, os and browser breakdowns), KEYS[6]: time series,
-- KEYS[7]: each clicker's first human click hour (recipient -> unix hour).
-- ARGV: per click, nine values: click id, row, kind (human|preview|bot|head),
-- code, recipient, device, os, browser, hour of the click (unix hour).
-- Returns per click 1 (folded) or 0 (already folded). One call carries a
-- batch: the script's own overhead was most of the cost of a click.
-- A clicker counts in the time series at the hour of their earliest click,
-- whatever order the clicks arrive in (a reclaimed entry can come late), so
-- a report over any range counts each clicker once, where they first clicked.
local function fold(b)
local id, row, kind, code, recipient = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4],
  ARGV[b + 5]
local device, os, browser, hour = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8], ARGV[b + 9]
if redis.call('HSETNX', KEYS[1], id, row) == 0 then
  return 0
end
if kind == 'human' then
  redis.call('HINCRBY', KEYS[2], 'clicks', 1)
  redis.call('HINCRBY', KEYS[6], 'clicks:' .. hour, 1)
  redis.call('HINCRBY', KEYS[3], code .. ':clicks', 1)
  redis.call('HINCRBY', KEYS[2], 'device:' .. device, 1)
  redis.call('HINCRBY', KEYS[2], 'os:' .. os, 1)
  redis.call('HINCRBY', KEYS[2], 'browser:' .. browser, 1)
  local classes = {'device=' .. device, 'os=' .. os, 'browser=' .. browser}
  for _, c in ipairs(classes) do
    redis.call('HINCRBY', KEYS[3], c .. ':clicks', 1)
  end
  if recipient ~= '' then
    if redis.call('SADD', KEYS[4], recipient) == 1 then
      redis.call('HINCRBY', KEYS[2], 'unique_clickers', 1)
    end
    if redis.call('SADD', KEYS[5], code .. ' ' .. recipient) == 1 then
      redis.call('HINCRBY', KEYS[3], code .. ':unique_clickers', 1)
    end
    for _, c in ipairs(classes) do
      if redis.call('SADD', KEYS[5], c .. ' ' .. recipient) == 1 then
        redis.call('HINCRBY', KEYS[3], c .. ':unique_clickers', 1)
      end
    end
    local first = redis.call('HGET', KEYS[7], recipient)
    if not first then
      redis.call('HSET', KEYS[7], recipient, hour)
      redis.call('HINCRBY', KEYS[6], 'unique_clickers:' .. hour, 1)
    elseif tonumber(first) > tonumber(hour) then
      redis.call('HSET', KEYS[7], recipient, hour)
      redis.call('HINCRBY', KEYS[6], 'unique_clickers:' .. first, -1)
      redis.call('HINCRBY', KEYS[6], 'unique_clickers:' .. hour, 1)
    end
  else
    redis.call('HINCRBY', KEYS[2], 'anonymous_clicks', 1)
    redis.call('HINCRBY', KEYS[6], 'anonymous_clicks:' .. hour, 1)
  end
else
  redis.call('HINCRBY', KEYS[2], 'non_human_clicks', 1)
  redis.call('HINCRBY', KEYS[2], 'non_human:' .. kind, 1)
  redis.call('HINCRBY', KEYS[6], 'non_human:' .. kind .. ':' .. hour, 1)
  redis.call('HINCRBY', KEYS[3], code .. ':non_human_clicks', 1)
  redis.call('HINCRBY', KEYS[6], 'non_human_clicks:' .. hour, 1)
end
return 1
end

local out = {}
for b = 0, #ARGV - 9, 9 do
  out[#out + 1] = fold(b)
end
return out
