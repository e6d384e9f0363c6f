-- Record clicks where orders can find them, in the workspace's join slot:
-- the click index (click id -> campaign, recipient, code, time), for an
-- order that carries its click id, and each recipient's click history, for
-- last-click attribution. Idempotent (HSET, ZADD). It raises the join
-- version, so a concurrent attribution that read the old history runs again.
-- KEYS[1]: click index, KEYS[2]: join version, KEYS[3]: orders waiting for a
-- click id, then per recipient of the batch: their click history (zset) and
-- orders (set).
-- ARGV: per click: click id, encoded click, time, and its recipient's number
-- (1 for KEYS[4] and KEYS[5], 2 for the next two, ...; 0 for none).
-- Returns {the numbers of the recipients who have orders, {position of a
-- click, the orders waiting for it, ...}}: flat lists, as turning a nested
-- reply into Redis's protocol cost more than the rest of a click's work.
-- The index and the waiting orders are written and read once per batch, a
-- history once per recipient (a redis.call costs more than the work of one
-- field).
local n = #ARGV / 4
local pairs_, ids = {}, {}
for i = 0, n - 1 do
  ids[i + 1] = ARGV[i * 4 + 1]
  pairs_[#pairs_ + 1] = ARGV[i * 4 + 1]
  pairs_[#pairs_ + 1] = ARGV[i * 4 + 2]
end
-- (unpack in slices: Lua's stack takes about 8,000 values)
local function write(cmd, key, list)
  for at = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, at, math.min(at + 999, #list)))
  end
end
write('HSET', KEYS[1], pairs_)
-- (orders wait for a click only when they came first: nearly always none)
local waiting = {}
if redis.call('HLEN', KEYS[3]) > 0 then
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
local histories = {}
for i = 0, n - 1 do
  local j = tonumber(ARGV[i * 4 + 4])
  if j > 0 then
    local h = histories[j]
    if not h then
      h = {}
      histories[j] = h
    end
    h[#h + 1] = ARGV[i * 4 + 3]
    h[#h + 1] = ids[i + 1]
  end
end
local with_orders = {}
for j = 1, (#KEYS - 3) / 2 do
  write('ZADD', KEYS[2 + j * 2], histories[j])
  if redis.call('SCARD', KEYS[3 + j * 2]) > 0 then
    with_orders[#with_orders + 1] = j
  end
end
redis.call('INCR', KEYS[2])
return {with_orders, waiting}
