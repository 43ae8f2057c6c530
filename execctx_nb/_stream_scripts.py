"""The Lua scripts of the event subscriber (one server call per step of a batch).

Every dedup key is ``{prefix}{idem}``, the prefix coming from :func:`execctx_nb.keys.dedup_prefix`:
the scripts append the idempotency key server-side, so a batch sends each key at most once
(at commit) instead of twice as full key names. The scripts touch keys they build themselves,
which a standalone server (the only deployment supported) allows.

Lease values are ``i:{consumer}:{nonce}`` and done marks ``d:{streamId}``
(docs/wire-format-events.md, "Consumer groups and receive-side dedup").
"""

from __future__ import annotations

__all__ = ["ACQUIRE_LUA", "COMMIT_LUA", "DEAD_LETTER_LUA", "READ_LUA", "SKIPPED"]

SKIPPED = 1
"""Verdict of :data:`READ_LUA` for an entry it did not lease: Python parses and leases it."""

# The idempotency-key rules of keys.validate_id for ASCII keys, as a Lua pattern: 1 to 200
# bytes, none of \0-\x20 \x7f : / \ { } [ ] * ? " ', not "." or "..". Any byte >= 0x80 is
# refused here too: non-ASCII keys need Unicode categories, so Python checks (and leases) them.
_IDEM_OK = r"""
local function idem_ok(s)
  return s ~= nil and #s > 0 and #s <= 200 and s ~= '.' and s ~= '..'
     and not string.find(s, "[%z\1-\32\127-\255:/\\{}%[%]*?\"']")
end
"""

# KEYS: stream; ARGV: group, consumer, count, lease value, lease ms, dedup prefix.
# Reads new entries (XREADGROUP ... COUNT n, never BLOCK: scripts cannot block) and takes
# the lease of each entry's key in the same atomic call. Per entry it returns
#   {id, previous value of the key (nil: the lease is ours), kind, idem, event[, all fields]}
# (all fields only when the entry has fields besides these three), or
#   {id, SKIPPED, all fields} when a field is missing or idem is not a plain ASCII key.
# Our own lease (left by a release that failed, or a duplicate earlier in the batch) counts
# as taken and is refreshed.
READ_LUA = _IDEM_OK + r"""
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                     'STREAMS', KEYS[1], '>')
if not r then return {} end
local out = {}
for n, e in ipairs(r[1][2]) do
  local f = e[2]
  local kind, idem, ev
  for j = 1, #f, 2 do
    local name = f[j]
    if name == 'kind' then kind = f[j + 1]
    elseif name == 'idem' then idem = f[j + 1]
    elseif name == 'event' then ev = f[j + 1] end
  end
  if kind and ev and idem_ok(idem) then
    local k = ARGV[6] .. idem
    local old = redis.call('SET', k, ARGV[4], 'NX', 'PX', ARGV[5], 'GET')
    if old == ARGV[4] then
      redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
      old = false
    end
    if #f == 6 then out[n] = {e[1], old, kind, idem, ev}
    else out[n] = {e[1], old, kind, idem, ev, f} end
  else
    out[n] = {e[1], 1, f}
  end
end
return out
"""

# ARGV: lease value, lease ms, dedup prefix, idem... Returns the previous value per key
# (nil: the lease is ours, including our own earlier lease, which is refreshed).
ACQUIRE_LUA = r"""
local out = {}
for i = 4, #ARGV do
  local k = ARGV[3] .. ARGV[i]
  local old = redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2], 'GET')
  if old == ARGV[1] then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    old = false
  end
  out[i - 3] = old
end
return out
"""

# KEYS: stream
# ARGV: group, ttl s, lease value, dedup prefix, consumer, n_done, n_release, n_busy,
#       (idem, id) per done entry, idem per lease to release, (id, delivery count - 1) per
#       busy entry, further ids to acknowledge...
# Done marks and acks are written together (idempotent: safe to retry after a lost reply).
# A busy entry (another consumer holds its key's lease) gets its delivery count set back
# (XCLAIM ... RETRYCOUNT JUSTID): waiting for a live consumer must not push it toward the DLQ.
COMMIT_LUA = r"""
local p = ARGV[4]
local ndone, nrel, nbusy = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local ids, i = {}, 8
for n = 1, ndone do
  redis.call('SET', p .. ARGV[i + 1], 'd:' .. ARGV[i + 2], 'EX', ARGV[2])
  ids[n] = ARGV[i + 2]
  i = i + 2
end
for _ = 1, nrel do
  local k = p .. ARGV[i + 1]
  if redis.call('GET', k) == ARGV[3] then redis.call('DEL', k) end
  i = i + 1
end
for _ = 1, nbusy do
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[5], 0, ARGV[i + 1], 'RETRYCOUNT', ARGV[i + 2], 'JUSTID')
  i = i + 2
end
for j = i + 1, #ARGV do ids[#ids + 1] = ARGV[j] end
if #ids > 0 then return redis.call('XACK', KEYS[1], ARGV[1], unpack(ids)) end
return 0
"""

# KEYS: stream, dlq[, dedup key]; ARGV: group, id, lease value, field, value, ...
# The XACK decides: an entry someone else already acknowledged (or moved) is not copied
# again, so a retry after a lost reply cannot duplicate the dead letter.
DEAD_LETTER_LUA = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""
