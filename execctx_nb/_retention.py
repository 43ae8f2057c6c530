"""Retention of the event stream: trim, but never past what a consumer group still needs.

``XTRIM`` alone deletes entries still pending for a group (a consumer that crashed would
lose them for good) and entries no group has read yet. :func:`trim_events` computes, in one
Lua script (atomic, so no group can read or claim in between), the oldest id any group still
needs, and trims to the requested point or to that id, whichever is older.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import valkey

from execctx_nb import keys
from execctx_nb.errors import EventStreamError, StoreUnavailableError

__all__ = ["TrimResult", "trim_events"]

# An id "a-b" is compared as the pair (a, b); ms fits a Lua double exactly (< 2**53).
_TRIM_LUA = """
local stream = KEYS[1]
local function split(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq), ms
end
local function older(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  if am ~= bm then return am < bm end
  return as < bs
end
local function successor(id)
  local _, seq, ms = split(id)
  return ms .. '-' .. string.format('%d', seq + 1)
end
if redis.call('EXISTS', stream) == 0 then return {0, '', ''} end
local target
if ARGV[1] == 'minid' then
  target = ARGV[2]
else
  local n = tonumber(ARGV[2])
  if redis.call('XLEN', stream) <= n then return {0, '', ''} end
  if n == 0 then
    target = successor(redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1][1])
  else
    local keep = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', n)
    target = keep[#keep][1]
  end
end
local holder = ''
for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  -- entries after last-delivered-id were never read by this group
  local need = successor(info['last-delivered-id'])
  local pending = redis.call('XPENDING', stream, info['name'])
  if pending[1] > 0 and older(pending[2], need) then need = pending[2] end
  if older(need, target) then target = need; holder = info['name'] end
end
local before = redis.call('XLEN', stream)
redis.call('XTRIM', stream, 'MINID', target)
return {before - redis.call('XLEN', stream), target, holder}
"""


class TrimResult(NamedTuple):
    """What :func:`trim_events` did."""

    removed: int
    """Entries deleted."""
    minid: str
    """Entries older than this id were deleted ('' when nothing was to do)."""
    held_back_by: str
    """The group whose pending or unread entries stopped the trim short ('' if none)."""


def trim_events(client: valkey.Valkey, tenant_id: str, *, maxlen: int | None = None,
                minid: str | None = None) -> TrimResult:
    """Trim ``t:{tenantId}:events`` to ``maxlen`` entries or to ids >= ``minid``.

    Exactly one of ``maxlen`` / ``minid`` is given. Entries still pending for any consumer
    group, or not yet read by one, are kept: the trim stops at the oldest such entry.

    Examples
    --------
    >>> trim_events(client, "org_42", maxlen=10_000)                    # doctest: +SKIP
    TrimResult(removed=120, minid='1764077041000-0', held_back_by='')
    """
    stream = keys.events_key(tenant_id)
    if (maxlen is None) == (minid is None):
        raise ValueError("Expected exactly one of maxlen / minid - at `trim_events`; got"
                         f" maxlen={maxlen!r}, minid={minid!r}")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 0):
        raise ValueError(f"Invalid maxlen {maxlen!r}: expected an int >= 0 - at `maxlen`")
    if minid is not None:
        head, sep, tail = minid.partition("-")
        if not head.isdigit() or (sep and not tail.isdigit()):
            raise ValueError(f"Invalid minid {minid!r}: expected a stream id like '1764077041000-0'"
                             " - at `minid`")
        minid = minid if sep else f"{minid}-0"
    args = ("minid", minid) if minid is not None else ("maxlen", str(maxlen))
    try:
        reply = cast(list[Any], client.eval(_TRIM_LUA, 1, stream, *args))
        removed, target, holder = reply
    except (valkey.exceptions.ConnectionError, valkey.exceptions.TimeoutError, OSError) as exc:
        raise StoreUnavailableError(f"Could not trim `{stream}`: {exc} - nothing or all of the"
                                    " trim happened (it is atomic); try again") from exc
    except valkey.exceptions.ResponseError as exc:
        raise EventStreamError(f"The server refused to trim `{stream}`: {exc} - check that the"
                               " key holds a stream") from exc

    def text(value: bytes | str) -> str:
        return value.decode() if isinstance(value, bytes) else value

    return TrimResult(int(removed), text(target), text(holder))
