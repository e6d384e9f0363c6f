-- Record clicks where orders can find them, in the workspace's join slot:
-- the click index (click id -> campaign, recipient, code, time), for an
-- order that carries its click id, and each recipient's click history, for
-- last-click attribution. Idempotent (HSET, ZADD). It raises the join
-- version, so a concurrent attribution that read the old history runs again.
-- KEYS[1]: click index, KEYS[2]: join version, KEYS[3]: orders waiting for a
-- click id, then per click: the recipient's click history (zset) and orders (set).
-- ARGV: per click: click id, encoded click, time, 1 if it has a recipient.
-- Returns per click {number of the recipient's orders, waiting orders or ''}.
-- The index and the waiting orders are written and read once per batch (a
-- redis.call costs more than the work of one field).
local n = #ARGV / 4
local pairs_, ids = {}, {}
for i = 0, n - 1 do
  ids[i + 1] = ARGV[i * 4 + 1]
  pairs_[#pairs_ + 1] = ARGV[i * 4 + 1]
  pairs_[#pairs_ + 1] = ARGV[i * 4 + 2]
end
-- (unpack in slices: Lua's stack takes about 8,000 values)
for at = 1, #pairs_, 1000 do
  redis.call('HSET', KEYS[1], unpack(pairs_, at, math.min(at + 999, #pairs_)))
end
local waiting = {}
for at = 1, n, 1000 do
  local got = redis.call('HMGET', KEYS[3], unpack(ids, at, math.min(at + 999, n)))
  for j = 1, #got do
    waiting[at + j - 1] = got[j]
  end
end
local out = {}
for i = 0, n - 1 do
  local ts, has = ARGV[i * 4 + 3], ARGV[i * 4 + 4]
  local orders = 0
  if has == '1' then
    redis.call('ZADD', KEYS[4 + i * 2], ts, ids[i + 1])
    orders = redis.call('SCARD', KEYS[5 + i * 2])
  end
  out[#out + 1] = {orders, waiting[i + 1] or ''}
end
redis.call('INCR', KEYS[2])
return out
