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
from execctx_nb._log import LoggerLike, get_logger
from execctx_nb._publisher import TenantOrScope, resolve_tenant
from execctx_nb._stream_core import (
    CONNECTION_ERRORS,
    Backoff,
    Delivery,
    parse_delivery,
    refused,
    text,
)
from execctx_nb._subscriber import blocking_twin
from execctx_nb.events import EVENT_KINDS, Event

__all__ = ["tail"]

_STREAM_ID = re.compile(r"\$|[0-9]+(-[0-9]+)?")


def _last_id(client: valkey.Valkey, stream: str) -> str:
    # "$" resolved once to a concrete id: re-sending "$" after an empty poll would skip
    # whatever arrived between two polls.
    last = cast(list[Any], client.xrevrange(stream, "+", "-", count=1))
    return text(last[0][0]) if last else "0-0"


def tail(
    tenant_or_scope: TenantOrScope,
    *,
    client: valkey.Valkey | None = None,
    from_id: str = "$",
    block_ms: int = 1000,
    kinds: Collection[str] | None = None,
    execution_id: str | None = None,
    stop: threading.Event | None = None,
    url: str | None = None,
    logger: LoggerLike | None = None,
) -> Iterator[tuple[str, Event]]:
    """Yield ``(stream_id, event)`` for events of a tenant as they arrive, until ``stop`` is set.

    Parameters
    ----------
    tenant_or_scope
        A tenant id, or an :class:`ExecutionScope` (same as ``execution_id=scope.execution_id``).
    client
        A sync client; reads run on a twin pool whose socket timeout exceeds ``block_ms``.
        Default: a blocking-read client for ``resolve_url(url)``.
    from_id
        ``"$"``: only events published from now on; ``"0"``: the whole stream; or an id to
        continue after (exclusive), e.g. the last one a previous tail yielded.
    block_ms
        How long one XREAD waits; also the longest delay before ``stop`` is noticed.
    kinds, execution_id
        Only yield events of these kinds / of this execution.
    stop
        A threading.Event that ends the iteration; closing the generator works too.

    Malformed entries are skipped with a warning (the consumer groups dead-letter them).
    A server outage is logged and retried with backoff; the tail resumes where it was.

    Examples
    --------
    >>> for stream_id, event in tail("org_42", kinds={"step.committed"}):  # doctest: +SKIP
    ...     print(stream_id, event.step_id)
    """
    tenant, scoped = resolve_tenant(tenant_or_scope)
    stream = keys.events_key(tenant)
    if isinstance(block_ms, bool) or not isinstance(block_ms, int) or block_ms < 1:
        raise ValueError(f"Invalid block_ms {block_ms!r}: expected an int >= 1 - at `block_ms`")
    if not isinstance(from_id, str) or not _STREAM_ID.fullmatch(from_id):
        # Checked here: the server's own "Invalid stream ID" reads like a broken stream.
        raise ValueError(
            f"Invalid from_id {from_id!r}: expected '$', '0' or a stream id such as"
            " '1718000000000-0' (one `tail` yielded) - at `from_id`"
        )
    wanted = None if kinds is None else frozenset(kinds)
    if wanted is not None and not wanted <= set(EVENT_KINDS):
        raise ValueError(
            f"Unknown event kind(s) {sorted(wanted - set(EVENT_KINDS))}: expected some"
            f" of {', '.join(EVENT_KINDS)} - at `kinds`"
        )
    if execution_id is not None:
        keys.validate_id(execution_id, kind="execution id", where="execution_id")
    only = execution_id or scoped
    log = get_logger(logger)
    if client is None:
        from execctx_nb._connection import make_blocking_client, resolve_url

        # XREAD is a plain read: retrying it after a lost reply is harmless.
        reader = make_blocking_client(resolve_url(url), block_ms=block_ms, retries=2)
    else:
        reader = blocking_twin(client, block_ms)
    stop = stop if stop is not None else threading.Event()
    backoff = Backoff()
    down_since: float | None = None
    last = from_id
    try:
        while not stop.is_set():
            try:
                if last == "$":
                    last = _last_id(reader, stream)
                reply = cast(
                    list[Any] | None, reader.xread({stream: last}, count=500, block=block_ms)
                )
            except valkey.exceptions.ResponseError as exc:
                raise refused(exc, stream) from exc
            except CONNECTION_ERRORS as exc:
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
                        yield last, parsed.event
    finally:
        reader.close()  # type: ignore[no-untyped-call]
