-- Sweep a page of orders' waits for click ids (the worker's retention sweep;
-- joins.py `forget_waits` reads the page with HSCAN and decides). A wait is
-- deleted, or given the time it lacks (stored before waits kept one), only
-- if it still holds what the sweep read: an order that joined it meanwhile
-- keeps its place.
-- KEYS[1]: the waits (hash: click id -> orders and since), KEYS[2]: join version.
-- ARGV: triples of (click id, the value read, the new value or '' to delete).
-- Returns how many waits went. Idempotent.
local removed = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    if ARGV[i + 2] == '' then
      removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
    else
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    end
  end
end
redis.call('INCR', KEYS[2])
return removed
