"""The demo flow: realistic, deterministic, written through the real store and stream."""

from __future__ import annotations

import jsonschema
import pytest

from execctx_nb import ExecutionScope, connect, schema_diff
from execctx_nb.demo import EXECUTIONS, STEPS, build_execution, load_demo


@pytest.fixture
def store(valkey_url: str):  # type: ignore[no-untyped-def]
    with connect(valkey_url) as s:
        yield s


def test_build_is_deterministic_and_every_schema_accepts_its_rows() -> None:
    first, again = build_execution(EXECUTIONS[0]), build_execution(EXECUTIONS[0])
    assert [(k, x.to_json()) for k, x in first] == [(k, x.to_json()) for k, x in again]
    for kind, item in first:
        if kind == "step" and item.status == "success":
            validator = jsonschema.Draft202012Validator(item.schema)
            for row in item.data:
                validator.validate(row)


def test_flow_shape_branch_retry_and_nesting() -> None:
    actions = build_execution(EXECUTIONS[0])
    envs = [x for k, x in actions if k == "step"]
    assert [e.step_id for e in envs if e.status == "success"] == list(STEPS)
    score = [e for e in envs if e.step_id == "score"]
    assert [(e.attempt, e.status) for e in score] == [(0, "failed"), (1, "success")]
    kinds = [x.kind for k, x in actions if k == "event"]
    assert kinds.count("step.failed") == 1 and kinds.count("step.committed") == len(STEPS)
    ups = {e.step_id: [le.step_id for le in e.lineage] for e in envs if e.status == "success"}
    assert ups["join"] == ["clean", "ingest_customers"]
    assert ups["quality_report"] == ["clean"]  # the branch
    assert isinstance(envs[0].data[0]["customer"]["address"], dict)
    assert [e.attempt for e in envs if e.step_id == "export"] == [0]
    # Lineage pins the attempt read: export read score's retry.
    export = next(e for e in envs if e.step_id == "export")
    assert export.lineage[0].attempt == 1


def test_second_execution_changes_the_orders_schema() -> None:
    def schema(execution: str, step: str) -> dict:  # type: ignore[type-arg]
        return next(
            x.schema for k, x in build_execution(execution) if k == "step" and x.step_id == step
        )

    diff = schema_diff(
        schema(EXECUTIONS[0], "ingest_orders"), schema(EXECUTIONS[1], "ingest_orders")
    )
    assert diff.breaking
    assert diff.added == ("/currency", "/items/[]/discount")
    assert diff.removed == ("/notes",)
    assert diff.retyped == ("/customer/address/zip",)
    assert not schema_diff(schema(EXECUTIONS[0], "score"), schema(EXECUTIONS[1], "score"))


def test_load_demo_writes_through_store_and_stream_once(store, valkey_client, tenant) -> None:
    from execctx_nb import keys

    summary = load_demo(store, tenant)
    assert summary.written == EXECUTIONS
    assert sorted(store.list_executions(tenant)) == sorted(EXECUTIONS)
    for execution in EXECUTIONS:
        assert sorted(store.list_steps(ExecutionScope(tenant, execution))) == sorted(STEPS)
    score = store.get_step(ExecutionScope(tenant, EXECUTIONS[0]), "score")
    assert score.attempt == 1 and score.status == "success"
    failed = store.get_step(ExecutionScope(tenant, EXECUTIONS[0]), "score", 0)
    assert failed.status == "failed" and "TimeoutError" in failed.error
    length = valkey_client.xlen(keys.events_key(tenant))
    assert length == summary.events
    again = load_demo(store, tenant)
    assert again.written == () and again.events == 0
    assert valkey_client.xlen(keys.events_key(tenant)) == length
