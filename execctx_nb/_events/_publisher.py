"""Publishing execution events to a tenant's stream ``t:{tenantId}:events``.

Each event becomes one stream entry with three fields (see docs/wire-format.md, "Event
stream"): ``kind``, ``idem`` (the idempotency key) and ``event`` (the event's wire JSON).

A plain ``XADD *`` is not idempotent: if the connection breaks after the command was sent,
nobody knows whether it landed, and a retry may add it twice. So the publisher sends every
XADD exactly once and raises :class:`~execctx_nb.errors.StoreUnavailableError` when the
outcome is unknown; the caller may publish again with the same idempotency key, and the
receiving side (:class:`~execctx_nb.ExecutionEventSubscriber`) drops the duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import valkey
import valkey.cluster

from execctx_nb import keys
from execctx_nb._connection._common import (
    DEFAULT_TIMEOUT,
    tls_failure,
    validate_min_replicas,
    wait_budget_ms,
)
from execctx_nb._connection._sync import Client
from execctx_nb._events._batch import MAX_EVENT_BYTES
from execctx_nb._events._core import CONNECTION_ERRORS, FORBIDDEN_ERRORS, refused, tls_refused
from execctx_nb._events._records import (
    Event,
    encode_event,
    event_from_dict,
)
from execctx_nb._events._retention import TrimResult, trim_events
from execctx_nb._idempotency import event_idempotency_key
from execctx_nb._log import LoggerLike, get_logger
from execctx_nb._records import TenantOrScope, resolve_tenant
from execctx_nb.errors import (
    EventStreamError,
    InvalidArgumentError,
    InvalidKeyError,
    NotDurableError,
    StoreUnavailableError,
)

__all__ = [
    "ENTRY_FIELDS",
    "ExecutionEventPublisher",
    "entry_fields",
]

ENTRY_FIELDS: tuple[str, str, str] = ("kind", "idem", "event")
"""The fields of every event stream entry, in the order they are written."""

# Sending many entries in one round trip; bounded so one reply buffer stays small.
_CHUNK = 1000


def entry_fields(
    event: Event | dict[str, Any], idempotency_key: str | None = None
) -> dict[str, bytes | str]:
    """The stream entry fields of one event: ``{"kind", "idem", "event"}``."""
    record = event_from_dict(event)
    idem = event_idempotency_key(record) if idempotency_key is None else idempotency_key
    keys.validate_id(idem, kind="idempotency key", where="idempotency_key")
    return {"kind": record.kind, "idem": idem, "event": encode_event(record)}


class ExecutionEventPublisher:
    """Publish execution events of a tenant to ``t:{tenantId}:events``.

    Parameters
    ----------
    client
        A sync valkey-py client. Default: ``make_client(resolve_url(url), retries=0)``, which
        the publisher then owns (:meth:`close`). Whatever the client's retry policy, each
        XADD is sent at most once; only connecting is retried.
    url
        Server URL used when ``client`` is None (else ``$VALKEY_URL``, else the embedded server).
    min_replicas
        Each publish returns only once this many replicas confirmed it (``WAIT``); else it
        raises NotDurableError (publishing again is safe).
    timeout
        Seconds a publish may take (the client made from ``url``, and the WAIT).
    logger
        Any logger with debug/info/warning/error (default: the ``execctx_nb`` logger).

    Examples
    --------
    >>> from execctx_nb.events import StepCommitted
    >>> with ExecutionEventPublisher() as pub:                          # doctest: +SKIP
    ...     pub.publish("org_42", StepCommitted(execution_id="run-1", step_id="clean"))
    '1764077041000-0'
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        url: str | None = None,
        logger: LoggerLike | None = None,
        min_replicas: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._owned = client is None
        if client is None:
            from execctx_nb._connection import make_client, resolve_url

            client = make_client(resolve_url(url), retries=0, timeout=timeout)
        self.client = client
        self._log = get_logger(logger)
        self.min_replicas = validate_min_replicas(min_replicas)
        self._wait_ms = wait_budget_ms(timeout, 0)

    # -- publishing -------------------------------------------------------------------------
    def publish(
        self,
        tenant_or_scope: TenantOrScope,
        event: Event | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Append one event; return its stream id.

        Parameters
        ----------
        tenant_or_scope
            A tenant id, or an :class:`ExecutionScope` whose execution id the event must carry
            (a wire dict without ``executionId`` gets it from the scope).
        event
            An event record or its camelCase wire dict.
        idempotency_key
            Overrides :func:`event_idempotency_key` (1 to 200 characters, no ``:`` ``/``
            whitespace or control characters).

        Raises
        ------
        StoreUnavailableError
            The server could not be reached, or the reply was lost: the event may or may not
            be in the stream. Publishing it again with the same key is safe.
        EventStreamError
            The server refused the XADD (the key is not a stream, maxmemory, ACL).
        """
        return self._publish(
            tenant_or_scope,
            [event],
            None if idempotency_key is None else [idempotency_key],
            single=True,
        )[0]

    def publish_many(
        self,
        tenant_or_scope: TenantOrScope,
        events: Iterable[Event | dict[str, Any]],
        *,
        idempotency_keys: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Append events in order, pipelined (one round trip per 1,000); return their stream ids.

        ``idempotency_keys``, when given, has one entry per event (None: the default key).
        On :class:`StoreUnavailableError` a prefix of the events may have landed; publishing
        all of them again is safe, the receiving side drops the duplicates.
        """
        return self._publish(tenant_or_scope, events, idempotency_keys, single=False)

    def _publish(
        self,
        tenant_or_scope: TenantOrScope,
        events: Iterable[Event | dict[str, Any]],
        idempotency_keys: Sequence[str | None] | None,
        *,
        single: bool,
    ) -> list[str]:
        # ``single``: called by publish, so errors name its arguments (`idempotency_key`,
        # `event`), not publish_many's (`idempotency_keys[0]`, `events[0]`).
        tenant, execution = resolve_tenant(tenant_or_scope)
        stream = keys.events_key(tenant)
        items = list(events)
        if idempotency_keys is not None and len(idempotency_keys) != len(items):
            raise InvalidArgumentError(
                f"Expected one idempotency key per event ({len(items)}), got {len(idempotency_keys)}"
                " - at `idempotency_keys`; pass None for events that use the default key"
            )
        commands: list[tuple[Any, ...]] = []
        for index, item in enumerate(items):
            if execution is not None and isinstance(item, dict) and "executionId" not in item:
                record = event_from_dict({**item, "executionId": execution})
            else:
                record = event_from_dict(item)
            if execution is not None and record.execution_id != execution:
                where_event = "event" if single else f"events[{index}]"
                raise InvalidKeyError(
                    f"Event executionId {record.execution_id!r} does not match the scope's"
                    f" {execution!r} - at `{where_event}.executionId`; publish it with its own"
                    " scope or with the tenant id"
                )
            given = None if idempotency_keys is None else idempotency_keys[index]
            if given is None:
                idem = event_idempotency_key(record)  # 64 hex characters: valid by construction
            else:
                where = "idempotency_key" if single else f"idempotency_keys[{index}]"
                idem = keys.validate_id(given, kind="idempotency key", where=where)
            payload = encode_event(record)
            if len(payload) > MAX_EVENT_BYTES:
                where_event = "event" if single else f"events[{index}]"
                raise InvalidArgumentError(
                    f"Event of {len(payload)} bytes: expected at most {MAX_EVENT_BYTES} (consumers"
                    f" dead-letter larger ones) - at `{where_event}`; keep large payloads in step"
                    " data and reference them from the event"
                )
            commands.append(
                (
                    "XADD",
                    stream,
                    "*",
                    "kind",
                    record.kind,
                    "idem",
                    idem,
                    "event",
                    payload,
                )
            )
        ids: list[str] = []
        for start in range(0, len(commands), _CHUNK):
            ids.extend(
                self._send_once(
                    commands[start : start + _CHUNK], stream, done=len(ids), total=len(commands)
                )
            )
        return ids

    def _send_once(
        self, commands: list[tuple[Any, ...]], stream: str, *, done: int, total: int
    ) -> list[str]:
        # valkey-py retries a whole command (or pipeline) after a broken connection, which
        # would duplicate an XADD that landed. So: connect through the pool (its retry is safe,
        # nothing is sent yet), then send and read exactly once.
        pool = self._pool(stream)
        try:
            conn = pool.get_connection("XADD")
        except FORBIDDEN_ERRORS as exc:
            raise refused(exc, stream) from exc
        except CONNECTION_ERRORS as exc:
            if tls_failure(exc) is not None:
                raise tls_refused(exc, stream) from exc
            raise StoreUnavailableError(
                f"Could not connect to publish {len(commands)} event(s) to `{stream}`: {exc} -"
                f" nothing of this batch was sent ({done} of {total} published before); check"
                " the server and publish again"
            ) from exc
        if self.min_replicas:  # on the same connection, after the XADDs
            commands = [*commands, ("WAIT", self.min_replicas, self._wait_ms)]
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except valkey.exceptions.ResponseError as exc:
                    replies.append(exc)
        except CONNECTION_ERRORS as exc:
            conn.disconnect()
            raise StoreUnavailableError(
                f"Lost the connection while publishing {len(commands)} event(s) to `{stream}`:"
                f" {exc} - they may or may not have landed ({done} of {total} confirmed before);"
                " publish them again with the same idempotency keys, the subscribers drop"
                " duplicates"
            ) from exc
        finally:
            pool.release(conn)
        if self.min_replicas:
            confirmed = replies.pop()
            if isinstance(confirmed, int) and confirmed < self.min_replicas:
                raise NotDurableError(
                    f"Published {len(replies)} event(s) to `{stream}`, but only {confirmed} of"
                    f" the {self.min_replicas} replicas required confirmed them within"
                    f" {self._wait_ms} ms: not confirmed durable - publish them again with the"
                    " same idempotency keys (the subscribers drop duplicates)"
                )
        ids: list[str] = []
        for reply in replies:
            if isinstance(reply, FORBIDDEN_ERRORS):
                raise refused(reply, stream) from reply
            if isinstance(reply, Exception):
                raise EventStreamError(
                    f"The server refused XADD to `{stream}`: {reply} - at event {done + len(ids)};"
                    " check that the key holds a stream and the server's maxmemory"
                ) from reply
            ids.append(reply.decode() if isinstance(reply, bytes) else str(reply))
        return ids

    def _pool(self, stream: str) -> Any:
        # A cluster client routes by key: send to the pool of the node that holds the stream.
        client: Any = cast(Any, self.client)  # valkey-py's cluster client is partly unannotated
        if isinstance(self.client, valkey.cluster.ValkeyCluster):
            return client.get_node_from_key(stream).valkey_connection.connection_pool
        return client.connection_pool

    # -- retention ----------------------------------------------------------------------------
    def trim(
        self, tenant: str, *, maxlen: int | None = None, minid: str | None = None
    ) -> TrimResult:
        """Trim the tenant's stream to ``maxlen`` entries or ids >= ``minid`` (exactly one).

        Never removes an entry still pending for a consumer group or not yet read by one:
        the trim then stops at the oldest such entry, and ``held_back_by`` names the group.

        Returns
        -------
        TrimResult
            ``(removed, minid, held_back_by)``.
        """
        return trim_events(self.client, tenant, maxlen=maxlen, minid=minid)

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client if the publisher created it."""
        if self._owned:
            client: Any = self.client
            client.close()

    def __enter__(self) -> ExecutionEventPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "ExecutionEventPublisher()"
