-- Index messages of the send log, in the workspace's join slot, a batch at a
-- time: what Joins.message does in a transaction, for many messages in one
-- step (a message at a time, each with several round trips, was most of a
-- mixed stream's time). For each message: read the statuses parked for it,
-- the replies and opt-outs waiting for its recipient, message or identity,
-- and the identity's orders; then write the send log entry, the recipient's
-- message history and the identity. It raises the join version, so a
-- concurrent attribution that read the old state runs again.
-- KEYS[1]: send log, KEYS[2]: parked statuses, KEYS[3]: identities,
-- KEYS[4]: join version, then per message: the recipient's messages (zset),
-- the recipient's facts, the message's facts, the identity's facts and the
-- identity's orders (sets).
-- ARGV per message: message id, send-log value, time (ms), recipient,
-- identity ('' for none).
-- Returns per message {parked status bits, facts, orders}.
local out = {}
for i = 0, (#KEYS - 4) / 5 - 1 do
  local at, k = i * 5, 4 + i * 5
  local mid, value, ts, recipient, identity = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
    ARGV[at + 4], ARGV[at + 5]
  local parked = tonumber(redis.call('HGET', KEYS[2], mid) or '0')
  local facts = redis.call('SMEMBERS', KEYS[k + 2])
  for _, f in ipairs(redis.call('SMEMBERS', KEYS[k + 3])) do
    facts[#facts + 1] = f
  end
  local orders = {}
  if identity ~= '' then
    for _, f in ipairs(redis.call('SMEMBERS', KEYS[k + 4])) do
      facts[#facts + 1] = f
    end
    orders = redis.call('SMEMBERS', KEYS[k + 5])
  end
  redis.call('HSET', KEYS[1], mid, value)
  redis.call('ZADD', KEYS[k + 1], ts, mid)
  if identity ~= '' then
    redis.call('HSETNX', KEYS[3], identity, recipient)
  end
  out[#out + 1] = {parked, facts, orders}
end
redis.call('INCR', KEYS[4])
return out
