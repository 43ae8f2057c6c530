"""Retention of the event stream: trim, but never past what a consumer group still needs.

``XTRIM`` alone deletes entries still pending for a group (a consumer that crashed would
lose them for good) and entries no group has read yet. :func:`trim_events` computes, in a
Lua script (atomic, so no group can read or claim in between), the oldest id any group still
needs, and trims to the requested point or to that id, whichever is older.

The trim runs as a series of such scripts, each deleting at most :data:`TRIM_STEP` of the
oldest entries: a stream has no positional index, so finding the ``maxlen``-th newest id
means reading entries, and a single script reading ``maxlen`` (or all removed) entries
would block the server for a time growing with ``maxlen``. Each step's cost is bounded by
``TRIM_STEP`` whatever ``maxlen`` is; the group check is redone atomically in every step.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import valkey

from execctx_nb import keys
from execctx_nb._connection._sync import Client
from execctx_nb._events._core import CONNECTION_ERRORS, FORBIDDEN_ERRORS, refused
from execctx_nb.errors import EventStreamError, InvalidArgumentError, StoreUnavailableError

__all__ = ["TRIM_STEP", "TrimResult", "trim_events"]

TRIM_STEP = 2_000
"""Most entries one trim script deletes (it reads one more): bounds how long it holds the server."""

# One step: delete up to ARGV[1] of the oldest entries, stopping at ARGV[2] (a minid, or
# '') and at the oldest entry any group still needs. With ARGV[3] (a maxlen, or ''), also
# stop once only that many entries are left, and return how many were over it.
# An id "a-b" is compared as the pair (a, b); ms fits a Lua double exactly (< 2**53).
_TRIM_STEP_LUA = """
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
if redis.call('EXISTS', stream) == 0 then return {0, '', '', 0} end
local want = tonumber(ARGV[1])
local excess = -1
if ARGV[3] ~= '' then
  excess = redis.call('XLEN', stream) - tonumber(ARGV[3])
  if excess < want then want = excess end
end
if want <= 0 then return {0, '', '', excess} end
-- one entry past the batch: the first one kept, reported as the cut (as XTRIM MAXLEN keeps it)
local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', want + 1)
if #batch == 0 then return {0, '', '', excess} end
local target
if #batch > want then target = batch[want + 1][1] else target = successor(batch[#batch][1]) end
if ARGV[2] ~= '' and older(ARGV[2], target) then target = ARGV[2] end
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
return {before - redis.call('XLEN', stream), target, holder, excess}
"""


class TrimResult(NamedTuple):
    """What :func:`trim_events` did."""

    removed: int
    """Entries deleted."""
    minid: str
    """Entries older than this id were deleted ('' when nothing was to do)."""
    held_back_by: str
    """The group whose pending or unread entries stopped the trim short ('' if none)."""


def trim_events(
    client: Client, tenant_id: str, *, maxlen: int | None = None, minid: str | None = None
) -> TrimResult:
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
        raise InvalidArgumentError(
            "Expected exactly one of maxlen / minid - at `trim_events`; got"
            f" maxlen={maxlen!r}, minid={minid!r}"
        )
    if maxlen is not None and (
        isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 0
    ):
        raise InvalidArgumentError(f"Invalid maxlen {maxlen!r}: expected an int >= 0 - at `maxlen`")
    if minid is not None:
        head, sep, tail = minid.partition("-")
        if not head.isdigit() or (sep and not tail.isdigit()):
            raise InvalidArgumentError(
                f"Invalid minid {minid!r}: expected a stream id like '1764077041000-0' - at `minid`"
            )
        minid = minid if sep else f"{minid}-0"
    try:
        return _trim_in_steps(client, stream, maxlen=maxlen, minid=minid)
    except FORBIDDEN_ERRORS as exc:
        raise refused(exc, stream) from exc
    except CONNECTION_ERRORS as exc:
        raise StoreUnavailableError(
            f"Could not trim `{stream}`: {exc} - each step of the trim"
            " is atomic and safe to repeat; try again"
        ) from exc
    except valkey.exceptions.ResponseError as exc:
        raise EventStreamError(
            f"The server refused to trim `{stream}`: {exc} - check that the key holds a stream"
        ) from exc


def _trim_in_steps(
    client: Client, stream: str, *, maxlen: int | None, minid: str | None
) -> TrimResult:
    """Run bounded trim steps until the request is met, a group holds it back, or the stream ends."""
    removed_total, target, holder = 0, "", ""
    # maxlen counts from the stream as it is now: the first step reports how many entries are
    # over it, and later steps delete exactly that many more, so entries published meanwhile
    # are not chased.
    remaining: int | None = None
    while remaining is None or remaining > 0:
        want = TRIM_STEP if remaining is None else min(TRIM_STEP, remaining)
        limit_len = str(maxlen) if maxlen is not None and remaining is None else ""
        reply = cast(
            list[Any], client.eval(_TRIM_STEP_LUA, 1, stream, str(want), minid or "", limit_len)
        )
        removed, excess = int(reply[0]), int(reply[3])
        step_target, step_holder = _text(reply[1]), _text(reply[2])
        if maxlen is not None and remaining is None:
            remaining = excess
        if step_target:
            target, holder = step_target, step_holder
        removed_total += removed
        if remaining is not None:
            remaining -= removed
        if removed < want or step_holder:
            break
    return TrimResult(removed_total, target, holder)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
