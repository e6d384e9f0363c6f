-- Reserve short codes atomically: a link is written only where its key is
-- free, so a collision can never overwrite an existing link (the caller
-- draws a new code for every 0 it gets back).
-- KEYS: link keys, all in one partition (one hash tag), then that partition's
-- destinations table (destination id -> final URL).
-- ARGV: for each link, NFIELDS values in the order of FIELDS below, then its
-- final URL, which is stored once per partition under the destination id
-- ('d'): links sharing a destination do not repeat it, and their hashes stay
-- small enough for Redis's compact encoding.
local FIELDS = {'w', 'c', 'r', 'd', 'e', 'm', 't'}
local n = #FIELDS
local dst = KEYS[#KEYS]
local out = {}
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  local base = (i - 1) * (n + 1)
  if redis.call('EXISTS', key) == 1 then
    out[i] = 0
  else
    local args = {}
    for j = 1, n do
      local v = ARGV[base + j]
      -- Empty values are not stored: a link hash stays a small listpack.
      if v ~= '' then
        args[#args + 1] = FIELDS[j]
        args[#args + 1] = v
      end
    end
    redis.call('HSETNX', dst, ARGV[base + 4], ARGV[base + n + 1])
    redis.call('HSET', key, unpack(args))
    out[i] = 1
  end
end
return out
