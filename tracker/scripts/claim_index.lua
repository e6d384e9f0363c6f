-- Make link creation idempotent per (campaign, recipient, destination):
-- the first code to claim an index field wins; later claims get the winner.
-- KEYS[1]: the campaign's link index (hash), KEYS[2]: its recipient set.
-- ARGV: triples of (index field, candidate code, recipient or '').
local out = {}
for i = 1, #ARGV, 3 do
  local field, code, recipient = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', KEYS[1], field, code) == 1 then
    if recipient ~= '' then
      redis.call('SADD', KEYS[2], recipient)
    end
    out[#out + 1] = code
  else
    out[#out + 1] = redis.call('HGET', KEYS[1], field)
  end
end
return out
