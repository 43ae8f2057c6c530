"""A tenant's consumer groups as an operator sees them, and the two repairs an operator makes.

- :func:`group_status`: per group its consumers (pending entries, idle time), its lag
  (entries not yet delivered), its oldest pending entry; the dead-letter stream's length and
  its newest entries with their reasons. Read-only (``XINFO``, ``XPENDING``, ``XREVRANGE``):
  it never joins a group, so it takes no event from anyone.
- :func:`replay_dead_letter`: put a dead letter's original entry back on the stream (a new
  id; the group delivers it again) and remove the dead letter, in one script: a second call
  finds nothing to replay instead of publishing twice.
- :func:`remove_consumer`: claim a dead consumer's pending entries for another consumer, then
  delete it, in one script: no pending entry is dropped.

Dead letters are read as untrusted input: a malformed one (fields that are not a JSON
object of strings, oversized values, a missing original) is listed with what is wrong with
it and is refused by :func:`replay_dead_letter`, never published.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any, cast

import msgspec
import valkey

from execctx_nb import keys
from execctx_nb._connection._common import resolve_url
from execctx_nb._connection._sync import Client, make_client
from execctx_nb._events._core import CONNECTION_ERRORS, FORBIDDEN_ERRORS, refused, text
from execctx_nb.errors import EventStreamError, InvalidArgumentError, StoreUnavailableError

__all__ = [
    "ConsumerState",
    "DeadLetter",
    "GroupState",
    "StreamStatus",
    "group_status",
    "remove_consumer",
    "replay_dead_letter",
]

_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
MAX_FIELDS_BYTES = 1 << 20  # a dead letter's original entry larger than this is not replayed
_REASON_CHARS = 500  # a reason is cut to this for display (the entry keeps all of it)

# KEYS: stream, dead-letter stream; ARGV: dead-letter id, field, value, ...
REPLAY_LUA = """
if #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[2], ARGV[1])
return id
"""
# KEYS: stream; ARGV: group, consumer, new owner, batches at most. Returns entries moved.
REMOVE_LUA = """
local moved = 0
for _ = 1, tonumber(ARGV[4]) do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 100, ARGV[2])
  if #p == 0 then break end
  local ids = {}
  for i, e in ipairs(p) do ids[i] = e[1] end
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, unpack(ids))
  moved = moved + #ids
end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then
  return redis.error_reply('EXECCTX pending entries left; nothing was removed')
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return moved
"""


class ConsumerState(msgspec.Struct, frozen=True):
    """One consumer of a group."""

    name: str
    pending: int
    idle_ms: int
    """Since its last attempted interaction (read or claim)."""


class GroupState(msgspec.Struct, frozen=True):
    """One consumer group of the stream."""

    name: str
    consumers: tuple[ConsumerState, ...]
    pending: int
    """Entries delivered to a consumer and not acknowledged yet."""
    lag: int | None
    """Entries not delivered to the group yet (None when the server cannot tell)."""
    last_delivered: str
    oldest_pending: str | None = None
    oldest_pending_idle_ms: int | None = None
    oldest_pending_deliveries: int | None = None


class DeadLetter(msgspec.Struct, frozen=True):
    """One entry of the dead-letter stream (``problem`` says why it cannot be replayed)."""

    id: str
    original_id: str
    error: str
    deliveries: int | None
    consumer: str
    group: str
    ts: str
    kind: str = ""
    problem: str | None = None


class StreamStatus(msgspec.Struct, frozen=True):
    """What :func:`group_status` read, at one moment."""

    tenant: str
    stream: str
    length: int
    groups: tuple[GroupState, ...]
    dead_letters: int
    newest_dead_letters: tuple[DeadLetter, ...]

    def __str__(self) -> str:
        from execctx_nb.display._groups_view import status_text

        return status_text(self)

    def _repr_html_(self) -> str:
        from execctx_nb.display._groups_view import status_html

        return status_html(self)


@contextlib.contextmanager
def _connected(client: Client | None, url: str | None, store: Any) -> Iterator[Any]:
    """The client to use: ``client``, a store's, or one for ``url`` (``$VALKEY_URL``), which
    is closed afterwards."""
    if client is not None or store is not None:
        yield client if client is not None else store.client
        return
    own = make_client(resolve_url(url))
    try:
        yield own
    finally:
        own.close()  # type: ignore[no-untyped-call]


def _fail(exc: BaseException, stream: str, doing: str) -> Exception:
    if isinstance(exc, FORBIDDEN_ERRORS):
        return refused(exc, stream)
    if isinstance(exc, CONNECTION_ERRORS):
        return StoreUnavailableError(
            f"Could not {doing} `{stream}`: {type(exc).__name__}: {exc} - check that the server"
            " runs and is reachable, then try again (nothing was changed half-way)"
        )
    return EventStreamError(f"The server refused to {doing} `{stream}`: {exc}")


def group_status(
    tenant_id: str,
    *,
    client: Client | None = None,
    url: str | None = None,
    store: Any = None,
    dead_letters: int = 5,
) -> StreamStatus:
    """The consumer groups of ``t:{tenant_id}:events`` and its dead letters (read-only).

    The server: ``client``, else ``store``'s (an :class:`ExecutionContextStore`), else a
    client for ``url`` (default ``$VALKEY_URL``); the same for the two repairs below.

    Raises
    ------
    StoreUnavailableError
        The server cannot be reached.
    AccessDeniedError
        The credentials may not read the tenant's streams.
    """
    tenant_id = keys.validate_tenant(tenant_id)
    if isinstance(dead_letters, bool) or not isinstance(dead_letters, int) or dead_letters < 0:
        raise InvalidArgumentError(
            f"Invalid dead_letters {dead_letters!r}: expected an int >= 0 - at `group_status`"
        )
    stream, dlq = keys.events_key(tenant_id), keys.dlq_key(tenant_id)
    with _connected(client, url, store) as c:
        try:
            length = int(c.xlen(stream))
            groups = tuple(_group(c, stream, g) for g in _info_groups(c, stream))
            dead = int(c.xlen(dlq))
            newest = c.xrevrange(dlq, "+", "-", count=dead_letters) if dead_letters else []
        except (valkey.exceptions.ValkeyError, OSError) as exc:
            raise _fail(exc, stream, "read the consumer groups of") from exc
    return StreamStatus(
        tenant=tenant_id,
        stream=stream,
        length=length,
        groups=groups,
        dead_letters=dead,
        newest_dead_letters=tuple(_dead_letter(text(i), f) for i, f in newest),
    )


def _info_groups(c: Any, stream: str) -> list[dict[str, Any]]:
    try:
        return cast(list[dict[str, Any]], c.xinfo_groups(stream))
    except valkey.exceptions.ResponseError as exc:
        if "no such key" in str(exc).lower():
            return []  # no stream yet: no groups
        raise


def _group(c: Any, stream: str, info: dict[str, Any]) -> GroupState:
    name = text(info["name"])
    consumers = tuple(
        ConsumerState(text(x["name"]), int(x["pending"]), int(x["idle"]))
        for x in c.xinfo_consumers(stream, name)
    )
    oldest = c.xpending_range(stream, name, min="-", max="+", count=1)
    lag = info.get("lag")
    first = oldest[0] if oldest else None
    return GroupState(
        name=name,
        consumers=tuple(sorted(consumers, key=lambda x: x.name)),
        pending=int(info["pending"]),
        lag=None if lag is None else int(lag),
        last_delivered=text(info["last-delivered-id"]),
        oldest_pending=text(first["message_id"]) if first else None,
        oldest_pending_idle_ms=int(first["time_since_delivered"]) if first else None,
        oldest_pending_deliveries=int(first["times_delivered"]) if first else None,
    )


def _dead_letter(entry_id: str, raw: dict[Any, Any]) -> DeadLetter:
    """One dead letter, checked: whatever is wrong with it goes into ``problem``."""
    f = {text(k): v for k, v in raw.items()}

    def field(name: str, limit: int = 200) -> str:
        value = f.get(name)
        return "" if value is None else text(value)[:limit]

    problem: str | None = None
    kind = ""
    try:
        kind = _original(f).get("kind", "")
    except ValueError as exc:
        problem = str(exc)
    deliveries = field("deliveries")
    return DeadLetter(
        id=entry_id,
        original_id=field("origId", 64),
        error=field("error", _REASON_CHARS),
        deliveries=int(deliveries) if deliveries.isdigit() else None,
        consumer=field("consumer"),
        group=field("group"),
        ts=field("ts", 64),
        kind=kind,
        problem=problem,
    )


def _original(f: dict[str, Any]) -> dict[str, str]:
    """The original entry's fields, or ValueError saying what is wrong."""
    raw = f.get("fields")
    if raw is None:
        raise ValueError("no `fields` (the original entry) in this dead letter")
    if len(raw) > MAX_FIELDS_BYTES:
        raise ValueError(f"`fields` holds {len(raw):,} bytes (more than {MAX_FIELDS_BYTES:,})")
    try:
        original = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"`fields` is not JSON: {exc}") from None
    if (
        not isinstance(original, dict)
        or not original
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in original.items())
    ):
        raise ValueError("`fields` is not a JSON object of strings (a stream entry's fields)")
    return original


def replay_dead_letter(
    tenant_id: str,
    dead_letter_id: str,
    *,
    client: Client | None = None,
    url: str | None = None,
    store: Any = None,
) -> str:
    """Put the original entry of dead letter ``dead_letter_id`` back on the tenant's stream
    and remove the dead letter (atomically); returns the new stream id.

    The consumer groups deliver the entry again (its idempotency key is unchanged, and a
    dead-lettered event was never marked done).

    Raises
    ------
    InvalidArgumentError
        No such dead letter (replayed or removed already), or a malformed id.
    EventStreamError
        The dead letter is malformed (it stays where it is).
    """
    tenant_id = keys.validate_tenant(tenant_id)
    if not isinstance(dead_letter_id, str) or not _ID.fullmatch(dead_letter_id):
        raise InvalidArgumentError(
            f"Invalid dead letter id {dead_letter_id!r}: expected a stream id like"
            " '1764076745000-0' - at `replay_dead_letter`; group_status(tenant) lists them"
        )
    stream, dlq = keys.events_key(tenant_id), keys.dlq_key(tenant_id)
    with _connected(client, url, store) as c:
        try:
            found = c.xrange(dlq, dead_letter_id, dead_letter_id)
            if not found:
                raise InvalidArgumentError(
                    f"No dead letter {dead_letter_id} in `{dlq}` - it was replayed or removed"
                    " already; group_status(tenant) lists the current ones"
                )
            try:
                original = _original({text(k): v for k, v in found[0][1].items()})
            except ValueError as exc:
                raise EventStreamError(
                    f"Dead letter {dead_letter_id} in `{dlq}` cannot be replayed: {exc} - it was"
                    " left in place; inspect it with XRANGE and remove it with XDEL"
                ) from None
            new_id = c.register_script(REPLAY_LUA)(
                keys=[stream, dlq],
                args=[dead_letter_id, *(x for kv in sorted(original.items()) for x in kv)],
            )
        except (valkey.exceptions.ValkeyError, OSError) as exc:
            raise _fail(exc, stream, "replay a dead letter into") from exc
    if new_id is None:
        raise InvalidArgumentError(
            f"No dead letter {dead_letter_id} in `{dlq}` - another client replayed or removed"
            " it a moment ago"
        )
    return text(new_id)


def remove_consumer(
    tenant_id: str,
    group: str,
    consumer: str,
    *,
    to: str | None = None,
    client: Client | None = None,
    url: str | None = None,
    store: Any = None,
) -> int:
    """Delete ``consumer`` from ``group`` after its pending entries were claimed by ``to``
    (default: the group's most recently active other consumer); returns the entries moved.

    Raises
    ------
    InvalidArgumentError
        No such group or consumer, ``to`` equal to ``consumer``, or pending entries and no
        other consumer to take them (pass ``to=``).
    """
    tenant_id = keys.validate_tenant(tenant_id)
    for what, value in (("group", group), ("consumer", consumer)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(
                f"Invalid {what} {value!r}: expected a non-empty name - at `remove_consumer`"
            )
    stream = keys.events_key(tenant_id)
    with _connected(client, url, store) as c:
        try:
            names = {text(g["name"]) for g in _info_groups(c, stream)}
            if group not in names:
                raise InvalidArgumentError(
                    f"No consumer group {group!r} on `{stream}` - groups: {sorted(names)}"
                )
            members = {text(x["name"]): x for x in c.xinfo_consumers(stream, group)}
            if consumer not in members:
                raise InvalidArgumentError(
                    f"No consumer {consumer!r} in group {group!r} - consumers: {sorted(members)}"
                )
            pending = int(members[consumer]["pending"])
            if to is None:
                others = sorted((int(x["idle"]), n) for n, x in members.items() if n != consumer)
                if pending and not others:
                    raise InvalidArgumentError(
                        f"Consumer {consumer!r} of {group!r} holds {pending} pending entries and is"
                        " the group's only consumer - pass to='<consumer name>' to hand them over"
                    )
                to = others[0][1] if others else consumer + "-successor"
            if to == consumer:
                raise InvalidArgumentError(
                    f"Cannot hand {consumer!r}'s pending entries to itself - pass another `to`"
                )
            batches = pending // 100 + 10
            moved = c.register_script(REMOVE_LUA)(
                keys=[stream], args=[group, consumer, to, batches]
            )
        except (valkey.exceptions.ValkeyError, OSError) as exc:
            raise _fail(exc, stream, "remove a consumer from") from exc
    return int(moved)
