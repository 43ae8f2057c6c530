"""Follow a tenant's event stream with plain XREAD: an observer, never a group member.

A notebook must not join the backend's consumer group (each entry goes to one member, so a
notebook would steal events from the engine). :func:`tail` reads with ``XREAD BLOCK`` from
the last id it saw, so it misses nothing between calls and takes nothing from anyone.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Collection, Iterator
from typing import Any, cast

import valkey

from execctx_nb import keys
from execctx_nb._connection._common import resolve_url, tls_failure
from execctx_nb._connection._sync import Client, blocking_twin, make_blocking_client
from execctx_nb._events._batch import Delivery, parse_delivery
from execctx_nb._events._core import (
    CONNECTION_ERRORS,
    FORBIDDEN_ERRORS,
    Backoff,
    refused,
    text,
    tls_refused,
)
from execctx_nb._events._records import EVENT_KINDS, Event
from execctx_nb._log import LoggerLike, get_logger
from execctx_nb._records import TenantOrScope, resolve_tenant
from execctx_nb.errors import InvalidArgumentError, StoreUnavailableError

__all__ = ["TailEntry", "tail"]

_STREAM_ID = re.compile(r"\$|[0-9]+(-[0-9]+)?")


class TailEntry(tuple[str, Event]):
    """One event of a tail: unpacks as ``(stream_id, event)``, as tails always yielded.

    ``idempotency_key`` is the entry's own ``idem`` field, the key the consumer groups
    handle once: two entries with the same key are one event published twice.

    >>> from execctx_nb.events import StepCommitted
    >>> entry = TailEntry("1-0", StepCommitted(execution_id="r", step_id="s"), "k" * 64)
    >>> stream_id, event = entry
    >>> entry.stream_id, entry.idempotency_key[:3]
    ('1-0', 'kkk')
    """

    idempotency_key: str

    def __new__(cls, stream_id: str, event: Event, idempotency_key: str) -> TailEntry:
        entry = super().__new__(cls, (stream_id, event))
        entry.idempotency_key = idempotency_key
        return entry

    @property
    def stream_id(self) -> str:
        """The stream entry id."""
        return self[0]

    @property
    def event(self) -> Event:
        """The event record."""
        return self[1]

    def __repr__(self) -> str:
        return f"TailEntry({self[0]!r}, {self[1].kind!r}, idempotency_key={self.idempotency_key!r})"


def _start_id(reader: Client, stream: str, from_id: str, history: int = 0) -> str:
    # "$" resolved once to a concrete id: re-sending "$" after an empty poll would skip
    # whatever arrived between two polls. Resolved before tail() returns, so an event
    # published right after the call is never missed. With ``history``, the start is the
    # entry before the last ``history`` ones (XREAD's start is exclusive).
    if from_id != "$":
        return from_id
    try:
        last = cast(list[Any], reader.xrevrange(stream, "+", "-", count=history + 1))
    except (valkey.exceptions.ResponseError, *FORBIDDEN_ERRORS) as exc:
        raise refused(exc, stream) from exc
    except CONNECTION_ERRORS as exc:
        if tls_failure(exc) is not None:
            raise tls_refused(exc, stream) from exc
        raise StoreUnavailableError(
            f"Could not start a tail of `{stream}`: {type(exc).__name__}: {exc} - check that"
            " the server runs and is reachable, then start the tail again"
        ) from exc
    if history:
        return text(last[history][0]) if len(last) > history else "0-0"
    return text(last[0][0]) if last else "0-0"


def tail(
    tenant_or_scope: TenantOrScope,
    *,
    client: Client | None = None,
    from_id: str = "$",
    block_ms: int = 1000,
    kinds: Collection[str] | None = None,
    execution_id: str | None = None,
    stop: threading.Event | None = None,
    url: str | None = None,
    logger: LoggerLike | None = None,
    history: int = 0,
) -> Iterator[TailEntry]:
    """Yield a :class:`TailEntry` per event of a tenant as they arrive, until ``stop`` is set.

    Each entry unpacks as ``(stream_id, event)`` and carries the entry's own
    ``idempotency_key``.

    Parameters
    ----------
    tenant_or_scope
        A tenant id, or an :class:`ExecutionScope` (same as ``execution_id=scope.execution_id``).
    client
        A sync client; reads run on a twin pool whose socket timeout exceeds ``block_ms``.
        Default: a blocking-read client for ``resolve_url(url)``.
    from_id
        ``"$"``: only events published from now on (resolved before ``tail`` returns);
        ``"0"``: the whole stream; or an id to continue after (exclusive), e.g. the last
        one a previous tail yielded.
    block_ms
        How long one XREAD waits; also the longest delay before ``stop`` is noticed.
    kinds, execution_id
        Only yield events of these kinds / of this execution.
    stop
        A threading.Event that ends the iteration; closing the generator works too.
    history
        With ``from_id="$"``: first yield the last ``history`` entries of the stream (before
        the filters), then follow.

    Malformed entries are skipped with a warning (the consumer groups dead-letter them).
    A server outage is logged and retried with backoff; the tail resumes where it was.

    Raises
    ------
    InvalidArgumentError
        A bad ``block_ms``, ``from_id``, kind or execution id.
    StoreUnavailableError
        ``from_id="$"`` and the server could not be reached to resolve it.

    Examples
    --------
    >>> for stream_id, event in tail("org_42", kinds={"step.committed"}):  # doctest: +SKIP
    ...     print(stream_id, event.step_id)
    """
    tenant, scoped = resolve_tenant(tenant_or_scope)
    stream = keys.events_key(tenant)
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 1:
        raise InvalidArgumentError(
            f"Invalid block_ms {block_ms!r}: expected an int >= 1 - at `block_ms`"
        )
    if not isinstance(from_id, str) or not _STREAM_ID.fullmatch(from_id):
        # Checked here: the server's own "Invalid stream ID" reads like a broken stream.
        raise InvalidArgumentError(
            f"Invalid from_id {from_id!r}: expected '$', '0' or a stream id such as"
            " '1718000000000-0' (one `tail` yielded) - at `from_id`"
        )
    if isinstance(history, bool) or not isinstance(history, int) or not 0 <= history <= 10_000:
        raise InvalidArgumentError(
            f"Invalid history {history!r}: expected an int from 0 to 10,000 - at `history`"
        )
    wanted = None if kinds is None else frozenset(kinds)
    if wanted is not None and not wanted <= set(EVENT_KINDS):
        raise InvalidArgumentError(
            f"Unknown event kind(s) {sorted(wanted - set(EVENT_KINDS))}: expected some"
            f" of {', '.join(EVENT_KINDS)} - at `kinds`"
        )
    if execution_id is not None:
        keys.validate_id(execution_id, kind="execution id", where="execution_id")
    only = execution_id or scoped
    if client is None:
        # XREAD is a plain read: retrying it after a lost reply is harmless.
        reader = make_blocking_client(resolve_url(url), block_ms=block_ms, retries=2)
    else:
        reader = blocking_twin(client, block_ms)
    try:
        start = _start_id(reader, stream, from_id, history)
    except BaseException:
        reader.close()  # type: ignore[no-untyped-call]
        raise
    return _follow(
        reader,
        stream,
        tenant,
        start,
        block_ms=block_ms,
        wanted=wanted,
        only=only,
        stop=stop if stop is not None else threading.Event(),
        log=get_logger(logger),
    )


def _follow(
    reader: Client,
    stream: str,
    tenant: str,
    last: str,
    *,
    block_ms: int,
    wanted: frozenset[str] | None,
    only: str | None,
    stop: threading.Event,
    log: LoggerLike,
) -> Iterator[TailEntry]:
    backoff = Backoff()
    down_since: float | None = None
    try:
        while not stop.is_set():
            try:
                reply = cast(
                    list[Any] | None, reader.xread({stream: last}, count=500, block=block_ms)
                )
            except valkey.exceptions.ResponseError as exc:
                raise refused(exc, stream) from exc
            except FORBIDDEN_ERRORS as exc:  # a wrong password is no outage: say so
                raise refused(exc, stream) from exc
            except CONNECTION_ERRORS as exc:
                if tls_failure(exc) is not None:  # no outage: a certificate problem
                    raise tls_refused(exc, stream) from exc
                delay = backoff.next()
                down_since = down_since or time.monotonic()
                log.warning(
                    "Event tail of `%s`: server unavailable (%s: %s); retrying in %.2f s"
                    " (failure %d)",
                    stream,
                    type(exc).__name__,
                    exc,
                    delay,
                    backoff.failures,
                )
                stop.wait(delay)
                continue
            if down_since is not None:
                log.info(
                    "Event tail of `%s`: server back after %.1f s; resuming after %s",
                    stream,
                    time.monotonic() - down_since,
                    last,
                )
                down_since = None
                backoff.reset()
            for _, entries in reply or []:
                for raw_id, fields in entries:
                    last = text(raw_id)
                    parsed = parse_delivery(Delivery(last, fields), stream, tenant)
                    if isinstance(parsed, str):
                        log.warning(
                            "Event tail of `%s`: skipped entry %s: %s", stream, last, parsed
                        )
                        continue
                    if (wanted is None or parsed.kind in wanted) and (
                        only is None or parsed.event.execution_id == only
                    ):
                        yield TailEntry(last, parsed.event, parsed.idem)
    finally:
        reader.close()  # type: ignore[no-untyped-call]
