"""A small generated corpus of the shapes inference must generalise over (issue: inference
v2): long-tailed categories, a closed domain, repeating free text, maps keyed by data, late
nulls in a frame, links. Each dataset is a training part (inferred) and a held-out part
(validated against the inferred schema). Deterministic: seeded generators, no files."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

Rows = list[dict[str, Any]]


def _long_tail(rng: random.Random, n: int) -> Rows:
    # nycflights-like carriers: 16 with a steep tail, so a 200-row sample misses the rarest
    carriers = [f"C{i:02d}" for i in range(16)]
    weights = [1 / (i + 1) ** 2.2 for i in range(16)]
    return [{"carrier": rng.choices(carriers, weights)[0], "delay": rng.randint(0, 90)}
            for _ in range(n)]  # fmt: skip


def _closed(rng: random.Random, n: int) -> Rows:
    return [{"status": rng.choice(["ok", "failed", "retry", "skipped"])} for _ in range(n)]


def _free_text(rng: random.Random, n: int) -> Rows:
    # a few spellings repeat, and now and then a new one turns up
    common = ["Alabama", "alabama", "Alaska", "Arizona"]
    rare = ["Alabamisch", "ALABAMA", "Alabama ", "Arizona.", "arizona", "Alaska!", "Alasca"]
    return [
        {"state": rng.choice(rare) if rng.random() < 0.02 else rng.choice(common)} for _ in range(n)
    ]


def _maps(rng: random.Random, n: int) -> Rows:
    tones = ["1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"]
    rows = []
    for _ in range(n):
        pairs = {f"{a}-{b}" for a in tones for b in tones if a != b and rng.random() < 0.4}
        rows.append({"skin_variations": {k: {"image": f"{k}.png"} for k in sorted(pairs)}})
    return rows


def _links(rng: random.Random, n: int) -> Rows:
    paths = ["a", "b/c", "items", "wiki/Main_Page"]
    return [
        {
            "url": f"https://h{rng.randint(0, 9)}.example.com/{rng.choice(paths)}?q={rng.randint(0, 99)}"
        }
        for _ in range(n)
    ]


DATASETS: dict[str, Callable[[random.Random, int], Rows]] = {
    "long-tailed categories": _long_tail,
    "closed domain": _closed,
    "repeating free text": _free_text,
    "maps keyed by codes": _maps,
    "links": _links,
}


def split(name: str, train: int = 1000, held_out: int = 1000, seed: int = 7) -> tuple[Rows, Rows]:
    rows = DATASETS[name](random.Random(seed), train + held_out)
    return rows[:train], rows[train:]


def leaves_constrained(schema: Any) -> tuple[int, int]:
    """``(constrained, total)`` leaf schemas: a leaf is constrained by an enum, a format, a
    pattern, or a type narrower than any string/number."""
    constrained = total = 0
    stack = [schema]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        children = [*(node.get("properties") or {}).values()]
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                children.append(node[key])
        if children:
            stack.extend(children)
            continue
        total += 1
        types = node.get("type")
        types = {types} if isinstance(types, str) else set(types or ())
        if node.keys() & {"enum", "format", "pattern", "const"} or types - {"string", "null"}:
            constrained += 1
    return constrained, total
