"""``execctx_nb.contracts.validate``: whole frames checked column-wise against JSON Schema,
with jsonschema's verdict (Draft 2020-12, format checking) on every row as the reference."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import msgspec
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from execctx_nb import infer_schema
from execctx_nb._records import _ENCODER
from execctx_nb.contracts import validate
from execctx_nb.errors import InvalidArgumentError

N = int(os.environ.get("EXECCTX_HYPOTHESIS_EXAMPLES", "150"))


def reference(frame: pl.DataFrame, schema: dict[str, Any]) -> list[int]:
    """Invalid row indices by jsonschema, on the rows as the envelope encoder writes them."""
    checker = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    rows = msgspec.json.decode(_ENCODER.encode(frame))
    return [i for i, row in enumerate(rows) if not checker.is_valid(row)]


# strings that the vectorised forms decide (emails, canonical UUIDs) and that they leave to
# jsonschema (a braced UUID parses but fails jsonschema's hyphen positions)
STRINGS = [
    "a", "bb", "2024-01-01", "x y", "é", "a@b", "@", "12345678-1234-1234-1234-123456789abc",
    "{12345678-1234-1234-1234-123456789abc}", "12345678123412341234123456789abc",
    "10.0.0.255", "010.0.0.1", "https://a.b/c?d=1", "http://x:80", "ftp://[::1]/",
    "https://a b", "urn:x",
]  # fmt: skip
INSTANTS = [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), dt.datetime(1, 1, 1, tzinfo=dt.UTC)]

FRAMES = (
    st.integers(1, 25)
    .flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "i": st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n),
                "f": st.lists(
                    st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, -3.0, float("nan")])),
                    min_size=n,
                    max_size=n,
                ),
                "s": st.lists(
                    st.one_of(st.none(), st.sampled_from(STRINGS)),
                    min_size=n,
                    max_size=n,
                ),
                "b": st.lists(st.one_of(st.none(), st.booleans()), min_size=n, max_size=n),
                "d": st.lists(
                    st.one_of(st.none(), st.just(dt.date(2024, 1, 2))), min_size=n, max_size=n
                ),
                "t": st.lists(
                    st.one_of(st.none(), st.sampled_from(INSTANTS)), min_size=n, max_size=n
                ),
                "st": st.lists(
                    st.one_of(st.none(), st.builds(lambda x: {"x": x}, st.integers(0, 9))),
                    min_size=n,
                    max_size=n,
                ),
                "l": st.lists(
                    st.one_of(st.none(), st.lists(st.integers(0, 4), max_size=3)),
                    min_size=n,
                    max_size=n,
                ),
            }
        )
    )
    .map(lambda cols: pl.DataFrame(cols, schema_overrides={"f": pl.Float64, "d": pl.Date}))
)

MUTATIONS = st.lists(
    st.sampled_from(
        [
            ("i", {"minimum": 0}),
            ("i", {"maximum": 3, "exclusiveMinimum": -4}),
            ("i", {"type": "integer"}),
            ("f", {"type": "integer"}),
            ("f", {"type": ["number", "null"], "maximum": 2}),
            ("s", {"enum": ["a", "bb", None]}),
            ("s", {"maxLength": 1}),
            ("s", {"format": "date"}),
            ("s", {"pattern": "^[a-z]+$"}),
            ("s", {"type": "string", "minLength": 2}),
            ("s", {"format": "email"}),
            ("s", {"format": "ipv4"}),
            ("s", {"format": "uri", "pattern": "^h"}),
            ("s", {"format": "uuid", "enum": ["a", "@", None, 1]}),
            ("s", {"const": "a@b"}),
            ("i", {"enum": [1, 2.0, True, 2.5, "1", 10**30]}),
            ("i", {"const": 0}),
            ("b", {"enum": [False, 0]}),
            ("t", {"type": "string", "format": "date-time"}),
            ("t", {"format": "date"}),
            ("b", {"const": True}),
            ("b", {"type": "boolean"}),
            ("d", {"type": "string", "format": "date-time"}),
            ("d", {"type": "string", "format": "date"}),
            ("st", {"type": "object", "properties": {"x": {"maximum": 5}}, "required": ["x"]}),
            ("st", {"type": ["object", "null"]}),
            ("l", {"type": "array", "items": {"type": "integer", "maximum": 2}}),
            ("l", {"type": ["array", "null"], "minItems": 1, "maxItems": 2}),
            ("l", {"items": {"enum": [0, 1, 2]}}),
            ("zz", None),  # a required column that is absent
            ("extra", False),  # additionalProperties: false (every column is extra)
        ]
    ),
    max_size=5,
)


@settings(max_examples=3 * N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FRAMES, MUTATIONS)
def test_same_verdict_as_jsonschema_on_every_row(
    frame: pl.DataFrame, mutations: list[tuple[str, Any]]
) -> None:
    schema = infer_schema(frame.head(max(1, frame.height // 2)))  # inferred, then mutated
    props = schema.setdefault("properties", {})
    for column, change in mutations:
        if column == "zz":
            schema["required"] = [*schema.get("required", []), "zz"]
        elif column == "extra":
            schema["properties"] = {}
            schema["additionalProperties"] = False
            props = schema["properties"]
        else:
            props[column] = {**props.get(column, {}), **change}
    report = validate(frame, schema)
    assert sorted(report.invalid_rows.to_list()) == reference(frame, schema), schema
    assert report.ok == (not reference(frame, schema))
    lazy = validate(frame.lazy(), schema)
    assert sorted(lazy.invalid_rows.to_list()) == sorted(report.invalid_rows.to_list())


def test_report_names_paths_shares_and_rows() -> None:
    frame = pl.DataFrame({"id": [1, 2, 3, 4], "tag": ["a", "b", "zzz", None]})
    schema = {
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 2}, "tag": {"enum": ["a", "b"]}},
        "required": ["id", "tag", "owner"],
    }
    report = validate(frame, schema)
    assert not report.ok and report.rows == 4
    worst = report.violations[0]
    assert (worst.path, worst.keyword, worst.count, worst.share) == ("/owner", "required", 4, 1.0)
    tag = next(v for v in report.violations if v.path == "/tag")
    assert tag.rows == (2, 3) and tag.values == ("zzz", None)
    assert report.to_polars().height == len(report.violations)
    good, bad = report.split(frame)
    assert good.height == 0 and bad.equals(frame)
    partly = validate(frame, {"properties": {"id": {"maximum": 2}}})
    good, bad = partly.split(frame.lazy())
    assert good.collect()["id"].to_list() == [1, 2] and bad.collect()["id"].to_list() == [3, 4]
    with pytest.raises(InvalidArgumentError, match=r"split\(frame\)"):
        partly.split([{"id": 1}])
    html = report._repr_html_()
    assert "/tag" in html and "4 invalid rows" in html
    assert validate(pl.DataFrame({"id": [5]}), {"type": "object"}).ok


def test_more_checks_than_one_mask_holds() -> None:
    # 70 columns, each with its own failing row: checks past the 63rd land in a second mask
    frame = pl.DataFrame({f"c{i}": [0] * 70 for i in range(70)}).with_columns(
        pl.when(pl.int_range(70) == i).then(-1).otherwise(pl.col(f"c{i}")).alias(f"c{i}")
        for i in range(70)
    )
    schema = {"properties": {f"c{i}": {"minimum": 0} for i in range(70)}}
    report = validate(frame.lazy(), schema)
    assert sorted(report.invalid_rows.to_list()) == list(range(70))
    assert {(v.path, v.rows) for v in report.violations} == {(f"/c{i}", (i,)) for i in range(70)}


def test_rows_and_arrow_and_pandas_inputs() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer", "maximum": 1}}}
    rows = [{"a": 1}, {"a": 2}]
    assert validate(rows, schema).invalid_rows.to_list() == [1]
    frame = pl.DataFrame(rows)
    assert validate(frame.to_arrow(), schema).invalid_rows.to_list() == [1]
    assert validate(frame.to_pandas(), schema).invalid_rows.to_list() == [1]


def test_a_bad_schema_is_named() -> None:
    with pytest.raises(InvalidArgumentError, match="Invalid JSON Schema"):
        validate(pl.DataFrame({"a": [1]}), {"type": 5})


def test_a_lazy_parquet_scan_is_checked_without_collecting_it(tmp_path: Any) -> None:
    path = tmp_path / "big.parquet"
    pl.DataFrame({"n": list(range(200_000))}).write_parquet(path)
    report = validate(pl.scan_parquet(path), {"properties": {"n": {"maximum": 199_997}}})
    assert report.rows == 200_000 and report.invalid_rows.to_list() == [199_998, 199_999]


def test_the_cli_exits_1_on_violations_and_2_on_bad_input(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from execctx_nb.cli import main

    data = tmp_path / "today.parquet"
    pl.DataFrame({"n": [1, 2, 30], "s": ["a", "b", "c"]}).write_parquet(data)
    schema = tmp_path / "contract.json"
    schema.write_text(json.dumps({"properties": {"n": {"maximum": 10}}}))
    assert main(["validate", str(data), str(schema)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "invalid: 1 of 3 rows"
    assert out[1].startswith("/n: maximum - 1 of 3 rows (33.33%); first rows [2]")
    inferred = tmp_path / "inferred.json"
    assert main(["infer", str(data), "--compact"]) == 0
    inferred.write_text(capsys.readouterr().out)  # `execctx infer` output works as a schema
    assert main(["validate", str(data), str(inferred)]) == 0
    assert capsys.readouterr().out.strip() == "valid: 3 rows"
    assert main(["validate", str(data), str(tmp_path / "missing.json")]) == 2
    assert "Cannot read the schema" in capsys.readouterr().err


def test_the_magic_checks_a_frame_against_a_stored_step(valkey_url: str, tenant: str) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    import execctx_nb as ec

    with ec.connect(valkey_url) as store:
        frame = pl.DataFrame({"n": list(range(150)), "tag": ["a", "b", "c"] * 50})
        store.put_step(
            ec.ExecutionScope(tenant, "run-1"),
            ec.StepEnvelope.from_frame(frame, execution_id="run-1", step_id="s"),
        )
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "execctx_nb")
    try:
        shell.run_line_magic("execctx", f"connect {valkey_url}")
        shell.user_ns["today"] = pl.DataFrame({"n": [1, 2], "tag": ["a", "zz"]})
        report = shell.run_line_magic("execctx", f"validate today {tenant} run-1 s")
        assert report.invalid_rows.to_list() == [1]
        assert report.violations[0].path == "/tag" and report.violations[0].keyword == "enum"
        shell.user_ns["contract"] = {"type": "object"}
        assert shell.run_line_magic("execctx", "validate today --schema contract").ok
    finally:
        shell.run_line_magic("reload_ext", "execctx_nb")
