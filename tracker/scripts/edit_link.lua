-- Change or delete one link kept in a bucket, atomically.
-- KEYS[1]: the link's bucket, KEYS[2]: its partition's link counts.
-- ARGV[1]: code, ARGV[2]: 'delete' or 'set'.
--   delete: ARGV[3] is the count field ("ws US campaign"); the record becomes
--   '-', so the code is never reused.
--   set: ARGV[3] expires (ms, '' for none, '=' unchanged), ARGV[4] disabled
--   ('1', '' or '=').
-- Returns the new record, or false when there is no such link.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record or record == '-' then
  return false
end
if ARGV[2] == 'delete' then
  redis.call('HSET', KEYS[1], ARGV[1], '-')
  redis.call('HINCRBY', KEYS[2], ARGV[3], -1)
  return '-'
end
-- At most 6 fields; metadata (the 6th) is kept whole.
local f = {}
local rest = record
for i = 1, 5 do
  local at = string.find(rest, '\031', 1, true)
  if not at then
    f[i] = rest
    rest = nil
    break
  end
  f[i] = string.sub(rest, 1, at - 1)
  rest = string.sub(rest, at + 1)
end
if rest then
  f[6] = rest
end
for i = 1, 6 do
  f[i] = f[i] or ''
end
if ARGV[3] ~= '=' then
  f[4] = ARGV[3]
end
if ARGV[4] ~= '=' then
  f[5] = ARGV[4]
end
local n = 6
while n > 3 and f[n] == '' do
  n = n - 1
end
record = table.concat(f, '\031', 1, n)
redis.call('HSET', KEYS[1], ARGV[1], record)
return record
