"""What happens to each stream entry a subscriber reads: parsing, dedup, leases, dead letters.

No I/O: the subscriber (one source, :mod:`execctx_nb._events._async_subscriber`, and its
generated sync twin) sends the calls these plans describe.

Effectively-once per group rests on one key per (tenant, group, idempotency key)
(:func:`execctx_nb.keys.dedup_key`) that goes through three states:

- absent: nobody handled the event;
- ``i:{consumer}:{nonce}``: a lease (``SET NX PX``) taken *before* the handlers run, so a
  duplicate entry delivered to another consumer at the same time, or a reclaimed entry whose
  first handler still runs, is not handled twice. New entries are read and leased in one
  atomic server call (:data:`~execctx_nb._events._scripts.READ_LUA`); entries from a blocking
  read or XAUTOCLAIM are leased by a second call (``ACQUIRE_LUA``);
- ``d:{streamId}``: done, written with a TTL *after* the handler returned, in the same Lua
  script that acknowledges the entry, so "done" and "acked" never disagree.

A handler that raised leaves its entry pending and releases the lease; the entry comes back
through XAUTOCLAIM after ``min_idle_ms``. A consumer killed after its handlers returned but
before the commit script ran leaves leases that expire after ``lease_ms``: those events are
handled again, and that in-flight batch is the only repeat there can be.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from execctx_nb import keys
from execctx_nb._events._core import (
    EventMeta,
    SubscriberConfig,
    SubscriberStats,
    text,
)
from execctx_nb._events._records import EVENT_KINDS, Event
from execctx_nb._events._scripts import SKIPPED
from execctx_nb.errors import InvalidKeyError

__all__ = [
    "MAX_EVENT_BYTES",
    "Batch",
    "native_commit",
    "Delivery",
    "dead_letter_fields",
    "entry_fields",
    "parse_delivery",
    "parse_xautoclaim",
]

# A prebuilt decoder: ``msgspec.json.decode(b, type=Event)`` (as decode_event does) rebuilds
# the union's type info per call and is ~3x slower, the largest cost of consuming an event.
_EVENT_DECODER: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
# The entry's kind field as read (bytes, or str from decode_responses clients) -> the kind
# and its record class (comparing classes is cheaper than the records' ``kind`` property).
_KIND_CLASSES: dict[Any, tuple[str, type]] = {}
for _cls in typing.get_args(Event):
    _tag = str(_cls.__struct_config__.tag)
    _KIND_CLASSES[_tag] = _KIND_CLASSES[_tag.encode()] = (_tag, _cls)
_NO_KIND: tuple[str, type | None] = ("", None)


@dataclass(slots=True)
class Delivery:
    """One entry as read or claimed, with its delivery count.

    ``fields`` is the entry's field dict, (entries read by :data:`READ_LUA`) that
    script's reply row, or (entries read by :meth:`Batch.add_new`) ``(kind, idem, event)``;
    :func:`entry_fields` turns any of them into the dict.
    """

    stream_id: str
    fields: dict[Any, Any] | list[Any] | tuple[Any, Any, Any]
    deliveries: int = 1


def entry_fields(d: Delivery) -> dict[Any, Any]:
    """The original fields of an entry (only needed for dead letters: built lazily)."""
    f = d.fields
    if isinstance(f, dict):
        return f
    if isinstance(f, tuple):  # (kind, idem, event): read by add_new
        return {b"kind": f[0], b"idem": f[1], b"event": f[2]}
    if len(f) == 3:  # {id, SKIPPED, fields}
        flat = f[2]
    elif len(f) == 6:  # {id, old, kind, idem, event, fields}
        flat = f[5]
    else:
        return {b"kind": f[2], b"idem": f[3], b"event": f[4]}
    return dict(zip(flat[::2], flat[1::2], strict=True))


# Idempotency keys every rule of keys.validate_id accepts (but "." and ".."): checked with
# one regex on the hot path, anything else goes through validate_id.
_PLAIN_ID = re.compile(r"[0-9A-Za-z_.-]{1,200}")
_UNKNOWN = object()  # verdict not known yet: the key still has to be leased


class _Parsed:
    __slots__ = ("delivery", "event", "followers", "idem", "kind")

    def __init__(self, delivery: Delivery, kind: str, idem: str, event: Event) -> None:
        self.delivery, self.kind, self.idem, self.event = delivery, kind, idem, event
        self.followers: list[Delivery] = []


def _field(fields: dict[Any, Any], name: bytes) -> Any:
    value = fields.get(name)
    return fields.get(name.decode()) if value is None else value  # decode_responses=True clients


# What an entry's event field may hold: deeper or larger values are someone's attack or bug,
# and are dead-lettered (msgspec recurses per level; a huge field costs every consumer).
MAX_EVENT_BYTES = 1024 * 1024
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeError)


def _decode(raw: Any, stream: str, stream_id: str) -> Event | str:
    where = f"at {stream} {stream_id}"
    if not isinstance(raw, bytes | str):
        return f"malformed entry: event field of type {type(raw).__name__} ({where})"
    if len(raw) > MAX_EVENT_BYTES:
        return (
            f"malformed entry: event field of {len(raw)} bytes ({where}): expected at most"
            f" {MAX_EVENT_BYTES}; publish large payloads as step data, not events"
        )
    try:
        return _EVENT_DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        return f"malformed entry: Invalid execution event ({where}): {exc}"
    except msgspec.DecodeError as exc:
        return f"malformed entry: Malformed JSON for an execution event ({where}): {exc}"
    except RecursionError:
        return f"malformed entry: execution event nested too deeply to decode ({where})"
    except UnicodeError as exc:
        return f"malformed entry: execution event is not valid Unicode ({where}): {exc}"


def _bad_idem(idem: str, stream: str, stream_id: str) -> str:
    try:  # built only on failure: the hot path validates without formatting a location
        keys.validate_id(idem, kind="idempotency key", where=f"{stream} {stream_id} idem")
    except InvalidKeyError as exc:
        return f"malformed entry: {exc}"
    return "malformed entry: invalid idempotency key"


def _kind_mismatch(kind: str, event: Event) -> str:
    return (
        f"malformed entry: field kind {kind!r} does not match the event's kind"
        f" {event.kind!r} (known kinds: {', '.join(EVENT_KINDS)})"
    )


def parse_delivery(
    d: Delivery, stream: str, tenant: str, group: str | None = None
) -> _Parsed | str:
    """The parsed entry, or why it is malformed (it then goes to the dead-letter stream).

    ``d.fields`` must be a dict here. ``tenant`` and ``group`` are kept for callers; the
    entry's ``idem`` is always validated.
    """
    fields = d.fields
    assert isinstance(fields, dict)
    kind, idem, raw = _field(fields, b"kind"), _field(fields, b"idem"), _field(fields, b"event")
    if kind is None or idem is None or raw is None:
        missing = [n for n, v in (("kind", kind), ("idem", idem), ("event", raw)) if v is None]
        return f"malformed entry: missing field(s) {', '.join(missing)}; expected kind, idem, event"
    kind, idem = text(kind), text(idem)
    try:
        keys.validate_id(idem)
    except InvalidKeyError:
        return _bad_idem(idem, stream, d.stream_id)
    event = _decode(raw, stream, d.stream_id)
    if isinstance(event, str):
        return event
    if kind != event.kind:
        return _kind_mismatch(kind, event)
    return _Parsed(d, kind, idem, event)


def dead_letter_fields(d: Delivery, error: str, cfg: SubscriberConfig) -> list[str]:
    """Field/value list of a dead-letter entry (docs/wire-format.md, "Dead letters")."""
    original = {text(k): text(v) for k, v in entry_fields(d).items()}
    now = msgspec.to_builtins(dt.datetime.now(dt.UTC))
    return [
        "origId",
        d.stream_id,
        "fields",
        json.dumps(original, ensure_ascii=False, sort_keys=True),
        "error",
        error,
        "deliveries",
        str(d.deliveries),
        "consumer",
        cfg.consumer,
        "group",
        cfg.group,
        "ts",
        str(now),
    ]


class Batch:
    """The plan for one batch of deliveries; the twins do the I/O it asks for.

    Order: :meth:`add_read` (a :data:`READ_LUA` reply: entries already leased) and/or
    :meth:`add` (entries from XREADGROUP BLOCK or XAUTOCLAIM) -> :meth:`acquire_call` and
    :meth:`apply_acquire` when it is not None -> :meth:`plan` -> run handlers on :attr:`run`,
    reporting :meth:`succeeded` / :meth:`failed` / :meth:`not_run` -> :meth:`commit_call`
    and :attr:`dead`.
    """

    def __init__(
        self,
        *,
        tenant: str,
        execution: str | None,
        cfg: SubscriberConfig,
        token: str,
        stats: SubscriberStats,
        last_errors: dict[str, str],
    ) -> None:
        self.tenant, self.execution, self.cfg, self.token, self.stats = (
            tenant,
            execution,
            cfg,
            token,
            stats,
        )
        self.last_errors = last_errors
        self.stream = keys.events_key(tenant)
        self.prefix = keys.dedup_prefix(tenant, cfg.group)
        self.dead: list[tuple[Delivery, str, str | None]] = []  # (entry, error, dedup key)
        self.ack: list[str] = []
        self.leaders: dict[str, _Parsed] = {}
        # idem -> previous value of its key when we leased it (None: the lease is ours).
        self.verdicts: dict[str, Any] = {}
        self.run: list[tuple[_Parsed, EventMeta]] = []
        self.done: list[_Parsed] = []
        self.release: list[str] = []  # idempotency keys whose lease we give back
        self.busy: list[Delivery] = []

    def add_read(self, reply: Sequence[Any]) -> None:
        """Entries of a :data:`READ_LUA` reply (read and leased in one call)."""
        # The hot path of consuming: one idem check and one decode per event.
        decode, kinds, verdicts, stream = (
            _EVENT_DECODER.decode,
            _KIND_CLASSES,
            self.verdicts,
            self.stream,
        )
        validate, plain = keys.validate_id, _PLAIN_ID.fullmatch
        execution, leaders = self.execution, self.leaders
        slow: list[Delivery] = []
        bad: set[str] = set()  # invalid idempotency keys: leased by the script, given back
        for row in reply:
            sid = row[0]
            sid = sid.decode() if type(sid) is bytes else sid
            old = row[1]
            if old == SKIPPED:
                flat = row[2]
                slow.append(Delivery(sid, dict(zip(flat[::2], flat[1::2], strict=True))))
                continue
            idem = text(row[3])
            if idem not in verdicts:
                verdicts[idem] = old  # the first entry with this key took (or found) its lease
                try:
                    if plain(idem) is None or idem in (".", ".."):
                        validate(idem)
                except InvalidKeyError:
                    bad.add(idem)
                    self.dead.append((Delivery(sid, row), _bad_idem(idem, stream, sid), None))
                    continue
            elif idem in bad:
                self.dead.append(
                    (
                        Delivery(sid, row),
                        f"malformed entry: invalid idempotency key"
                        f" {idem!r} (see the entry before it)",
                        None,
                    )
                )
                continue
            d = Delivery(sid, row)
            raw = row[4]
            try:
                if len(raw) > MAX_EVENT_BYTES:
                    raise ValueError(raw)
                event = decode(raw)
            except (*_DECODE_ERRORS, ValueError, TypeError):
                self.dead.append((d, cast(str, _decode(raw, stream, sid)), None))
                continue
            kind, cls = kinds.get(row[2], _NO_KIND)
            if cls is not type(event):
                self.dead.append((d, _kind_mismatch(text(row[2]), event), None))
                continue
            if execution is None and idem not in leaders:
                leaders[idem] = _Parsed(d, kind, idem, event)
            else:
                self._place(_Parsed(d, kind, idem, event))
        if slow:
            self.add(slow)

    def add_new(self, entries: Sequence[Any]) -> None:
        """New entries (delivered once, not leased yet) as the server sent them, unparsed by
        the client library: ``[id, [field, value, ...]]`` each. The hot path of consuming.

        Per entry: three field checks, the idempotency key checked by keys.validate_id
        (whose cache of valid ids makes a repeat a set lookup) and one decode. An entry off
        the publisher's shape (``kind, idem, event`` in that order) takes :meth:`add`, which
        names what is wrong.
        """
        decode, kinds, execution = _EVENT_DECODER.decode, _KIND_CLASSES, self.execution
        validate, leaders, place = keys.validate_id, self.leaders, self._place
        add = self.add  # off the common shape: parsed in place, so stream order holds
        for entry_id, f in entries:
            sid = entry_id.decode() if type(entry_id) is bytes else text(entry_id)
            kind, cls = kinds.get(f[1], _NO_KIND) if len(f) == 6 else _NO_KIND
            if cls is None or f[0] != b"kind" or f[2] != b"idem" or f[4] != b"event":
                add([Delivery(sid, dict(zip(f[::2], f[1::2], strict=True)))])
                continue
            raw = f[5]
            d = Delivery(sid, (f[1], f[3], raw))
            try:
                idem = validate(f[3].decode())
                if len(raw) > MAX_EVENT_BYTES:
                    raise ValueError(raw)
                event = decode(raw)
            except (*_DECODE_ERRORS, ValueError, TypeError, AttributeError, InvalidKeyError):
                add([Delivery(sid, entry_fields(d))])  # parse_delivery names the fault
                continue
            if cls is not type(event):
                add([Delivery(sid, entry_fields(d))])
                continue
            if execution is None and idem not in leaders:
                leaders[idem] = _Parsed(d, kind, idem, event)
            else:
                place(_Parsed(d, kind, idem, event))

    def add(self, deliveries: Sequence[Delivery]) -> None:
        """Entries read without a lease (blocking read, XAUTOCLAIM): parsed here."""
        cfg = self.cfg
        for d in deliveries:
            parsed = parse_delivery(d, self.stream, self.tenant, cfg.group)
            if isinstance(parsed, str):
                self.dead.append((d, parsed, None))
            elif d.deliveries > cfg.max_deliveries:
                last = self.last_errors.pop(
                    d.stream_id, "unknown (an earlier consumer did not finish)"
                )
                self.dead.append(
                    (
                        d,
                        f"delivered {d.deliveries} times, more than max_deliveries="
                        f"{cfg.max_deliveries}; last error: {last}",
                        None,
                    )
                )
            else:
                self._place(parsed)

    def _place(self, parsed: _Parsed) -> None:
        if self.execution is not None and parsed.event.execution_id != self.execution:
            self.ack.append(parsed.delivery.stream_id)
            self.stats.skipped += 1
        elif parsed.idem in self.leaders:
            self.leaders[parsed.idem].followers.append(parsed.delivery)
        else:
            self.leaders[parsed.idem] = parsed

    def acquire_call(self) -> list[str | int] | None:
        """ARGV of :data:`ACQUIRE_LUA` for leaders not leased yet (None: nothing to lease)."""
        todo = [idem for idem in self.leaders if idem not in self.verdicts]
        if not todo:
            return None
        return [self.token, self.cfg.lease_ms, self.prefix, *todo]

    def apply_acquire(self, previous: Sequence[bytes | str | None]) -> None:
        """Record the :data:`ACQUIRE_LUA` reply (previous value per key)."""
        todo = [idem for idem in self.leaders if idem not in self.verdicts]
        self.verdicts.update(zip(todo, previous, strict=True))

    def plan(self) -> None:
        """Sort leaders into run / duplicate / busy; give back leases nobody will use."""
        stats, cfg, tenant = self.stats, self.cfg, self.tenant
        for idem, parsed in self.leaders.items():
            old = self.verdicts[idem]
            d = parsed.delivery
            if old is None:
                meta = EventMeta(
                    stream_id=d.stream_id,
                    idempotency_key=idem,
                    delivery_count=d.deliveries,
                    tenant_id=tenant,
                    group=cfg.group,
                    consumer=cfg.consumer,
                    kind=parsed.kind,
                )
                self.run.append((parsed, meta))
            elif (old[:2] if type(old) is bytes else old[:2].encode()) == b"d:":
                self.ack.append(d.stream_id)
                self.ack.extend(f.stream_id for f in parsed.followers)
                stats.duplicates += 1 + len(parsed.followers)
            else:  # another consumer's lease: it may still fail, so leave these pending
                self.busy.extend([d, *parsed.followers])
                stats.busy += 1 + len(parsed.followers)
        # Leases taken by READ_LUA for entries that turned out malformed or skipped.
        self.release.extend(
            idem for idem, old in self.verdicts.items() if old is None and idem not in self.leaders
        )

    def succeeded(self, parsed: _Parsed) -> None:
        self.done.append(parsed)
        self.stats.handled += 1
        if parsed.followers:
            self.stats.duplicates += len(parsed.followers)

    def failed(self, parsed: _Parsed, exc: BaseException, last_errors: dict[str, str]) -> None:
        self.stats.failed += 1
        error = f"{type(exc).__name__}: {exc}"
        d = parsed.delivery
        if d.deliveries >= self.cfg.max_deliveries:
            self.dead.append(
                (
                    d,
                    f"handler raised on delivery {d.deliveries} of max_deliveries="
                    f"{self.cfg.max_deliveries}: {error}",
                    self.prefix + parsed.idem,
                )
            )
        else:
            self.release.append(parsed.idem)
            if len(last_errors) > 10_000:  # bounded: only a hint for the dead-letter entry
                last_errors.clear()
            last_errors[d.stream_id] = error

    def not_run(self, parsed: _Parsed) -> None:
        """A leader whose handler never ran (shutdown by an exception): release its lease."""
        self.release.append(parsed.idem)

    def commit_call(self) -> tuple[list[str], list[str | int]] | None:
        """KEYS and ARGV of :data:`COMMIT_LUA`, or None when there is nothing to write."""
        if not (self.done or self.release or self.busy or self.ack):
            return None
        argv: list[str | int] = [
            self.cfg.group,
            self.cfg.dedup_ttl_s,
            self.token,
            self.prefix,
            self.cfg.consumer,
            len(self.done),
            len(self.release),
            len(self.busy),
        ]
        for parsed in self.done:
            argv.append(parsed.idem)
            argv.append(parsed.delivery.stream_id)
        argv.extend(self.release)
        for d in self.busy:
            argv.extend((d.stream_id, max(0, d.deliveries - 1)))
        argv.extend(self.ack)
        for parsed in self.done:
            if parsed.followers:
                argv.extend(f.stream_id for f in parsed.followers)
        return [self.stream], argv

    def dead_letter_call(
        self, d: Delivery, error: str, dedup: str | None
    ) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of :data:`DEAD_LETTER_LUA` for one entry."""
        cmd_keys = [self.stream, keys.dlq_key(self.tenant)] + ([dedup] if dedup else [])
        return cmd_keys, [
            self.cfg.group,
            d.stream_id,
            self.token,
            *dead_letter_fields(d, error, self.cfg),
        ]


def native_commit(argv: list[Any]) -> tuple[list[Any], list[Any]] | None:
    """``(done-mark key/value pairs, ids to acknowledge)`` of a :data:`COMMIT_LUA` argument
    list that only marks done and acknowledges (the common case), or None when it also
    releases leases or resets busy entries (that takes the script)."""
    ndone, nrelease, nbusy = argv[5], argv[6], argv[7]
    if nrelease or nbusy:
        return None
    prefix, kv, ids = argv[3], [], []
    for i in range(8, 8 + 2 * ndone, 2):
        sid = argv[i + 1]
        kv.append(prefix + argv[i])
        kv.append("d:" + sid)
        ids.append(sid)
    ids.extend(argv[8 + 2 * ndone :])
    return kv, ids


def parse_xautoclaim(reply: Any) -> tuple[str, list[Delivery], list[str]]:
    """``(next cursor, claimed entries, ids deleted from the stream)`` of an XAUTOCLAIM reply."""
    cursor = text(reply[0])
    entries = [Delivery(text(i), dict(f or {})) for i, f in reply[1] if i is not None]
    deleted = [text(i) for i in reply[2]] if len(reply) > 2 else []
    return cursor, entries, deleted
