-- Forget a page of old clicks from a workspace's join state (the worker's
-- retention sweep; joins.py `forget_clicks` reads the page with HSCAN and
-- picks the clicks older than the bound).
-- KEYS[1]: click index, KEYS[2]: join version, then the history (zset) of
-- each recipient of the page's clicks.
-- ARGV[1]: the bound (ms; clicks before it go), then the clicks' ids.
-- Returns how many index entries went. Idempotent. One call a page: a
-- command a recipient from the worker cost 50 us a click (their replies
-- parsed one by one), most of the sweep's time.
local removed = 0
for at = 2, #ARGV, 1000 do
  removed = removed + redis.call('HDEL', KEYS[1], unpack(ARGV, at, math.min(at + 999, #ARGV)))
end
local upto = '(' .. ARGV[1]
for i = 3, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', upto)
end
redis.call('INCR', KEYS[2])
return removed
