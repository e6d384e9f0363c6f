-- Record clicks where orders can find them, in the workspace's join slot:
-- the click index (click id -> campaign, recipient, code, time), for an
-- order that carries its click id, and each recipient's click history, for
-- last-click attribution. Idempotent (HSET, ZADD). It raises the join
-- version, so a concurrent attribution that read the old history runs again.
-- KEYS[1]: click index, KEYS[2]: join version, KEYS[3]: orders waiting for a
-- click id, then per click: the recipient's click history (zset) and orders (set).
-- ARGV: per click: click id, encoded click, time, 1 if it has a recipient.
-- Returns per click {number of the recipient's orders, waiting orders or ''}.
local out = {}
for i = 0, (#ARGV / 4) - 1 do
  local id, ref, ts, has = ARGV[i * 4 + 1], ARGV[i * 4 + 2], ARGV[i * 4 + 3], ARGV[i * 4 + 4]
  redis.call('HSET', KEYS[1], id, ref)
  local orders = 0
  if has == '1' then
    redis.call('ZADD', KEYS[4 + i * 2], ts, id)
    orders = redis.call('SCARD', KEYS[5 + i * 2])
  end
  out[#out + 1] = {orders, redis.call('HGET', KEYS[3], id) or ''}
end
redis.call('INCR', KEYS[2])
return out
