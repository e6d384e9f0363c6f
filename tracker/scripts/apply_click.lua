-- Fold one click into its campaign's aggregates, exactly once.
-- The click row doubles as the "already applied" marker: it is written in
-- the same atomic step as the counters, so a redelivered or reclaimed entry
-- (a crash before XACK) finds it and changes nothing.
-- KEYS[1]: click rows (hash: click id -> row), KEYS[2]: campaign totals,
-- KEYS[3]: per-link counters, KEYS[4]: campaign clickers (set of recipients),
-- KEYS[5]: link clickers (set of "code recipient", and "device=<d> recipient"
-- etc. for the device, os and browser breakdowns), KEYS[6]: time series,
-- KEYS[7]: each clicker's first human click hour (recipient -> unix hour).
-- ARGV: click id, row, kind (human|preview|bot|head), code, recipient,
-- device, os, browser, hour of the click (unix hour).
-- A clicker counts in the time series at the hour of their earliest click,
-- whatever order the clicks arrive in (a reclaimed entry can come late), so
-- a report over any range counts each clicker once, where they first clicked.
local id, row, kind, code, recipient = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HSETNX', KEYS[1], id, row) == 0 then
  return 0
end
if kind == 'human' then
  redis.call('HINCRBY', KEYS[2], 'clicks', 1)
  redis.call('HINCRBY', KEYS[6], 'clicks:' .. ARGV[9], 1)
  redis.call('HINCRBY', KEYS[3], code .. ':clicks', 1)
  redis.call('HINCRBY', KEYS[2], 'device:' .. ARGV[6], 1)
  redis.call('HINCRBY', KEYS[2], 'os:' .. ARGV[7], 1)
  redis.call('HINCRBY', KEYS[2], 'browser:' .. ARGV[8], 1)
  local classes = {'device=' .. ARGV[6], 'os=' .. ARGV[7], 'browser=' .. ARGV[8]}
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
    local hour = tonumber(ARGV[9])
    if not first then
      redis.call('HSET', KEYS[7], recipient, ARGV[9])
      redis.call('HINCRBY', KEYS[6], 'unique_clickers:' .. ARGV[9], 1)
    elseif tonumber(first) > hour then
      redis.call('HSET', KEYS[7], recipient, ARGV[9])
      redis.call('HINCRBY', KEYS[6], 'unique_clickers:' .. first, -1)
      redis.call('HINCRBY', KEYS[6], 'unique_clickers:' .. ARGV[9], 1)
    end
  else
    redis.call('HINCRBY', KEYS[2], 'anonymous_clicks', 1)
    redis.call('HINCRBY', KEYS[6], 'anonymous_clicks:' .. ARGV[9], 1)
  end
else
  redis.call('HINCRBY', KEYS[2], 'non_human_clicks', 1)
  redis.call('HINCRBY', KEYS[2], 'non_human:' .. kind, 1)
  redis.call('HINCRBY', KEYS[6], 'non_human:' .. kind .. ':' .. ARGV[9], 1)
  redis.call('HINCRBY', KEYS[3], code .. ':non_human_clicks', 1)
  redis.call('HINCRBY', KEYS[6], 'non_human_clicks:' .. ARGV[9], 1)
end
return 1
