-- Record clicks where orders can find them, in the workspace's join slot:
-- the click index (click id -> campaign, recipient, code, time), for an
-- order that carries its click id, and each recipient's click history, for
-- last-click attribution. Idempotent (HSET, ZADD). It raises the join
-- version, so a concurrent attribution that read the old history runs again.
-- KEYS[1]: click index, KEYS[2]: join version, KEYS[3]: orders waiting for a
-- click id, then per recipient of the batch: their click history (zset) and
-- orders (set).
-- ARGV: n, then n (click id, encoded click) pairs; then for each recipient
-- of the batch (KEYS[4] and KEYS[5] for the first, the next two for the
-- second, ...): m, then their m clicks' (time, click id) pairs.
-- Returns {the numbers of the recipients who have orders, {position of a
-- click, the orders waiting for it, ...}}: flat lists, as turning a nested
-- reply into Redis's protocol cost more than the rest of a click's work.
-- The index and the waiting orders are written and read once per batch, a
-- history once per recipient (a redis.call costs more than the work of one
-- field). ARGV holds the index's pairs and each history's as those commands
-- take them, so the script hands slices of ARGV on and builds no table a
-- click (a click id goes twice: cheaper than a loop; measured: 2.2 to 1.6 us
-- a click of the script's time).
local n = tonumber(ARGV[1])
-- (unpack in slices: Lua's stack takes about 8,000 values; 1000 keeps pairs whole)
local function write(cmd, key, from, to)
  for at = from, to, 1000 do
    redis.call(cmd, key, unpack(ARGV, at, math.min(at + 999, to)))
  end
end
write('HSET', KEYS[1], 2, 2 * n + 1)
-- (orders wait for a click only when they came first: nearly always none)
local waiting = {}
if redis.call('HLEN', KEYS[3]) > 0 then
  local ids = {}
  for i = 1, n do
    ids[i] = ARGV[2 * i]
  end
  for at = 1, n, 1000 do
    local got = redis.call('HMGET', KEYS[3], unpack(ids, at, math.min(at + 999, n)))
    for j = 1, #got do
      if got[j] then
        waiting[#waiting + 1] = at + j - 1
        waiting[#waiting + 1] = got[j]
      end
    end
  end
end
local with_orders = {}
local at = 2 * n + 2
for j = 1, (#KEYS - 3) / 2 do
  local m = tonumber(ARGV[at])
  write('ZADD', KEYS[2 + j * 2], at + 1, at + 2 * m)
  at = at + 2 * m + 1
  if redis.call('SCARD', KEYS[3 + j * 2]) > 0 then
    with_orders[#with_orders + 1] = j
  end
end
redis.call('INCR', KEYS[2])
return {with_orders, waiting}
