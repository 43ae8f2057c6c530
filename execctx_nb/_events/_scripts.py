"""The Lua scripts of the event subscriber (one server call per step of a batch).

Every dedup key is ``{prefix}{idem}``, the prefix coming from :func:`execctx_nb.keys.dedup_prefix`:
the scripts append the idempotency key server-side, so a batch sends each key at most once
(at commit) instead of twice as full key names. The scripts touch keys they build themselves,
which a standalone server (the only deployment supported) allows.

Lease values are ``i:{consumer}:{nonce}`` and done marks ``d:{streamId}``
(docs/wire-format.md, "Consumer groups and receive-side dedup").
"""

from __future__ import annotations

__all__ = ["ACQUIRE_LUA", "COMMIT_LUA", "DEAD_LETTER_LUA", "READ_LUA", "SKIPPED"]

SKIPPED = 1
"""Verdict of :data:`READ_LUA` for an entry it did not lease (a field is missing)."""

# Writes many string keys with one TTL in one call: MSETEX (Valkey 9.1), else a SET per key
# (older servers). One call per batch instead of one per key is most of the server time
# saved: each redis.call from Lua costs ~1.5 us, more than the SET itself.
_MSET_TTL = r"""
local function mset_ttl(kv, unit, ttl)
  local n = #kv
  if n == 0 then return end
  kv[n + 1], kv[n + 2] = unit, ttl  -- only a call's last argument expands: unpack goes last
  local res = redis.pcall('MSETEX', n / 2, unpack(kv))
  if type(res) == 'table' and res.err then
    if not string.find(string.lower(res.err), 'unknown', 1, true) then return redis.error_reply(res.err) end
    for i = 1, n, 2 do redis.call('SET', kv[i], kv[i + 1], unit, ttl) end
  end
end
"""

# Leases the keys {prefix}{idem} of rows[j][slot] (j = 1..#rows) for `token`, in one MGET
# and one write: the script is atomic, so "absent at MGET" is "absent at the write" (what
# SET NX would check per key). Stores the previous value at rows[j][2] (false: the lease is
# ours; our own earlier lease, e.g. a duplicate earlier in the batch, counts as ours and is
# refreshed).
_LEASE = (
    _MSET_TTL
    + r"""
local function lease(rows, slot, prefix, token, ms)
  if #rows == 0 then return end
  local ks = {}
  for j, row in ipairs(rows) do ks[j] = prefix .. row[slot] end
  local old = redis.call('MGET', unpack(ks))
  local kv, seen = {}, {}
  for j, k in ipairs(ks) do
    local v = old[j]
    if v == token then v = false end
    if not v and not seen[k] then
      seen[k] = true
      kv[#kv + 1] = k
      kv[#kv + 1] = token
    end
    rows[j][2] = v
  end
  local err = mset_ttl(kv, 'PX', ms)
  if err then return err end
end
"""
)

# The commit of one batch, as a function of its argument list `a`:
#   group, ttl s, lease value, dedup prefix, consumer, n_done, n_release, n_busy,
#   (idem, id) per done entry, idem per lease to release, (id, delivery count - 1) per
#   busy entry, further ids to acknowledge...
# Done marks and acks are written together (idempotent: safe to retry after a lost reply).
# A busy entry (another consumer holds its key's lease) gets its delivery count set back
# (XCLAIM ... RETRYCOUNT JUSTID): waiting for a live consumer must not push it toward the DLQ.
_COMMIT = r"""  -- needs mset_ttl
local function commit(stream, a)
  local p = a[4]
  local ndone, nrel, nbusy = tonumber(a[6]), tonumber(a[7]), tonumber(a[8])
  local ids, kv, i = {}, {}, 8
  for n = 1, ndone do
    kv[2 * n - 1] = p .. a[i + 1]
    kv[2 * n] = 'd:' .. a[i + 2]
    ids[n] = a[i + 2]
    i = i + 2
  end
  local err = mset_ttl(kv, 'EX', a[2])
  if err then return err end
  for _ = 1, nrel do
    local k = p .. a[i + 1]
    if redis.call('GET', k) == a[3] then redis.call('DEL', k) end
    i = i + 1
  end
  for _ = 1, nbusy do
    redis.call('XCLAIM', stream, a[1], a[5], 0, a[i + 1], 'RETRYCOUNT', a[i + 2], 'JUSTID')
    i = i + 2
  end
  for j = i + 1, #a do ids[#ids + 1] = a[j] end
  if #ids > 0 then return redis.call('XACK', stream, a[1], unpack(ids)) end
  return 0
end
"""

# KEYS: stream; ARGV: the commit arguments above. Returns the XACK count (or an error).
COMMIT_LUA = (
    _MSET_TTL
    + _COMMIT
    + r"""
return commit(KEYS[1], ARGV)
"""
)

# KEYS: stream; ARGV: group, consumer, count, lease value, lease ms, dedup prefix[, the
# previous batch's commit arguments (see _COMMIT)]. The previous batch is committed first,
# so reading the next batch costs no extra round trip for it.
# Reads new entries (XREADGROUP ... COUNT n, never BLOCK: scripts cannot block) and takes
# the lease of each entry's key in the same atomic call. Per entry it returns
#   {id, previous value of the key (nil: the lease is ours), kind, idem, event[, all fields]}
# (all fields only when the entry has fields besides these three), or
#   {id, SKIPPED, all fields} when a field is missing or empty (Python dead-letters it).
# The idem is checked in Python (keys.validate_id, ~4x cheaper than a Lua pattern): an
# invalid one is dead-lettered and its lease given back in the commit script.
READ_LUA = (
    _LEASE
    + _COMMIT
    + r"""
if #ARGV > 6 then
  local a = {}
  for j = 7, #ARGV do a[j - 6] = ARGV[j] end
  local res = commit(KEYS[1], a)
  if type(res) == 'table' and res.err then return res end
end
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                     'STREAMS', KEYS[1], '>')
if not r then return {} end
local out, rows = {}, {}
for n, e in ipairs(r[1][2]) do
  local f = e[2]
  local kind, idem, ev
  for j = 1, #f, 2 do
    local name = f[j]
    if name == 'kind' then kind = f[j + 1]
    elseif name == 'idem' then idem = f[j + 1]
    elseif name == 'event' then ev = f[j + 1] end
  end
  if kind and ev and idem and #idem > 0 then
    if #f == 6 then out[n] = {e[1], false, kind, idem, ev}
    else out[n] = {e[1], false, kind, idem, ev, f} end
    rows[#rows + 1] = out[n]
  else
    out[n] = {e[1], 1, f}
  end
end
local err = lease(rows, 4, ARGV[6], ARGV[4], ARGV[5])
if err then return err end
return out
"""
)

# ARGV: lease value, lease ms, dedup prefix, idem... Returns the previous value per key
# (nil: the lease is ours).
ACQUIRE_LUA = (
    _LEASE
    + r"""
local rows = {}
for i = 4, #ARGV do rows[i - 3] = {ARGV[i], false} end
local err = lease(rows, 1, ARGV[3], ARGV[1], ARGV[2])
if err then return err end
local out = {}
for j, row in ipairs(rows) do out[j] = row[2] end
return out
"""
)

# KEYS: stream, dlq[, dedup key]; ARGV: group, id, lease value, field, value, ...
# The XACK decides: an entry someone else already acknowledged (or moved) is not copied
# again, so a retry after a lost reply cannot duplicate the dead letter.
DEAD_LETTER_LUA = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""
