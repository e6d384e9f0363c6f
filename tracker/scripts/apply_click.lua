-- Fold a batch of one campaign's clicks into its aggregates, each exactly once.
-- The click row doubles as the "already applied" marker: it is written in
-- the same atomic step as the counters, so a redelivered or reclaimed entry
-- (a crash before XACK) finds it and changes nothing.
-- KEYS[1]: click rows (hash: click id -> row), KEYS[2]: campaign totals,
-- KEYS[3]: per-link counters, KEYS[6]: time series, KEYS[8]: clicker state
-- (hash: recipient -> "<first hour>\n<token>\n<token>\n...\n", the hour of
-- their earliest human click and what they are counted under as a unique
-- clicker: each link code, "device=<d>", "os=<o>", "browser=<b>").
-- KEYS[4], KEYS[5], KEYS[7]: the clickers set, the "<token> <recipient>" set
-- and the first-hours hash that held the same state before (read, never
-- written; see below).
-- ARGV (made by clickfold.Batch, which says more): the clicks (ids and rows),
-- the increments of the totals, per-link counters and time series that do
-- not depend on what is stored, summed over the batch, and for each
-- recipient with human clicks the tokens they bring and their hours.
-- Tokens never hold a newline (codes are letters; the user agent's parts
-- are cleaned of them in useragent.py).
-- Returns the positions (1-based) of the clicks folded before, and then
-- writes nothing: the sums counted them. An empty list: the batch is folded.
--
-- The worker sums what it can: a batch's clicks share most fields (a
-- campaign's devices and hours; a popular link's everything), and each
-- value a script gets costs Redis an object and a Lua string. The script
-- works in three steps: read what the batch needs (rows, clicker states)
-- in one command per key, decide against that state kept in Lua tables what
-- the recipients add, then write what changed in one command per key. Each
-- redis.call has a cost of its own (its arguments become objects, its reply
-- is written and parsed back); a command per click and key took the script
-- about 5 % longer for a campaign's clicks and 25 % for a popular link's.
-- The result is the same as folding the clicks one by one (tested).
-- A clicker's state is one hash field, not six entries in three keys (a
-- set member per token and the clicker, a field for the hour): the writes
-- were most of the script's time, and a new entry costs about as much as a
-- longer value (measured: a fifth less Redis time for a campaign's clicks,
-- a quarter less memory for the clicker state).
-- A clicker counts in the time series at the hour of their earliest click,
-- whatever order the clicks arrive in (a reclaimed entry can come late), so
-- a report over any range counts each clicker once, where they first clicked.
--
-- Clickers folded before the state hash existed are in KEYS[4]: while that
-- key exists, a recipient without a state is looked up there, and a legacy
-- clicker's state starts from KEYS[7] with the mark "~", which sends the
-- lookups of tokens not in the state on to KEYS[5]. A campaign first folded
-- by this script never has KEYS[4], and pays one EXISTS a batch.

-- (unpack in slices: Lua's stack takes about 8,000 values)
local function read(cmd, key, list)
  local out = {}
  for at = 1, #list, 1000 do
    local got = redis.call(cmd, key, unpack(list, at, math.min(at + 999, #list)))
    for j = 1, #got do
      out[at + j - 1] = got[j]
    end
  end
  return out
end

local function write(cmd, key, list)
  for at = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, at, math.min(at + 999, #list)))
  end
end

-- 1. read: are the clicks new (if not, stop), the recipients' state
local n = tonumber(ARGV[1])
local ids = {}
for i = 1, n do
  ids[i] = ARGV[2 * i]
end
local found = {}
for i, row in ipairs(read('HMGET', KEYS[1], ids)) do
  if row then found[#found + 1] = i end
end
if #found > 0 then return found end

local at = 2 * n + 2
-- deltas[k]: field -> increment, for KEYS[k]
local deltas = {}
for _, k in ipairs({2, 3, 6}) do
  local t = {}
  for _ = 1, tonumber(ARGV[at]) do
    t[ARGV[at + 1]] = tonumber(ARGV[at + 2])
    at = at + 2
  end
  at = at + 1
  deltas[k] = t
end
local recipients, brought, hours = {}, {}, {}
for j = 1, tonumber(ARGV[at]) do
  recipients[j], brought[j], hours[j] = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  at = at + 3
end

-- first[r]: the first hour ('' if unknown), tokens[r]: "\n<token>\n...\n";
-- no entry: not a clicker yet.
local first, tokens, legacy = {}, {}, {}
local linked = {}
if #recipients > 0 then
  local missing = {}
  for i, value in ipairs(read('HMGET', KEYS[8], recipients)) do
    local r = recipients[i]
    if value then
      local nl = string.find(value, '\n', 1, true)
      first[r] = string.sub(value, 1, nl - 1)
      tokens[r] = string.sub(value, nl)
      if string.find(value, '\n~\n', 1, true) then legacy[r] = true end
    else
      missing[#missing + 1] = r
    end
  end
  if #missing > 0 and redis.call('EXISTS', KEYS[4]) == 1 then
    local old = {}
    for i, flag in ipairs(read('SMISMEMBER', KEYS[4], missing)) do
      if flag == 1 then old[#old + 1] = missing[i] end
    end
    if #old > 0 then
      for i, hour in ipairs(read('HMGET', KEYS[7], old)) do
        first[old[i]] = hour or ''
        tokens[old[i]] = '\n~\n'
        legacy[old[i]] = true
      end
    end
  end
  if next(legacy) then
    local members = {}
    for j, r in ipairs(recipients) do
      if legacy[r] then
        local list, from = brought[j], 1
        while from <= #list do
          local nl = string.find(list, '\n', from, true)
          members[#members + 1] = string.sub(list, from, nl - 1) .. ' ' .. r
          from = nl + 1
        end
      end
    end
    for i, flag in ipairs(read('SMISMEMBER', KEYS[5], members)) do
      if flag == 1 then linked[members[i]] = true end
    end
  end
end

-- 2. what the recipients add: new clickers, new tokens, earlier first hours
local function incr(k, field, by)
  local t = deltas[k]
  t[field] = (t[field] or 0) + (by or 1)
end
local states = {}
for j, r in ipairs(recipients) do
  local have, changed = tokens[r], false
  if not have then
    first[r], have, changed = '', '\n', true
    incr(2, 'unique_clickers')
  end
  -- (tokens and hours each end in a separator: plain finds, as string.gmatch's
  -- patterns cost more than the rest of a recipient's work)
  local list, from = brought[j], 1
  while from <= #list do
    local nl = string.find(list, '\n', from, true)
    local token = string.sub(list, from, nl - 1)
    from = nl + 1
    if not string.find(have, '\n' .. token .. '\n', 1, true) then
      have = have .. token .. '\n'
      changed = true
      if not (legacy[r] and linked[token .. ' ' .. r]) then
        incr(3, token .. ':unique_clickers')
      end
    end
  end
  list, from = hours[j], 1
  while from <= #list do
    local sp = string.find(list, ' ', from, true)
    local hour = string.sub(list, from, sp - 1)
    from = sp + 1
    local was = first[r]
    if was == '' then
      first[r], changed = hour, true
      incr(6, 'unique_clickers:' .. hour)
    elseif tonumber(was) > tonumber(hour) then
      first[r], changed = hour, true
      incr(6, 'unique_clickers:' .. was, -1)
      incr(6, 'unique_clickers:' .. hour)
    end
  end
  if changed then
    states[#states + 1] = r
    states[#states + 1] = first[r] .. have
  end
end

-- 3. write: the rows, the states that changed, the counters (read once,
-- summed here, written once per key: HINCRBY is a command per field)
for i = 2, 2 * n + 1, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, 2 * n + 1)))
end
write('HSET', KEYS[8], states)
for _, k in ipairs({2, 3, 6}) do
  local fields = {}
  for field in pairs(deltas[k]) do
    fields[#fields + 1] = field
  end
  if #fields > 0 then
    local now, values = read('HMGET', KEYS[k], fields), {}
    for i, field in ipairs(fields) do
      values[#values + 1] = field
      values[#values + 1] = (tonumber(now[i]) or 0) + deltas[k][field]
    end
    write('HSET', KEYS[k], values)
  end
end
return {}
