package issuer

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts that make each of the Redis store's decisions atomic.

// The scripts. Each gets now (Unix milliseconds on the store's clock) as
// ARGV[1]; every expiry is an "until" field compared with it, never Redis'
// clock, and keep sets the TTL that removes the key once it is dead.
// Arguments flagged 1 or 0 are booleans.
var redisPrelude = `
local now = tonumber(ARGV[1])
local function live(u) return u ~= false and u ~= nil and tonumber(u) > now end
local function keep(key, u)
  redis.call('PEXPIREAT', key, string.format('%d', tonumber(u) + ` + strconv.FormatInt(redisExpirySlack.Milliseconds(), 10) + `))
end
-- keepIndex makes the sorted set under key, whose scores are the "until"
-- of what it names, last as long as its last member.
local function keepIndex(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then keep(key, top[2]) end
end
-- index adds member to the index under key until u, dropping members
-- that ended.
local function index(key, member, u)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  redis.call('ZADD', key, u, member)
  keepIndex(key)
end
-- family returns the fields of the live family under fk, or nil.
local function family(fk)
  local f = redis.call('HMGET', fk, 'until', 'exp', 'cur', 'revoked', 'v')
  if not live(f[1]) or tonumber(f[2]) <= now then return nil end
  return f
end
-- record notes that the access token keyed ak, alive until au, came from
-- family fam (key fk, fields f), which is kept at least as long.
local function record(fk, f, ak, fam, au)
  if tonumber(au) <= now then return end
  redis.call('DEL', ak)
  redis.call('HSET', ak, 'until', au, 'fam', fam)
  keep(ak, au)
  if tonumber(au) > tonumber(f[1]) then
    redis.call('HSET', fk, 'until', au)
    keep(fk, au)
    -- The family's index entries last as long as the family.
    local ix = redis.call('HMGET', fk, 'fix', 'six')
    for n = 1, 2 do
      if ix[n] then
        redis.call('ZADD', ix[n], 'XX', au, fam)
        keepIndex(ix[n])
      end
    end
  end
end
`

func redisScript(src string) *redis.Script { return redis.NewScript(redisPrelude + src) }

var (
	// KEYS: code. ARGV: now, expiry, code JSON. An identical code already
	// stored is this call's own retry.
	redisSaveCode = redisScript(`
local c = redis.call('HMGET', KEYS[1], 'until', 'code')
if live(c[1]) then
  if c[2] == ARGV[3] then return 'ok' end
  return 'exists'
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'until', ARGV[2], 'exp', ARGV[2], 'code', ARGV[3])
keep(KEYS[1], ARGV[2])
return 'ok'`)

	// KEYS: code. ARGV: now, issued JSON, replay grace in ms, whether the
	// issued JSON is unique to this call (so that finding it stored means
	// this is a retry of a redemption that succeeded).
	// Reply: {status, code JSON, issued JSON}.
	redisRedeemCode = redisScript(`
local c = redis.call('HMGET', KEYS[1], 'until', 'exp', 'code', 'issued')
if not live(c[1]) then return {'notfound'} end
if c[4] then
  if ARGV[4] == '1' and c[4] == ARGV[2] then return {'ok', c[3], c[4]} end
  return {'reused', c[3], c[4]}
end
local u = string.format('%d', tonumber(c[2]) + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'issued', ARGV[2], 'until', u)
keep(KEYS[1], u)
return {'ok', c[3], ARGV[2]}`)

	// KEYS: token, family, subject's families, session's families. ARGV:
	// now, token hash, family expiry, family JSON, token expiry, family ID,
	// token JSON, client ID, subject, session ID hash (empty: none).
	redisCreateRefresh = redisScript(`
local f = redis.call('HMGET', KEYS[2], 'until', 'revoked', 'cur')
if live(f[1]) then
  if f[2] == '1' then return 'revoked' end
  if f[3] == ARGV[2] then return 'ok' end
  return 'family'
end
if live(redis.call('HGET', KEYS[1], 'until')) then return 'exists' end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'until', ARGV[3], 'exp', ARGV[3], 'cur', ARGV[2], 'v', ARGV[4],
  'cli', ARGV[8], 'sub', ARGV[9], 'sh', ARGV[10])
if ARGV[9] ~= '' then redis.call('HSET', KEYS[2], 'fix', KEYS[3]) end
keep(KEYS[2], ARGV[3])
if ARGV[9] ~= '' then index(KEYS[3], ARGV[6], ARGV[3]) end
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[2], 'six', KEYS[4])
  index(KEYS[4], ARGV[6], ARGV[3])
end
redis.call('HSET', KEYS[1], 'until', ARGV[5], 'fam', ARGV[6], 'rt', ARGV[7])
keep(KEYS[1], ARGV[5])
return 'ok'`)

	// KEYS: token. ARGV: now, family key prefix, token hash.
	// Reply: {status, token JSON, family ID, family JSON}.
	redisLookupRefresh = redisScript(`
local t = redis.call('HMGET', KEYS[1], 'until', 'fam', 'rt')
if not live(t[1]) then return {'notfound'} end
local f = family(ARGV[2] .. t[2])
if not f then return {'notfound'} end
local st = 'ok'
if f[4] == '1' then st = 'revoked' elseif f[3] ~= ARGV[3] then st = 'reused' end
return {st, t[3], t[2], f[5]}`)

	// KEYS: old token, new token, access token record. ARGV: now, family
	// key prefix, old hash, new hash, refusal (empty if none), new expiry,
	// new token JSON, whether to record the access token, its expiry, the
	// end of the retry grace ("" for none), the sealed retry, the refresh
	// key prefix.
	// Reply as redisLookupRefresh. A family whose current token is already
	// the new hash was rotated by this call's own earlier attempt.
	redisRotateRefresh = redisScript(`
local t = redis.call('HMGET', KEYS[1], 'until', 'fam', 'rt')
if not live(t[1]) then return {'notfound'} end
local fk = ARGV[2] .. t[2]
local f = family(fk)
if not f then return {'notfound'} end
local function reply(st) return {st, t[3], t[2], f[5]} end
if f[4] == '1' then return reply('revoked') end
if f[3] ~= ARGV[3] then
  if ARGV[4] ~= '' and f[3] == ARGV[4] then return reply('ok') end
  local c = redis.call('HMGET', ARGV[12] .. f[3], 'until', 'prev', 'ru')
  if live(c[1]) and c[2] == ARGV[3] and live(c[3]) then return reply('retry') end
  redis.call('HSET', fk, 'revoked', '1')
  return reply('reused')
end
if ARGV[5] ~= '' then return reply(ARGV[5]) end
if live(redis.call('HGET', KEYS[2], 'until')) then return reply('exists') end
local u = string.format('%d', math.min(tonumber(ARGV[6]), tonumber(f[2])))
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'until', u, 'fam', t[2], 'rt', ARGV[7])
if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'prev', ARGV[3], 'ru', ARGV[10], 'rs', ARGV[11]) end
keep(KEYS[2], u)
redis.call('HSET', fk, 'cur', ARGV[4])
if ARGV[8] == '1' then record(fk, f, KEYS[3], t[2], ARGV[9]) end
return reply('ok')`)

	// KEYS: old token. ARGV: now, family key prefix, refresh key prefix,
	// old hash. Reply: {'ok', end of the grace, sealed retry} or
	// {'notfound'}.
	redisRetryRefresh = redisScript(`
local t = redis.call('HMGET', KEYS[1], 'until', 'fam')
if not live(t[1]) then return {'notfound'} end
local f = family(ARGV[2] .. t[2])
if not f or f[4] == '1' or f[3] == ARGV[4] then return {'notfound'} end
local c = redis.call('HMGET', ARGV[3] .. f[3], 'until', 'prev', 'ru', 'rs')
if not live(c[1]) or c[2] ~= ARGV[4] or not live(c[3]) then return {'notfound'} end
return {'ok', c[3], c[4]}`)

	// KEYS: family, access token record. ARGV: now, family ID, expiry.
	redisAddAccess = redisScript(`
local f = family(KEYS[1])
if not f then return 'notfound' end
record(KEYS[1], f, KEYS[2], ARGV[2], ARGV[3])
if f[4] == '1' then return 'revoked' end
return 'ok'`)

	// KEYS: family. ARGV: now, end of the tombstone of an unknown family.
	redisRevokeFamily = redisScript(`
if live(redis.call('HGET', KEYS[1], 'until')) then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return 'ok'
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'until', ARGV[2], 'exp', ARGV[2], 'revoked', '1')
keep(KEYS[1], ARGV[2])
return 'ok'`)

	// KEYS: revoked jti. ARGV: now, expiry.
	redisRevokeAccess = redisScript(`
local u = redis.call('HGET', KEYS[1], 'until')
if live(u) and tonumber(u) >= tonumber(ARGV[2]) then return 'ok' end
redis.call('HSET', KEYS[1], 'until', ARGV[2])
keep(KEYS[1], ARGV[2])
return 'ok'`)

	// KEYS: revoked jti, access token record. ARGV: now, family key prefix.
	// Reply: 1 if denied, else 0.
	redisIsRevoked = redisScript(`
if live(redis.call('HGET', KEYS[1], 'until')) then return 1 end
local a = redis.call('HMGET', KEYS[2], 'until', 'fam')
if not live(a[1]) then return 0 end
local f = redis.call('HMGET', ARGV[2] .. a[2], 'until', 'revoked')
if live(f[1]) and f[2] == '1' then return 1 end
return 0`)

	// KEYS: counter. ARGV: now, end of a window starting now.
	// Reply: the count including this hit.
	redisHit = redisScript(`
if live(redis.call('HGET', KEYS[1], 'until')) then
  return redis.call('HINCRBY', KEYS[1], 'n', 1)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'until', ARGV[2], 'n', 1)
keep(KEYS[1], ARGV[2])
return 1`)

	// KEYS: session, subject's sessions. ARGV: now, expiry, session JSON,
	// session ID hash, whether to index it (the subject is not empty). The
	// session's "six" field names the index it is
	// in, so that deleting or ending it can take it out.
	redisSaveSession = redisScript(`
local old = redis.call('HGET', KEYS[1], 'six')
if old and old ~= KEYS[2] then redis.call('ZREM', old, ARGV[4]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'until', ARGV[2], 'v', ARGV[3])
keep(KEYS[1], ARGV[2])
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'six', KEYS[2])
  index(KEYS[2], ARGV[4], ARGV[2])
end
return 'ok'`)

	// KEYS: session. ARGV: now, session ID hash.
	redisDeleteSession = redisScript(`
local six = redis.call('HGET', KEYS[1], 'six')
if six then redis.call('ZREM', six, ARGV[2]) end
redis.call('DEL', KEYS[1])
return 'ok'`)

	// KEYS: session. ARGV: now, client ID. A client is a field "c:" ID of
	// the session's hash, so it ends with the session.
	redisJoinSession = redisScript(`
if not live(redis.call('HGET', KEYS[1], 'until')) then return 'notfound' end
redis.call('HSET', KEYS[1], 'c:' .. ARGV[2], '1')
return 'ok'`)

	// KEYS: session. ARGV: now, session ID hash.
	// Reply: {status, session JSON, client IDs...}.
	redisEndSession = redisScript(`
local h = redis.call('HGETALL', KEYS[1])
local f, clients = {}, {}
for n = 1, #h, 2 do
  if string.sub(h[n], 1, 2) == 'c:' then
    table.insert(clients, string.sub(h[n], 3))
  else
    f[h[n]] = h[n + 1]
  end
end
if not live(f['until']) then return {'notfound'} end
if f['six'] then redis.call('ZREM', f['six'], ARGV[2]) end
redis.call('DEL', KEYS[1])
table.sort(clients)
local out = {'ok', f['v']}
for _, c in ipairs(clients) do table.insert(out, c) end
return out`)

	// KEYS: subject's sessions. ARGV: now, session key prefix.
	// Reply: {status, live session ID hashes...}. Members whose session
	// is gone are dropped.
	redisSubjectSessions = redisScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {'ok'}
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if live(redis.call('HGET', ARGV[2] .. h, 'until')) then
    table.insert(out, h)
  else
    redis.call('ZREM', KEYS[1], h)
  end
end
return out`)

	// KEYS: an index of families (a subject's or a session's). ARGV: now,
	// family key prefix. Revokes the live families it names that are not
	// revoked yet. Reply: {status, then ID, client, subject, session ID
	// hash of each family revoked}.
	redisRevokeIndexed = redisScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {'ok'}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fk = ARGV[2] .. id
  local f = redis.call('HMGET', fk, 'until', 'revoked', 'cli', 'sub', 'sh')
  if not live(f[1]) then
    redis.call('ZREM', KEYS[1], id)
  elseif f[2] ~= '1' then
    redis.call('HSET', fk, 'revoked', '1')
    for _, v in ipairs({id, f[3] or '', f[4] or '', f[5] or ''}) do table.insert(out, v) end
  end
end
return out`)

	// KEYS: entry. ARGV: now, expiry, value JSON.
	redisPut = redisScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'until', ARGV[2], 'v', ARGV[3])
keep(KEYS[1], ARGV[2])
return 'ok'`)
)

// The registered clients' scripts. A client's hash holds its JSON "v" and,
// while it is unused and has an unused TTL, its "until"; without "until"
// it lives until deleted. The index of all clients is a sorted set of
// client IDs scored by "until", +inf for those kept until deleted.
const redisClientLib = `
-- client returns the live client's JSON and "until" under key, or nil.
local function client(key)
  local c = redis.call('HMGET', key, 'v', 'until')
  if not c[1] or (c[2] and not live(c[2])) then return nil end
  return c
end
`

var (
	// KEYS: client, index of clients. ARGV: now, client JSON, until
	// (empty: none), max (0: no limit), client key prefix, client ID. An
	// identical client already stored is this call's own retry. Reply:
	// 'ok', 'exists' or 'limit'.
	redisRegisterClient = redisScript(redisClientLib + `
local c = client(KEYS[1])
if c then
  if c[1] == ARGV[2] then return 'ok' end
  return 'exists'
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local max = tonumber(ARGV[4])
if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then
  -- Drop the clients whose key Redis removed (its clock may run ahead of
  -- the store's), then count again.
  for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('EXISTS', ARGV[5] .. id) == 0 then redis.call('ZREM', KEYS[2], id) end
  end
  if redis.call('ZCARD', KEYS[2]) >= max then return 'limit' end
end
redis.call('DEL', KEYS[1])
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[6])
else
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 'until', ARGV[3])
  keep(KEYS[1], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
end
return 'ok'`)

	// KEYS: client, index of clients. ARGV: now, client ID.
	redisUseClient = redisScript(redisClientLib + `
local c = client(KEYS[1])
if not c then return 'notfound' end
if c[2] then
  redis.call('HDEL', KEYS[1], 'until')
  redis.call('PERSIST', KEYS[1])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[2])
end
return 'ok'`)

	// KEYS: client, index of clients. ARGV: now, client ID.
	redisDeleteClient = redisScript(redisClientLib + `
local c = client(KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
if not c then return 'notfound' end
return 'ok'`)
)
