"""Overviews across executions: a tenant's executions as a table, a step's history.

``executions_frame(store, tenant)`` answers "what ran lately, and how did it go?" (what
``%execctx executions`` shows); ``step_history(store, tenant, step)`` answers "how has this
step's output moved over the last runs, and where did its schema change?" (``%execctx
history``). Both read envelopes without their cold-tier data.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from execctx_nb._records import ExecutionScope, StepEnvelope

if TYPE_CHECKING:
    import polars as pl

    from execctx_nb._store._sync import ExecutionContextStore

__all__ = ["executions_frame", "step_history"]


def _status(envs: list[StepEnvelope]) -> str:
    statuses = {e.status for e in envs}
    if "failed" in statuses:
        return "failed"
    if statuses - {"success", "skipped"}:
        return "running"
    return "success"


def executions_frame(store: ExecutionContextStore, tenant_id: str, limit: int = 50) -> pl.DataFrame:
    """A tenant's executions, newest first: status, started, duration, steps, failed
    steps and retries (attempts beyond the first), one row per execution.

    ``started`` is when its first step was written (the listing index); ``duration`` runs
    from the earliest step start (produced-at minus elapsed) to the last step's produced-at.
    """
    import polars as pl

    rows: list[dict[str, Any]] = []
    for execution_id, first_write in store.recent_executions(tenant_id, limit):
        envs = store.get_execution(ExecutionScope(tenant_id, execution_id), data=False)
        ends = [e.metadata.produced_at for e in envs if e.metadata.produced_at is not None]
        starts = [
            e.metadata.produced_at - dt.timedelta(milliseconds=e.metadata.elapsed_ms or 0)
            for e in envs
            if e.metadata.produced_at is not None
        ]
        epoch = first_write.timestamp() == 0  # written by an engine without the index
        rows.append(
            {
                "execution": execution_id,
                "status": _status(envs),
                "started": min(starts) if starts else (None if epoch else first_write),
                "duration": (max(ends) - min(starts)) if ends and starts else None,
                "steps": len(envs),
                "failed": sum(e.status == "failed" for e in envs),
                "retries": sum(e.attempt for e in envs),
            }
        )
    schema: dict[str, Any] = {
        "execution": pl.String,
        "status": pl.String,
        "started": pl.Datetime("us", "UTC"),
        "duration": pl.Duration("ms"),
        "steps": pl.Int64,
        "failed": pl.Int64,
        "retries": pl.Int64,
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.sort("started", descending=True, nulls_last=True)


def step_history(
    store: ExecutionContextStore, tenant_id: str, step_id: str, last: int = 20
) -> pl.DataFrame:
    """One step over the last ``last`` executions that wrote it, oldest first: status,
    attempt, rows, bytes, elapsed ms, schema hash and whether the schema changed from the
    execution before (so the run where it changed stands out)."""
    import polars as pl

    rows: list[dict[str, Any]] = []
    recent = store.recent_executions(tenant_id, None)
    for execution_id, first_write in recent:
        if len(rows) >= last:
            break
        env = store.get_step(ExecutionScope(tenant_id, execution_id), step_id, data=False)
        if env is None:
            continue
        md = env.metadata
        rows.append(
            {
                "execution": execution_id,
                "produced_at": md.produced_at or first_write,
                "status": env.status,
                "attempt": env.attempt,
                "rows": md.row_count,
                "bytes": md.bytes,
                "elapsed_ms": md.elapsed_ms,
                "schema_hash": env.schema_hash,
            }
        )
    rows.reverse()  # oldest first: a trend reads left to right
    for i, row in enumerate(rows):
        row["schema_changed"] = i > 0 and row["schema_hash"] != rows[i - 1]["schema_hash"]
    schema: dict[str, Any] = {
        "execution": pl.String,
        "produced_at": pl.Datetime("us", "UTC"),
        "status": pl.String,
        "attempt": pl.Int64,
        "rows": pl.Int64,
        "bytes": pl.Int64,
        "elapsed_ms": pl.Float64,
        "schema_hash": pl.String,
        "schema_changed": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")
