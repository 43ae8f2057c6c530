"""Progress for long cold-tier work: Parquet encodes and decodes, and transfers.

A bar appears only when the work lasts longer than :data:`DELAY` seconds, and only where a
person watches (a notebook, or a terminal on stderr): scripts, tests and CI logs stay quiet.
Encoding and decoding are single native calls with no progress callback, so their bar shows
the elapsed time (and the size when known), refreshed by a ticker thread until they return.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["DELAY", "watched", "working"]

DELAY = 1.0
"""Seconds of work before a bar is shown."""


def watched(in_notebook: bool) -> bool:
    """Whether someone watches: a notebook kernel, or stderr is a terminal."""
    if in_notebook:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def working(label: str, total: int | None, *, show: bool) -> Iterator[Callable[[int], object]]:
    """A bar for a blocking step; yields its ``update(n)`` (a no-op when not shown)."""
    if not show:
        yield lambda n: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc=label, leave=False, delay=DELAY)
    start = time.monotonic()
    stop = threading.Event()

    def tick() -> None:
        # tqdm's delay is checked on update only: a single long call never updates.
        while not stop.wait(0.25):
            if time.monotonic() - start >= DELAY:
                bar.refresh()

    ticker = threading.Thread(target=tick, name="execctx-progress", daemon=True)
    ticker.start()
    try:
        yield bar.update
    finally:
        stop.set()
        ticker.join()
        bar.close()
