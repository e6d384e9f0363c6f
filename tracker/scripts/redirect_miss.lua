-- The redirect's one round trip when a link is not in the process's cache:
-- read the link and, only if it may redirect, append the click.
-- KEYS[1]: the link's bucket, KEYS[2]: the click stream of its partition,
-- KEYS[3]: the partition's templates, KEYS[4]: the link's old-style hash,
-- KEYS[5]: the partition's destinations (both for links stored before
-- buckets: an own hash with the URL in 'u', or its id in 'd').
-- ARGV[1]: now (ms), ARGV[2]: stream MAXLEN (approximate), ARGV[3]: the code,
-- ARGV[4]: the click's first values joined by the unit separator (see
-- models.CLICK_FIELDS); ws, campaign and recipient are appended from the link
-- so the worker needs no lookup.
-- Returns {state, w, c, r, u, e}: state 0 unknown, 1 recorded, 2 disabled,
-- 3 expired.
local code = ARGV[3]
local w, c, r, u, e, x
local record = redis.call('HGET', KEYS[1], code)
if record and record ~= '-' then
  -- template id, recipient, created, expires, disabled[, metadata]
  local f = {}
  local from = 1
  for i = 1, 5 do
    local at = string.find(record, '\031', from, true)
    f[i] = string.sub(record, from, (at or 0) - 1)
    if not at then
      break
    end
    from = at + 1
  end
  local t = redis.call('HGET', KEYS[3], f[1])
  if not t then
    return {0}
  end
  w, c, u = string.match(t, '^([^\031]*)\031([^\031]*)\031(.*)$')
  r, e, x = f[2] or '', f[4] or '', f[5]
elseif record then
  return {0}
else
  local l = redis.call('HMGET', KEYS[4], 'w', 'c', 'r', 'u', 'e', 'x', 'd')
  if not l[4] then
    if not l[7] then
      return {0}
    end
    l[4] = redis.call('HGET', KEYS[5], l[7]) or ''
  end
  w, c, r, u, e, x = l[1], l[2], l[3] or '', l[4], l[5] or '', l[6]
end
if x == '1' then
  return {2, w, c, r, u, e}
end
if e ~= '' and tonumber(e) <= tonumber(ARGV[1]) then
  return {3, w, c, r, u, e}
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'click',
  ARGV[4] .. '\031' .. (w or '') .. '\031' .. (c or '') .. '\031' .. r)
return {1, w, c, r, u, e}
