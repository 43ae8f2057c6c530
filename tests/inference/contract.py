"""The user contract every inference test checks (GenSON's ``assertUserContract``).

A schema is valid JSON Schema 2020-12 (``$schema`` set), every row it was inferred from
validates against it as it travels on the wire (msgspec JSON, as the envelope encodes it,
formats checked), its hash is 64 hex chars, and merging it alone gives it back.
"""

from __future__ import annotations

from typing import Any

import msgspec
from jsonschema import Draft202012Validator

from execctx_nb import merge_schemas, schema_hash
from execctx_nb.inference import DIALECT

_WIRE = msgspec.json.Encoder(decimal_format="number")


def to_wire(rows: Any) -> Any:
    """Rows as a JSON reader sees them (datetimes as strings, NaN as null, tuples as lists)."""
    return msgspec.json.decode(_WIRE.encode(rows))


def frame_rows(frame: Any) -> list[Any]:
    """The rows of a pyarrow Table or Polars DataFrame, maps as objects."""
    import pyarrow as pa

    table = frame if isinstance(frame, (pa.Table, pa.RecordBatch)) else frame.to_arrow()
    return list(to_wire(table.to_pylist(maps_as_pydicts="strict")))


def assert_contract(schema: dict[str, Any], rows: list[Any], *, encode: bool = True) -> None:
    """``schema`` is valid 2020-12 and accepts every row of ``rows`` (Python values).

    ``encode=False`` validates the rows as they are (JSON-native values too deep for
    an encoder's recursion limit).
    """
    assert schema["$schema"] == DIALECT
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for i, row in enumerate(to_wire(rows) if encode else rows):
        errors = sorted(validator.iter_errors(row), key=lambda e: list(e.absolute_path))
        assert not errors, (
            f"row {i} rejected: {[(list(e.absolute_path), e.message) for e in errors]}"
        )
    digest = schema_hash(schema)
    assert len(digest) == 64 and digest == digest.lower()
    int(digest, 16)
    assert merge_schemas(schema) == schema, "merging a schema alone must give it back"
