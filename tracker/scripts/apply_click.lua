-- Fold clicks of one campaign into its aggregates, each exactly once.
-- The click row doubles as the "already applied" marker: it is written in
-- the same atomic step as the counters, so a redelivered or reclaimed entry
-- (a crash before XACK) finds it and changes nothing.
-- KEYS[1]: click rows (hash: click id -> row), KEYS[2]: campaign totals,
-- KEYS[3]: per-link counters, KEYS[4]: campaign clickers (set of recipients),
-- KEYS[5]: link clickers (set of "code recipient", and "device=<d> recipient"
-- etc. for the device, os and browser breakdowns), KEYS[6]: time series,
-- KEYS[7]: each clicker's first human click hour (recipient -> unix hour).
-- ARGV: per click, nine values: click id, row, kind (human|preview|bot|head),
-- code, recipient, device, os, browser, hour of the click (unix hour).
-- Returns per click 1 (folded) or 0 (already folded).
--
-- One call carries a batch, and works on it in three steps: read everything
-- the batch needs (rows, set memberships, first hours) in one command per
-- key, fold the clicks in order against that state kept in Lua tables, then
-- write what changed in one command per key. Each redis.call has a cost of
-- its own (its arguments become objects, its reply is written and parsed
-- back); a command per click and key took the script about 5 % longer for a
-- campaign's clicks and 25 % for a popular link's (measured: 13.2 against
-- 12.6 us a click, 5.0 against 3.7). The result is the same as folding the
-- clicks one by one: a click seen earlier in the batch counts as already
-- there (tested).
-- A clicker counts in the time series at the hour of their earliest click,
-- whatever order the clicks arrive in (a reclaimed entry can come late), so
-- a report over any range counts each clicker once, where they first clicked.

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

-- 1. read: which clicks are new, and the state of their clickers
local ids = {}
for b = 0, #ARGV - 9, 9 do
  ids[#ids + 1] = ARGV[b + 1]
end
local rows = read('HMGET', KEYS[1], ids)
-- (each recipient and member asked once: a popular link's clicks repeat them)
local recipients, members, asked_r, asked_m = {}, {}, {}, {}
local function ask(member)
  if not asked_m[member] then
    asked_m[member] = true
    members[#members + 1] = member
  end
end
local new, seen, written = {}, {}, {}
for i, id in ipairs(ids) do
  if not rows[i] and not seen[id] then
    seen[id] = true
    new[i] = true
    local b = (i - 1) * 9
    written[#written + 1] = id
    written[#written + 1] = ARGV[b + 2]
    local recipient = ARGV[b + 5]
    if ARGV[b + 3] == 'human' and recipient ~= '' then
      if not asked_r[recipient] then
        asked_r[recipient] = true
        recipients[#recipients + 1] = recipient
      end
      local tail = ' ' .. recipient
      ask(ARGV[b + 4] .. tail)
      ask('device=' .. ARGV[b + 6] .. tail)
      ask('os=' .. ARGV[b + 7] .. tail)
      ask('browser=' .. ARGV[b + 8] .. tail)
    end
  end
end
local clicker, linked, first = {}, {}, {}
if #recipients > 0 then
  for i, flag in ipairs(read('SMISMEMBER', KEYS[4], recipients)) do
    if flag == 1 then clicker[recipients[i]] = true end
  end
  for i, flag in ipairs(read('SMISMEMBER', KEYS[5], members)) do
    if flag == 1 then linked[members[i]] = true end
  end
  for i, hour in ipairs(read('HMGET', KEYS[7], recipients)) do
    if hour then first[recipients[i]] = hour end
  end
end

-- 2. fold, in order. Counter increments are summed here and written once per
-- field (nothing here reads a counter back): a batch of a campaign's clicks
-- shares most fields.
local deltas = {{}, {}, {}, {}, {}, {}}
local function incr(k, field, n)
  local t = deltas[k]
  t[field] = (t[field] or 0) + (n or 1)
end
local added_clickers, added_members, moved = {}, {}, {}
local function add_member(member, field)
  if not linked[member] then
    linked[member] = true
    added_members[#added_members + 1] = member
    incr(3, field)
  end
end

local out = {}
for i = 1, #ids do
  if not new[i] then
    out[i] = 0
  else
    out[i] = 1
    local b = (i - 1) * 9
    local kind, code, recipient = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
    local hour = ARGV[b + 9]
    if kind == 'human' then
      local device, os, browser = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
      local cd, co, cb = 'device=' .. device, 'os=' .. os, 'browser=' .. browser
      incr(2, 'clicks')
      incr(6, 'clicks:' .. hour)
      incr(3, code .. ':clicks')
      incr(2, 'device:' .. device)
      incr(2, 'os:' .. os)
      incr(2, 'browser:' .. browser)
      incr(3, cd .. ':clicks')
      incr(3, co .. ':clicks')
      incr(3, cb .. ':clicks')
      if recipient ~= '' then
        if not clicker[recipient] then
          clicker[recipient] = true
          added_clickers[#added_clickers + 1] = recipient
          incr(2, 'unique_clickers')
        end
        local tail = ' ' .. recipient
        add_member(code .. tail, code .. ':unique_clickers')
        add_member(cd .. tail, cd .. ':unique_clickers')
        add_member(co .. tail, co .. ':unique_clickers')
        add_member(cb .. tail, cb .. ':unique_clickers')
        local was = first[recipient]
        if not was then
          first[recipient] = hour
          moved[recipient] = true
          incr(6, 'unique_clickers:' .. hour)
        elseif tonumber(was) > tonumber(hour) then
          first[recipient] = hour
          moved[recipient] = true
          incr(6, 'unique_clickers:' .. was, -1)
          incr(6, 'unique_clickers:' .. hour)
        end
      else
        incr(2, 'anonymous_clicks')
        incr(6, 'anonymous_clicks:' .. hour)
      end
    else
      incr(2, 'non_human_clicks')
      incr(2, 'non_human:' .. kind)
      incr(6, 'non_human:' .. kind .. ':' .. hour)
      incr(3, code .. ':non_human_clicks')
      incr(6, 'non_human_clicks:' .. hour)
    end
  end
end

-- 3. write what changed
write('HSET', KEYS[1], written)
write('SADD', KEYS[4], added_clickers)
write('SADD', KEYS[5], added_members)
local hours = {}
for recipient in pairs(moved) do
  hours[#hours + 1] = recipient
  hours[#hours + 1] = first[recipient]
end
write('HSET', KEYS[7], hours)
-- Counters: read once, summed here, written once per key (HINCRBY is a
-- command per field).
for k = 2, 6 do
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
return out
