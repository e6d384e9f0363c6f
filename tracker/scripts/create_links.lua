-- Create links where their codes are free, or find them where they exist.
-- A link's code is derived from its identity (workspace, campaign, recipient,
-- final URL) by the caller; this script decides, atomically, whether that
-- candidate is the link's code: free (create it), holding this very identity
-- (the link exists: return its record), or taken by another link, a deleted
-- one or a link stored the old way (0: the caller tries the next candidate).
-- KEYS: for each link its bucket and its old-style key, then the partition's
-- templates and link counts; all in one partition (one hash tag).
-- ARGV[1]: the number of templates T, then T triples (template id, template
-- "ws US campaign US url", count field "ws US campaign"), then for each link
-- (code, template number 1..T, record). A record starts with "template id US
-- recipient": that is its identity.
local tpl, counts = KEYS[#KEYS - 1], KEYS[#KEYS]
local nt = tonumber(ARGV[1])
local fields, made = {}, {}
for j = 1, nt do
  local at = 2 + (j - 1) * 3
  redis.call('HSETNX', tpl, ARGV[at], ARGV[at + 1])
  fields[j] = ARGV[at + 2]
  made[j] = 0
end
local function identity(record)
  return string.match(record, '^[^\031]*\031[^\031]*')
end
local out = {}
local first = 2 + nt * 3
for i = 1, (#KEYS - 2) / 2 do
  local at = first + (i - 1) * 3
  local code, t, record = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2]
  local bucket = KEYS[2 * i - 1]
  local have = redis.call('HGET', bucket, code)
  if have then
    if have ~= '-' and identity(have) == identity(record) then
      out[i] = have
    else
      out[i] = 0
    end
  elseif redis.call('EXISTS', KEYS[2 * i]) == 1 then
    out[i] = 0
  else
    redis.call('HSET', bucket, code, record)
    made[t] = made[t] + 1
    out[i] = 1
  end
end
for j = 1, nt do
  if made[j] > 0 then
    redis.call('HINCRBY', counts, fields[j], made[j])
  end
end
return out
