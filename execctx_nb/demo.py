"""A realistic demo flow written through the real store and event publisher.

Flow ``orders-daily``::

    ingest_orders ──> clean ──> join ──> features ──> score ──> export
                        │        ^
                        │   ingest_customers
                        └──> quality_report        (a branch off clean)

- ``score`` fails on its first attempt in the first execution (a timeout) and succeeds on
  retry: both attempts are stored, a ``step.failed`` (retryable) event precedes the commit.
- Records are nested (customers with addresses, orders with item lists).
- The second execution's ``ingest_orders`` has a changed schema: a ``currency`` field
  appears, ``notes`` disappears, ``customer.address.zip`` turns from string to integer and
  items gain a nullable ``discount``.

Everything is seeded and timestamped from constants, so envelopes, schema hashes and
events are identical on every run; :func:`load_demo` is idempotent.

Examples
--------
>>> import execctx_nb
>>> store = execctx_nb.connect()                     # doctest: +SKIP
>>> execctx_nb.demo.load_demo(store, "acme")         # doctest: +SKIP
DemoSummary(tenant='acme', executions=('orders-2024-05-01', 'orders-2024-05-02'), ...)
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from execctx_nb._events._records import (
    Event,
    ExecutionLog,
    ExecutionStatus,
    StepCommitted,
    StepFailed,
)
from execctx_nb._records import ExecutionScope, LineageEntry, StepEnvelope, StepMetadata

__all__ = [
    "EXECUTIONS",
    "FLOW_ID",
    "STEPS",
    "DemoSummary",
    "build_execution",
    "load_demo",
    "run_execution",
]

FLOW_ID = "orders-daily"
EXECUTIONS: tuple[str, ...] = ("orders-2024-05-01", "orders-2024-05-02")
STEPS: tuple[str, ...] = (
    "ingest_orders",
    "ingest_customers",
    "clean",
    "quality_report",
    "join",
    "features",
    "score",
    "export",
)
_UPSTREAM: dict[str, tuple[str, ...]] = {
    "ingest_orders": (),
    "ingest_customers": (),
    "clean": ("ingest_orders",),
    "quality_report": ("clean",),
    "join": ("clean", "ingest_customers"),
    "features": ("join",),
    "score": ("features",),
    "export": ("score",),
}
_CITIES = [("Lyon", "FR"), ("Leeds", "GB"), ("Porto", "PT"), ("Graz", "AT"), ("Austin", "US")]
_NAMES = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Alan"]
_SKUS = [f"SKU-{i:03d}" for i in range(1, 26)]
_N_CUSTOMERS = 40
_N_ORDERS = 120


class DemoSummary(msgspec.Struct, frozen=True):
    """What :func:`load_demo` did for one tenant."""

    tenant: str
    executions: tuple[str, ...]
    written: tuple[str, ...]
    """Executions written by this call (empty when the demo was already loaded)."""
    steps: int
    events: int


_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})$")


def _day(execution_id: str) -> dt.datetime:
    """06:00 UTC of the date an execution id ends with (2024-05-03 for other ids)."""
    m = _DATE_RE.search(execution_id)
    y, mo, d = (int(g) for g in m.groups()) if m else (2024, 5, 3)
    return dt.datetime(y, mo, d, 6, 0, tzinfo=dt.UTC)


def _customers(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, _N_CUSTOMERS + 1):
        name = rng.choice(_NAMES)
        rows.append(
            {
                "customer_id": f"C{i:04d}",
                "name": f"{name} {chr(65 + i % 26)}.",
                "email": f"{name.lower()}.{i}@example.com",
                "segment": rng.choice(["consumer", "consumer", "smb", "enterprise"]),
                "signup_date": (
                    dt.date(2021, 1, 1) + dt.timedelta(days=rng.randrange(1000))
                ).isoformat(),
                "lifetime_value": round(rng.uniform(20, 5000), 2),
            }
        )
    return rows


def _orders(rng: random.Random, day: dt.datetime, version: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(_N_ORDERS):
        city, country = rng.choice(_CITIES)
        zip_code = rng.randrange(10000, 99999)
        items = []
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            item: dict[str, Any] = {
                "sku": rng.choice(_SKUS),
                "qty": rng.randint(1, 5),
                "unit_price": round(rng.uniform(2, 180), 2),
            }
            if version >= 2:
                item["discount"] = rng.choice([None, None, 0.05, 0.1])
            items.append(item)
        cid = rng.randint(1, _N_CUSTOMERS)
        row: dict[str, Any] = {
            "order_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "placed_at": (day + dt.timedelta(seconds=rng.randrange(86400)))
            .isoformat()
            .replace("+00:00", "Z"),
            "channel": rng.choice(["web", "web", "store", "partner"]),
            "customer": {
                "id": f"C{cid:04d}",
                "address": {
                    "city": city,
                    "country": country,
                    "zip": zip_code if version >= 2 else str(zip_code),
                },
            },
            "items": items,
        }
        if version >= 2:
            row["currency"] = {"GB": "GBP", "US": "USD"}.get(country, "EUR")
        else:
            row["notes"] = rng.choice([None, None, None, "gift wrap", "leave at door"])
        rows.append(row)
    return rows


def _flow_data(execution_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every step's rows for one execution (deterministic in the execution id)."""
    version = 1 + EXECUTIONS.index(execution_id) if execution_id in EXECUTIONS else 2
    rng = random.Random(f"execctx-demo/{execution_id}")
    day = (
        _day(execution_id)
        if execution_id[-10:-9].isdigit()
        else dt.datetime(2024, 5, 3, 6, tzinfo=dt.UTC)
    )
    customers = _customers(random.Random("execctx-demo/customers"))
    orders = _orders(rng, day, version)
    clean = [
        {
            "order_id": o["order_id"],
            "placed_at": o["placed_at"],
            "customer_id": o["customer"]["id"],
            "country": o["customer"]["address"]["country"],
            "channel": o["channel"],
            "n_items": sum(i["qty"] for i in o["items"]),
            "total": round(
                sum(
                    i["qty"] * i["unit_price"] * (1 - (i.get("discount") or 0)) for i in o["items"]
                ),
                2,
            ),
        }
        for o in orders
        if o["items"]
    ]
    quality = [
        {"check": "orders_have_items", "passed": len(clean), "failed": len(orders) - len(clean)},
        {"check": "known_customer", "passed": len(clean), "failed": 0},
        {"check": "positive_total", "passed": sum(r["total"] > 0 for r in clean), "failed": 0},
    ]
    by_id = {c["customer_id"]: c for c in customers}
    join = [dict(r, segment=by_id[r["customer_id"]]["segment"]) for r in clean]
    features: dict[str, dict[str, Any]] = {}
    for r in join:
        f = features.setdefault(
            r["customer_id"],
            {
                "customer_id": r["customer_id"],
                "segment": r["segment"],
                "orders": 0,
                "spend": 0.0,
                "channels": [],
            },
        )
        f["orders"] += 1
        f["spend"] = round(f["spend"] + r["total"], 2)
        if r["channel"] not in f["channels"]:
            f["channels"].append(r["channel"])
    feature_rows = [dict(f, channels=sorted(f["channels"])) for _, f in sorted(features.items())]
    score = []
    for f in feature_rows:
        risk = round(
            max(
                0.01,
                min(0.99, 0.9 - 0.12 * f["orders"] - f["spend"] / 4000 + rng.uniform(-0.1, 0.1)),
            ),
            3,
        )
        band = "high" if risk > 0.6 else "medium" if risk > 0.3 else "low"
        score.append({"customer_id": f["customer_id"], "churn_risk": risk, "band": band})
    export = [
        {
            "destination": f"s3://crm-exports/{FLOW_ID}/{execution_id}/scores.parquet",
            "format": "parquet",
            "rows": len(score),
            "bands": {b: sum(s["band"] == b for s in score) for b in ("low", "medium", "high")},
        }
    ]
    return {
        "ingest_orders": orders,
        "ingest_customers": customers,
        "clean": clean,
        "quality_report": quality,
        "join": join,
        "features": feature_rows,
        "score": score,
        "export": export,
    }


_Action = tuple[str, Any]  # ("step", StepEnvelope) or ("event", Event)


def build_execution(execution_id: str, *, fail_score_once: bool | None = None) -> list[_Action]:
    """The ordered writes of one demo execution: envelopes and events, all deterministic.

    ``fail_score_once`` defaults to True for the first demo execution only.
    """
    from execctx_nb.inference import infer_schema, schema_hash

    if fail_score_once is None:
        fail_score_once = execution_id == EXECUTIONS[0]
    data = _flow_data(execution_id)
    rng = random.Random(f"execctx-demo/timing/{execution_id}")
    clock = (
        _day(execution_id)
        if execution_id[-10:-9].isdigit()
        else dt.datetime(2024, 5, 3, 6, tzinfo=dt.UTC)
    )
    actions: list[_Action] = []
    hashes: dict[str, str] = {}
    attempts: dict[str, int] = {}

    def tick(ms: float) -> dt.datetime:
        nonlocal clock
        clock += dt.timedelta(milliseconds=ms)
        return clock

    actions.append(
        (
            "event",
            ExecutionStatus(
                execution_id=execution_id, status="running", flow_id=FLOW_ID, ts=tick(0)
            ),
        )
    )
    for step in STEPS:
        rows = data[step]
        tick(round(rng.uniform(800, 6000)))  # the engine schedules the step, workers pick it up
        lineage = tuple(
            LineageEntry(step_id=up, attempt=attempts[up], schema_hash=hashes[up])
            for up in _UPSTREAM[step]
        )
        attempt = 0
        if step == "score" and fail_score_once:
            elapsed = 30000.0
            error = "TimeoutError: model server did not answer within 30 s"
            at = tick(elapsed)
            actions.append(
                (
                    "step",
                    StepEnvelope(
                        execution_id=execution_id,
                        step_id=step,
                        attempt=0,
                        lineage=lineage,
                        status="failed",
                        error=error,
                        metadata=StepMetadata(elapsed_ms=elapsed, produced_at=at),
                    ),
                )
            )
            actions.append(
                (
                    "event",
                    StepFailed(
                        execution_id=execution_id,
                        step_id=step,
                        attempt=0,
                        error=error,
                        retryable=True,
                        ts=at,
                    ),
                )
            )
            actions.append(
                (
                    "event",
                    ExecutionLog(
                        execution_id=execution_id,
                        step_id=step,
                        attempt=1,
                        level="warning",
                        message="retrying score (attempt 1 of 3)",
                        ts=tick(2000),
                    ),
                )
            )
            attempt = 1
        schema = infer_schema(rows)
        hashes[step] = schema_hash(schema)
        attempts[step] = attempt
        size = len(msgspec.json.encode(rows))
        elapsed = round(rng.uniform(40, 900) + size / 200, 1)
        at = tick(elapsed)
        env = StepEnvelope(
            execution_id=execution_id,
            step_id=step,
            attempt=attempt,
            data=rows,
            schema=schema,
            schema_hash=hashes[step],
            lineage=lineage,
            metadata=StepMetadata(
                row_count=len(rows), bytes=size, elapsed_ms=elapsed, produced_at=at
            ),
        )
        actions.append(("step", env))
        actions.append(
            (
                "event",
                StepCommitted(
                    execution_id=execution_id,
                    step_id=step,
                    attempt=attempt,
                    schema_hash=hashes[step],
                    row_count=len(rows),
                    bytes=size,
                    elapsed_ms=elapsed,
                    ts=at,
                ),
            )
        )
    actions.append(
        (
            "event",
            ExecutionStatus(
                execution_id=execution_id, status="succeeded", flow_id=FLOW_ID, ts=tick(5)
            ),
        )
    )
    return actions


def run_execution(
    store: Any,
    tenant: str,
    execution_id: str,
    *,
    publisher: Any = None,
    delay: float = 0.0,
    fail_score_once: bool | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[int, int]:
    """Write one demo execution through ``store`` and ``publisher``; returns (steps, events).

    ``delay`` seconds are slept after each step's event, so a live widget can be watched
    following along (tutorial 04 runs this on a thread).
    """
    from execctx_nb._events._publisher import ExecutionEventPublisher

    pub = publisher if publisher is not None else ExecutionEventPublisher(client=store.client)
    scope = ExecutionScope(tenant, execution_id)
    steps = events = 0
    for what, item in build_execution(execution_id, fail_score_once=fail_score_once):
        if stop is not None and stop():
            break
        if what == "step":
            store.put_step(scope, item)
            steps += 1
        else:
            event: Event = item
            pub.publish(scope, event)
            events += 1
            if delay and event.kind in ("step.committed", "step.failed"):
                time.sleep(delay)
    return steps, events


def load_demo(store: Any, tenant: str, *, publisher: Any = None) -> DemoSummary:
    """Write the demo executions for ``tenant`` unless they are already there (idempotent).

    An execution counts as loaded when all its steps are stored; a partly written one (an
    earlier run was interrupted) is written again: step writes are idempotent, and the
    event stream's receivers drop republished duplicates by their idempotency key.
    """
    written: list[str] = []
    steps = events = 0
    for execution_id in EXECUTIONS:
        present = set(store.list_steps(ExecutionScope(tenant, execution_id)))
        if present >= set(STEPS):
            continue
        s, e = run_execution(store, tenant, execution_id, publisher=publisher)
        written.append(execution_id)
        steps += s
        events += e
    return DemoSummary(
        tenant=tenant, executions=EXECUTIONS, written=tuple(written), steps=steps, events=events
    )
