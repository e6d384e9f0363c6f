-- Store events exactly once at the door: an event whose idempotency key was
-- seen (within the marker's TTL) is acknowledged and not stored again. The
-- marker and the stream entry are written in one atomic step, so a crash
-- can never leave a marker without its event (which would lose it) or an
-- event without its marker.
-- KEYS[1]: the event stream; KEYS[2..]: one seen-marker per event.
-- ARGV[1]: stream MAXLEN (approximate), ARGV[2]: marker TTL in seconds,
-- then per event: the number of field/value arguments, then those.
-- Returns per event 1 (stored) or 0 (duplicate).
local out = {}
local pos = 3
for i = 2, #KEYS do
  local n = tonumber(ARGV[pos])
  pos = pos + 1
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) then
    local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*'}
    for j = pos, pos + n - 1 do
      args[#args + 1] = ARGV[j]
    end
    redis.call(unpack(args))
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  pos = pos + n
end
return out
