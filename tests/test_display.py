"""Rich displays: readable text, escaped deterministic HTML, on a real IPython formatter."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
import pytest
from IPython.core.formatters import DisplayFormatter

from execctx_nb import LineageEntry, StepEnvelope, StepMetadata
from execctx_nb.display import ExecutionView, SchemaView

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "customer"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "customer": {
            "type": "object",
            "required": ["tier"],
            "properties": {
                "name": {"type": ["string", "null"]},
                "tier": {"type": "string", "enum": ["gold", "silver"], "x-cardinality": 2},
            },
        },
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
        },
        "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 5}]},
    },
}
TS = dt.datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


def envelope(**kw: object) -> StepEnvelope:
    base: dict[str, object] = {
        "execution_id": "run-1",
        "step_id": "ingest",
        "data": [
            {"id": "a", "customer": {"name": None, "tier": "gold"}, "items": [{"sku": "x"}]},
            {"id": "b", "customer": {"name": "<script>", "tier": "silver"}, "items": []},
        ],
        "schema": SCHEMA,
        "schema_hash": "ab" * 32,
        "metadata": StepMetadata(row_count=2, bytes=2048, elapsed_ms=1234.5, produced_at=TS),
    }
    base.update(kw)
    return StepEnvelope(**base)  # type: ignore[arg-type]


def formatted(obj: object) -> dict[str, str]:
    data, _ = DisplayFormatter().format(obj)
    return data


def test_schema_text_tree_shows_types_nullability_enums_formats_notes() -> None:
    text = str(SchemaView(SCHEMA, title="orders"))
    assert text.splitlines() == [
        "orders  object  4 properties",
        "├── id  string  required  format uuid",
        "├── customer  object  required",
        "│   ├── name  string  nullable  optional",
        '│   └── tier  string  required  enum ["gold", "silver"]  x-cardinality 2',
        "├── items  array of object  optional",
        "│   └── []  object",
        "│       └── sku  string  optional",
        "└── note  string  nullable  optional  maxLength 5",
    ]


def test_schema_html_is_collapsible_and_escaped() -> None:
    schema = {"type": "object", "properties": {"<b>x</b>": {"type": "string", "enum": ["<i>"]}}}
    html = SchemaView(schema)._repr_html_()
    assert "<details open><summary>" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>" not in html and "<i>" not in html
    assert " id=" not in html


def test_schema_enum_is_capped_and_null_in_enum_is_nullable() -> None:
    enum = [f"v{i}" for i in range(12)] + [None]
    text = str(SchemaView({"enum": enum}))
    assert "nullable" in text
    assert '"v7", … +4]' in text


def test_envelope_plain_text_is_readable() -> None:
    text = formatted(envelope())["text/plain"]
    assert text.startswith("StepEnvelope ingest [success]")
    assert "rows         2" in text
    assert "elapsed      1.23 s" in text
    assert "produced at  2024-05-01 09:30:15Z" in text
    assert "schema hash  abababababab (v1)" in text
    assert "data: first 2 of 2 rows" in text
    assert "0x" not in text


def test_envelope_html_has_status_schema_and_escaped_preview() -> None:
    html = formatted(envelope(status="failed", error="Timeout <30s>"))["text/html"]
    assert "b-failed" in html
    assert "Timeout &lt;30s&gt;" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "<th>customer</th>" in html
    assert "format uuid" in html
    assert html == formatted(envelope(status="failed", error="Timeout <30s>"))["text/html"]
    assert not re.search(r"\bid=", html)


def test_envelope_preview_of_frames_and_scalars() -> None:
    frame = pl.DataFrame({"a": list(range(20))})
    text = formatted(envelope(data=frame, schema=None))["text/plain"]
    assert "data: first 8 of 20 rows" in text
    assert "data:" not in formatted(envelope(data=None))["text/plain"]
    assert "first 1 of 1 row\n" in formatted(envelope(data=42))["text/plain"] + "\n"


def test_execution_view_orders_by_lineage_and_counts_failures() -> None:
    envs = [
        envelope(
            step_id="score", status="failed", attempt=1, lineage=(LineageEntry(step_id="clean"),)
        ),
        envelope(step_id="clean", lineage=(LineageEntry(step_id="ingest"),)),
        envelope(),
    ]
    view = ExecutionView(envs, tenant_id="acme")
    lines = str(view).splitlines()
    assert lines[0] == "execution acme/run-1: 3 steps, 1 failed"
    assert [ln.split()[0] for ln in lines[2:]] == ["ingest", "clean", "score"]
    assert view["score"].attempt == 1
    with pytest.raises(KeyError, match="no step 'nope'"):
        view["nope"]
    html = formatted(view)["text/html"]
    assert html.count("<tr>") == 4
    assert "<svg" in html and html.count('data-step="') == 3
    assert repr(view) == "<ExecutionView execution acme/run-1: 3 steps, 1 failed>"


def test_schema_diff_view_lists_changes_and_verdict() -> None:
    from execctx_nb import infer_schema, schema_diff
    from execctx_nb.display import SchemaDiffView

    old = infer_schema([{"id": 1, "zip": "123", "note": "x"}] * 3)
    new = infer_schema([{"id": 1, "zip": 123, "extra": True}] * 3)
    view = SchemaDiffView(
        schema_diff(old, new), title="orders", old_label="r1", new_label="r2", old_schema=old
    )
    lines = str(view).splitlines()
    assert lines[0] == "orders: r1 -> r2 (breaking, 3 changes)"
    assert [ln.split()[:2] for ln in lines[1:]] == [
        ["added", "/extra"],
        ["removed", "/note"],
        ["changed", "/zip"],
    ]
    assert view.breaking and view.removed == ("/note",)  # reads like the diff record
    html = formatted(view)["text/html"]
    assert "b-failed" in html and html.count("<tr>") == 4
    assert "schema of r1" in html and "schema of r2" not in html
    same = SchemaDiffView(schema_diff(old, old))
    assert not same and str(same) == "schema: old -> new (no change)"
