-- Reserve short codes atomically: a link is written only where its key is
-- free, so a collision can never overwrite an existing link (the caller
-- draws a new code for every 0 it gets back).
-- KEYS: link keys, all in one partition (one hash tag).
-- ARGV: for each key, NFIELDS values in the order of FIELDS below.
local FIELDS = {'w', 'c', 'r', 'u', 'e', 'm', 't'}
local n = #FIELDS
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    out[i] = 0
  else
    local base = (i - 1) * n
    local args = {}
    for j = 1, n do
      local v = ARGV[base + j]
      -- Empty values are not stored: a link hash stays a small listpack.
      if v ~= '' then
        args[#args + 1] = FIELDS[j]
        args[#args + 1] = v
      end
    end
    redis.call('HSET', key, unpack(args))
    out[i] = 1
  end
end
return out
