"""Hostile but decodable envelopes: every display renders, every frame call answers.

Any JSON can stand where a schema or step data should be. Displays must draw something
readable (an invalid schema says so, and why); ``to_polars``/``to_arrow`` return a frame or
raise an ExecctxError naming the path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.lib.pretty import pretty

import execctx_nb as ec
from execctx_nb.display import SchemaView, envelope_html
from execctx_nb.inference import schema_problem
from execctx_nb.widgets import LineageGraph


def _deep(n: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(n):
        value = [value]
    return value


def _deep_schema(n: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(n):
        value = {"type": "object", "properties": {"a": value}}
    return value


BASE = json.loads(
    ec.StepEnvelope.from_frame(
        [{"id": 1, "name": "a", "tags": ["x"], "nested": {"k": 1.5}}, {"id": 2, "name": None}],
        execution_id="run-1",
        step_id="s",
    ).to_json()
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)  # fmt: skip
hostile = json_values | st.sampled_from(
    [_deep(490), _deep_schema(490), {"properties": {"a": 5}}, {"required": 5}, {"type": 5},
     {"type": ["string", 3]}, {"enum": 5}, {"anyOf": 3}, {"items": "x"}, [{"a": 1}, {"a": [1]}]]
)  # fmt: skip


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


def _replace(value: Any, at: tuple[Any, ...], new: Any) -> Any:
    if not at:
        return new
    copy = json.loads(json.dumps(value))
    node = copy
    for key in at[:-1]:
        node = node[key]
    node[at[-1]] = new
    return copy


def _check_every_surface(env: ec.StepEnvelope) -> None:
    for text in (env._repr_html_(), pretty(env), envelope_html(env)):
        assert isinstance(text, str) and text
    if env.schema is not None:
        view = SchemaView(env.schema, title="s")
        assert str(view) and view._repr_html_()
        if schema_problem(env.schema) is not None:
            assert "invalid schema" in str(view)
    graph = LineageGraph("t", "run-1", envelopes=[env])
    graph.selected = env.step_id
    assert graph.details.get("stepId") == env.step_id and graph.svg
    graph.close()
    for convert in (env.to_polars, env.to_arrow):
        try:
            convert()
        except ec.ExecctxError as exc:
            assert "at `" in str(exc) or "envelope.data" in str(exc), str(exc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["schema", "data"]), st.data())
def test_mutated_envelopes_render_and_convert(part: str, data: st.DataObject) -> None:
    target = BASE[part]
    at = data.draw(st.sampled_from(_paths(target)))
    mutated = dict(BASE, **{part: _replace(target, at, data.draw(hostile))})
    try:
        env = ec.StepEnvelope.from_json(json.dumps(mutated))
    except ec.errors.EnvelopeDecodeError:
        return  # refused at decoding: nothing to display
    _check_every_surface(env)


@pytest.mark.parametrize(
    "schema, reason",
    [
        ({"properties": {"a": 5}}, "/properties/a: expected a schema"),
        ({"required": 5}, "/required: expected a list of property names"),
        (_deep_schema(490), "nested more than 64 levels deep"),
        ({"type": ["string", 3]}, "/type: expected a type name"),
    ],
)
def test_an_invalid_schema_displays_as_invalid_with_its_reason(schema: Any, reason: str) -> None:
    env = ec.StepEnvelope(execution_id="run-1", step_id="s", schema=schema, data=[{"a": 1}])
    assert reason in str(SchemaView(schema)) and reason in env._repr_html_()
    _check_every_surface(env)


def test_hostile_data_gives_a_frame_or_a_named_error_quickly() -> None:
    deep = ec.StepEnvelope(execution_id="run-1", step_id="s", data=[_deep(985)])
    with pytest.raises(
        ec.errors.EnvelopeDecodeError, match=r"more than 32 levels deep - at `data\[0\]"
    ):
        deep.to_polars()  # was 81 s of Polars; now refused before Polars sees it
    mixed = ec.StepEnvelope(execution_id="run-1", step_id="s", data=[{"a": 1}, {"a": [1]}])
    with pytest.raises(ec.errors.EnvelopeDecodeError, match=r"at `data\[1\]\.a`"):
        mixed.to_polars()
    with pytest.raises(ec.errors.EnvelopeDecodeError, match=r"at `data\[1\]\.a`"):
        mixed.to_arrow()


def test_the_schema_magic_and_diff_refuse_an_invalid_schema_clearly(
    valkey_url: str, tenant: str
) -> None:
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    with ec.create_valkey_execution_context_store(valkey_url) as store:
        scope = ec.ExecutionScope(tenant, "run-1")
        bad = {"properties": {"a": 5}}
        store.put_step(
            scope, ec.StepEnvelope(execution_id="run-1", step_id="s", schema=bad, data=[{"a": 1}])
        )
        store.put_step(
            ec.ExecutionScope(tenant, "run-2"),
            ec.StepEnvelope(execution_id="run-2", step_id="s", data=[{"a": 1}]),
        )
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "execctx_nb")
    try:
        shell.run_line_magic("execctx", f"connect {valkey_url}")
        view = shell.run_line_magic("execctx", f"schema {tenant} run-1 s")
        assert "invalid schema" in str(view) and "/properties/a" in str(view)
        with pytest.raises(UsageError, match="Invalid JSON Schema: /properties/a"):
            shell.run_line_magic("execctx", f"diff {tenant} s run-1 run-2")
    finally:
        shell.run_line_magic("reload_ext", "execctx_nb")
