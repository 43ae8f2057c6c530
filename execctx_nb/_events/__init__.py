"""The event layer: execution events on a tenant's Valkey stream.

- :mod:`._records`: the event kinds (a tagged union) and their wire codec
- :mod:`._publisher`: :class:`ExecutionEventPublisher` (each XADD sent once)
- :mod:`._async_subscriber`: the consumer-group subscriber for asyncio (the source)
- :mod:`._subscriber`: the sync subscriber, generated from it by ``scripts/unasync.py``
- :mod:`._subscriber_base`: state and log lines the two share (no I/O)
- :mod:`._core`, :mod:`._batch`: the decisions (dedup, leases, dead letters; no I/O)
- :mod:`._scripts`: the Lua the subscribers run; :mod:`._retention`: group-aware trim
- :mod:`._tail`: :func:`tail`, an observer that never joins a group
"""

from __future__ import annotations

__all__: list[str] = []
