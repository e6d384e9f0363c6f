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
-- Counter increments are summed in the script and written once per field at
-- the end (nothing here reads a counter back): a batch of a campaign's clicks
-- shares most fields, and each redis.call costs more than the arithmetic.
-- A clicker counts in the time series at the hour of their earliest click,
-- whatever order the clicks arrive in (a reclaimed entry can come late), so
-- a report over any range counts each clicker once, where they first clicked.
local deltas = {{}, {}, {}, {}, {}, {}, {}}
local function incr(k, field, n)
  local t = deltas[k]
  t[field] = (t[field] or 0) + (n or 1)
end

local function fold(b)
local id, row, kind, code, recipient = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4],
  ARGV[b + 5]
local device, os, browser, hour = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8], ARGV[b + 9]
if redis.call('HSETNX', KEYS[1], id, row) == 0 then
  return 0
end
if kind == 'human' then
  incr(2, 'clicks')
  incr(6, 'clicks:' .. hour)
  incr(3, code .. ':clicks')
  incr(2, 'device:' .. device)
  incr(2, 'os:' .. os)
  incr(2, 'browser:' .. browser)
  local classes = {'device=' .. device, 'os=' .. os, 'browser=' .. browser}
  for _, c in ipairs(classes) do
    incr(3, c .. ':clicks')
  end
  if recipient ~= '' then
    if redis.call('SADD', KEYS[4], recipient) == 1 then
      incr(2, 'unique_clickers')
    end
    if redis.call('SADD', KEYS[5], code .. ' ' .. recipient) == 1 then
      incr(3, code .. ':unique_clickers')
    end
    for _, c in ipairs(classes) do
      if redis.call('SADD', KEYS[5], c .. ' ' .. recipient) == 1 then
        incr(3, c .. ':unique_clickers')
      end
    end
    local first = redis.call('HGET', KEYS[7], recipient)
    if not first then
      redis.call('HSET', KEYS[7], recipient, hour)
      incr(6, 'unique_clickers:' .. hour)
    elseif tonumber(first) > tonumber(hour) then
      redis.call('HSET', KEYS[7], recipient, hour)
      incr(6, 'unique_clickers:' .. first, -1)
      incr(6, 'unique_clickers:' .. hour)
    end
  else
    incr(2, 'anonymous_clicks')
    incr(6, 'anonymous_clicks:' .. hour)
  end
else
  incr(2, 'non_human_clicks')
  incr(2, 'non_human:' .. kind)
  incr(6, 'non_human:' .. kind .. ':' .. hour)
  incr(3, code .. ':non_human_clicks')
  incr(6, 'non_human_clicks:' .. hour)
end
return 1
end

local out = {}
for b = 0, #ARGV - 9, 9 do
  out[#out + 1] = fold(b)
end
for k = 1, 7 do
  for field, n in pairs(deltas[k]) do
    redis.call('HINCRBY', KEYS[k], field, n)
  end
end
return out
