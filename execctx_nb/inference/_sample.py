"""Deterministic sampling spread over the whole input (see docs/inference.md, "Sampling").

- Sized inputs (lists, Arrow tables, Polars frames): ``k`` evenly spaced positions, the
  first and the last row included. No randomness, so the same input gives the same sample.
- LazyFrames: ``blocks`` contiguous runs of rows, evenly spread from the first row to the
  last. Each run is one slice that Polars pushes down into the scan, so a Parquet file is
  read a few row groups at a time and the cost does not grow with the row count.
- Streams and iterators (length unknown until consumed): a reservoir (Li's Algorithm L)
  seeded with ``seed``, so a given stream always yields the same rows; the chosen rows are
  returned in input order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Reservoir", "block_ranges", "even_indices"]


def even_indices(n: int, k: int) -> list[int]:
    """``min(n, k)`` positions spread evenly over ``range(n)``, both ends included.

    >>> even_indices(10, 4)
    [0, 3, 6, 9]
    """
    if n <= k:
        return list(range(n))
    if k <= 1:
        return [0] * k
    return [i * (n - 1) // (k - 1) for i in range(k)]


def block_ranges(n: int, k: int, blocks: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of up to ``blocks`` runs totalling ``min(n, k)`` rows, spread evenly.

    >>> block_ranges(1000, 10, 2)
    [(0, 5), (995, 5)]
    """
    if n <= k:
        return [(0, n)] if n else []
    blocks = max(1, min(blocks, k))
    sizes = [k // blocks + (1 if i < k % blocks else 0) for i in range(blocks)]
    if blocks == 1:
        return [(0, k)]
    out = []
    for i, size in enumerate(sizes):
        start = i * (n - size) // (blocks - 1)
        out.append((start, size))
    return out


class Reservoir:
    """Seeded reservoir sample of ``k`` items from a stream offered in chunks.

    ``offer(count)`` says which positions of the next ``count`` items to keep and in which
    slot; slots are later read in input order (:meth:`order`).
    """

    def __init__(self, k: int, seed: int) -> None:
        self.k = k
        self.seen = 0
        self.position: list[int] = []  # global index held by each slot
        self._rng = random.Random(seed)
        self._w = math.exp(math.log(self._rng.random() or 1e-300) / k) if k else 0.0
        self._next = k + self._skip() if k else math.inf

    def _skip(self) -> int:
        if self._w >= 1.0:
            return 0
        return math.floor(math.log(self._rng.random() or 1e-300) / math.log(1 - self._w))

    def offer(self, count: int) -> list[tuple[int, int]]:
        """Pairs ``(slot, offset)``: item ``offset`` of this chunk goes into ``slot``."""
        start, end = self.seen, self.seen + count
        picks: list[tuple[int, int]] = []
        while len(self.position) < self.k and self.seen < end:  # filling phase
            picks.append((len(self.position), self.seen - start))
            self.position.append(self.seen)
            self.seen += 1
        while self._next < end:
            slot = self._rng.randrange(self.k)
            picks.append((slot, int(self._next) - start))
            self.position[slot] = int(self._next)
            self._w *= math.exp(math.log(self._rng.random() or 1e-300) / self.k)
            self._next += self._skip() + 1
        self.seen = end
        return picks

    def order(self) -> list[int]:
        """Slots sorted by the input position of the item they hold."""
        return sorted(range(len(self.position)), key=self.position.__getitem__)


def sample_iterable(items: Iterable[Any], k: int, seed: int) -> tuple[list[Any], int]:
    """Reservoir-sample an iterator of values; returns (sample in input order, total)."""
    res = Reservoir(k, seed)
    slots: list[Any] = []
    it: Iterator[Any] = iter(items)
    for item in it:
        for slot, _ in res.offer(1):
            if slot == len(slots):
                slots.append(item)
            else:
                slots[slot] = item
    return [slots[i] for i in res.order()], res.seen
