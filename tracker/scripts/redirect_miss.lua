-- The redirect's one round trip when a link is not in the process's cache:
-- read the link and, only if it may redirect, append the click.
-- KEYS[1]: link hash, KEYS[2]: the click stream of its partition, KEYS[3]:
-- the partition's destinations (the link keeps its URL's id there; links
-- written before that keep the URL itself in 'u').
-- ARGV[1]: now (ms), ARGV[2]: stream MAXLEN (approximate),
-- ARGV[3..]: click fields as name/value pairs, without ws/campaign/recipient,
-- which are taken from the link so the worker needs no lookup.
-- Returns {state, w, c, r, u, e}: state 0 unknown, 1 recorded, 2 disabled,
-- 3 expired.
local l = redis.call('HMGET', KEYS[1], 'w', 'c', 'r', 'u', 'e', 'x', 'd')
if not l[4] then
  if not l[7] then
    return {0}
  end
  l[4] = redis.call('HGET', KEYS[3], l[7]) or ''
end
local w, c, r, u, e = l[1], l[2], l[3] or '', l[4], l[5] or ''
if l[6] == '1' then
  return {2, w, c, r, u, e}
end
if e ~= '' and tonumber(e) <= tonumber(ARGV[1]) then
  return {3, w, c, r, u, e}
end
local args = {'XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*'}
for i = 3, #ARGV do
  args[#args + 1] = ARGV[i]
end
args[#args + 1] = 'ws'
args[#args + 1] = w
args[#args + 1] = 'campaign'
args[#args + 1] = c
args[#args + 1] = 'recipient'
args[#args + 1] = r
redis.call(unpack(args))
return {1, w, c, r, u, e}
