-- Register a message with its campaign and fold in statuses, exactly once.
-- A message's state is derived from the set of statuses seen (bits: sent 1,
-- delivered 2, read 4, failed 8): read implies delivered, and failed counts
-- only while the message never got past sent. Duplicates change nothing and
-- any arrival order ends in the same counts.
-- KEYS[1]: message bits (hash wamid -> bits), KEYS[2]: campaign totals,
-- KEYS[3]: campaign recipients (set), KEYS[4]: time series.
-- ARGV[1]: wamid, ARGV[2]: status bits to add (0: just register),
-- ARGV[3]: recipient ('' if unknown), ARGV[4]: the message's send hour (unix
-- hour, '' if unknown).
-- The time series counts each message at its send hour (the first one given,
-- kept beside the bits), with the state it reached: a report over a range
-- shows the messages sent in it and what became of them.
local known = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local new = bit.bor(old, tonumber(ARGV[2]))
if ARGV[3] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[3])
end
local hfield = ARGV[1] .. '\31h'
local hour = redis.call('HGET', KEYS[1], hfield)
local placed = false
if not hour and ARGV[4] ~= '' then
  -- the send hour arrives now: place what the message already counts there
  hour = ARGV[4]
  redis.call('HSET', KEYS[1], hfield, hour)
  placed = true
end
if known and new == old and not placed then
  return 0
end
local function series(name, by)
  if hour and by ~= 0 then
    redis.call('HINCRBY', KEYS[4], name .. ':' .. hour, by)
  end
end
if not known then
  redis.call('HINCRBY', KEYS[2], 'messages', 1)
end
if not known or placed then
  series('messages', 1)
end
local function state(b)
  local rank = 0
  if bit.band(b, 4) ~= 0 then rank = 3
  elseif bit.band(b, 2) ~= 0 then rank = 2
  elseif bit.band(b, 1) ~= 0 then rank = 1 end
  local failed = 0
  if bit.band(b, 8) ~= 0 and rank < 2 then failed = 1 end
  return rank, failed
end
local r0, f0 = state(old)
local r1, f1 = state(new)
local names = {'sent', 'delivered', 'read'}
for i = 1, 3 do
  local was = (r0 >= i) and 1 or 0
  local is = (r1 >= i) and 1 or 0
  if is ~= was then
    redis.call('HINCRBY', KEYS[2], names[i], is - was)
  end
  -- newly placed: the whole state goes to the series; else only the change
  if placed then series(names[i], is) else series(names[i], is - was) end
end
if f1 ~= f0 then
  redis.call('HINCRBY', KEYS[2], 'failed', f1 - f0)
end
if placed then series('failed', f1) else series('failed', f1 - f0) end
redis.call('HSET', KEYS[1], ARGV[1], new)
return 1
