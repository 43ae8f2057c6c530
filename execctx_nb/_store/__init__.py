"""The store layer: step envelopes, flow vars, leases, archives, the cold tier.

- :mod:`._async`: the store for asyncio (the hand-written source of both APIs)
- :mod:`._sync`: the sync store, generated from ``_async`` by ``scripts/unasync.py``
- :mod:`._session`: :func:`connect`, the notebook's shared store, lent as handles
- :mod:`._write`: the write path and its idempotent-write rule (no I/O)
- :mod:`._common`: reads, leases, flow vars, archives, probes (no I/O)
- :mod:`._cold`: the cold tier (Parquet objects through obstore)
"""

from __future__ import annotations

__all__: list[str] = []
