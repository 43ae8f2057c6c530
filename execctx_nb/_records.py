"""Typed, immutable records of the protocol: step envelopes and their parts.

Attributes are snake_case; the wire is camelCase exactly as ``docs/wire-format.md`` pins it.
Records are msgspec Structs: decoding validates shape and types and names the failing path.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from execctx_nb import keys
from execctx_nb._dtypes import conform
from execctx_nb._frames import ACCEPTED, arrow_to_pandas, data_kind, encode_scalar, step_data
from execctx_nb._inline import raw_rows_frame, rows_frame
from execctx_nb.errors import EnvelopeDecodeError, EnvelopeEncodeError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = [
    "DataRef",
    "ExecutionScope",
    "LineageEntry",
    "StepEnvelope",
    "StepMetadata",
    "StepStatus",
    "StoredEnvelope",
    "TenantOrScope",
    "resolve_tenant",
]

StepStatus = Literal["success", "failed"]
"""``success`` or ``failed``, as in the reference protocol."""

NonNegInt = Annotated[int, msgspec.Meta(ge=0)]
Attempt = Annotated[int, msgspec.Meta(ge=0, le=keys.MAX_ATTEMPT)]
SchemaHash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]


class _Wire(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=False):
    """Common base: frozen, keyword-only, camelCase on the wire."""


class ExecutionScope(msgspec.Struct, frozen=True):
    """Where a step lives: one tenant's one execution.

    >>> ExecutionScope("org_42", "run-1")
    ExecutionScope(tenant_id='org_42', execution_id='run-1')
    """

    tenant_id: str
    execution_id: str

    def __post_init__(self) -> None:
        keys.validate_tenant(self.tenant_id, where="scope.tenant_id")
        keys.validate_id(self.execution_id, kind="execution id", where="scope.execution_id")


TenantOrScope = str | ExecutionScope
"""A tenant id, or an :class:`ExecutionScope` (one execution of a tenant)."""


def resolve_tenant(
    tenant_or_scope: TenantOrScope, *, where: str = "tenant_or_scope"
) -> tuple[str, str | None]:
    """``(tenant_id, execution_id or None)`` of a tenant id or an :class:`ExecutionScope`."""
    if isinstance(tenant_or_scope, ExecutionScope):
        return tenant_or_scope.tenant_id, tenant_or_scope.execution_id
    return keys.validate_tenant(tenant_or_scope, where=where), None


class StepMetadata(_Wire, frozen=True, kw_only=True):
    """Facts about a step's output: ``{rowCount, bytes, elapsedMs, producedAt}``."""

    row_count: NonNegInt | None = None
    bytes: NonNegInt | None = None
    elapsed_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    produced_at: dt.datetime | None = None


class LineageEntry(_Wire, frozen=True, kw_only=True):
    """One upstream input of a step: ``{stepId, executionId?, attempt?, schemaHash?}``.

    ``execution_id`` is None for a step of the same execution.
    """

    step_id: str
    execution_id: str | None = None
    attempt: Attempt | None = None
    schema_hash: SchemaHash | None = None

    def __post_init__(self) -> None:
        keys.validate_id(self.step_id, kind="step id", where="lineage.stepId")
        if self.execution_id is not None:
            keys.validate_id(self.execution_id, kind="execution id", where="lineage.executionId")


class DataRef(_Wire, frozen=True, kw_only=True):
    """Where a large step output lives in the cold tier (``dataRef`` on the wire)."""

    uri: str
    format: Literal["parquet"] = "parquet"
    bytes: NonNegInt
    sha256: SchemaHash
    row_count: NonNegInt | None = None


def _encode_data(obj: Any) -> Any:
    """msgspec enc_hook: frames become JSON rows; numpy and pandas scalars JSON values."""
    module = type(obj).__module__ or ""
    name = type(obj).__name__
    if module.startswith("pyarrow") and name in ("Table", "RecordBatch"):
        # Maps become JSON objects, as their inferred schema says (not lists of pairs).
        return obj.to_pylist(maps_as_pydicts="strict")
    if module.startswith("polars") and name == "DataFrame":
        return obj.to_dicts()
    if module.startswith("polars") and name == "LazyFrame":
        raise NotImplementedError(
            "a LazyFrame has no JSON form until collected: put it through the store"
            " (it is written to the cold tier) or collect() it first"
        )
    value = encode_scalar(obj)
    if value is NotImplemented:
        raise NotImplementedError(f"cannot encode {type(obj).__name__} as JSON step data")
    return value


_ENCODER = msgspec.json.Encoder(enc_hook=_encode_data, decimal_format="number")


_REPR_LIMIT = 200


def _short(value: Any, name: str) -> str:
    """A bounded repr of an envelope's ``data`` or ``schema``."""
    kind = data_kind(value)
    if kind in ("polars", "arrow"):
        rows = value.height if kind == "polars" else value.num_rows
        cols = value.width if kind == "polars" else value.num_columns
        return f"<{type(value).__module__.split('.')[0]} {type(value).__name__}: {rows:,} rows x {cols} columns>"
    if kind == "lazy":
        return "<polars LazyFrame>"
    if name == "schema" and isinstance(value, dict):
        props = value.get("properties")
        text = repr(value)
        if len(text) <= _REPR_LIMIT:
            return text
        count = f"{len(props)} properties" if isinstance(props, dict) else f"{len(value)} keys"
        return f"<JSON Schema: {count}, {len(text):,} characters>"
    text = repr(value)
    if len(text) <= _REPR_LIMIT:
        return text
    if isinstance(value, list):
        first = repr(value[0]) if value else ""
        first = first if len(first) <= _REPR_LIMIT else first[: _REPR_LIMIT - 1] + "…"
        return f"[{first}, ... ({len(value):,} rows)]"
    return text[: _REPR_LIMIT - 1] + f"… ({len(text):,} characters)"


class StepEnvelope(_Wire, frozen=True, kw_only=True):
    """A step's output with its schema, lineage, metadata and status.

    ``data`` holds JSON rows, a pyarrow Table or a Polars DataFrame; a large output may
    instead live in the cold tier, referenced by ``data_ref``.

    Examples
    --------
    >>> env = StepEnvelope(execution_id="run-1", step_id="clean", data=[{"a": 1}])
    >>> StepEnvelope.from_json(env.to_json()).data
    [{'a': 1}]
    """

    execution_id: str
    step_id: str
    attempt: Attempt = 0
    data: Any = None
    schema: dict[str, Any] | None = None
    schema_hash: SchemaHash | None = None
    schema_version: NonNegInt = 1
    lineage: tuple[LineageEntry, ...] = ()
    metadata: StepMetadata = msgspec.field(default_factory=StepMetadata)
    status: StepStatus = "success"
    error: str | None = None
    data_ref: DataRef | None = None

    def __post_init__(self) -> None:
        self._check_ids()
        # msgspec checks Meta constraints on decode only; a record built in Python with a bad
        # attempt would otherwise be written and then refused by every reader.
        keys.validate_attempt(self.attempt, where="envelope.attempt")

    def _check_ids(self) -> None:
        keys.validate_id(self.execution_id, kind="execution id", where="envelope.executionId")
        keys.validate_id(self.step_id, kind="step id", where="envelope.stepId")

    # -- wire ---------------------------------------------------------------------------
    @classmethod
    def from_json(
        cls, text: str | bytes | bytearray | memoryview, *, where: str | None = None
    ) -> StepEnvelope:
        """Decode a wire envelope; raise EnvelopeDecodeError naming the bad field's path.

        ``data`` and ``schema`` are parsed (malformed or too-deep JSON is refused here) but
        built into Python objects only when first read: see :class:`StoredEnvelope`.
        """
        envelope: StepEnvelope = _decode(StoredEnvelope, text, "step envelope", where)
        return envelope

    def to_json(self) -> bytes:
        """Encode to the wire: compact UTF-8 JSON with camelCase keys.

        Raises :class:`EnvelopeEncodeError` when ``data`` holds what JSON cannot: foreign
        objects, non-finite decimals, nesting past the encoder's depth limit.
        """
        where = f"step {self.step_id!r} attempt {self.attempt}"
        try:
            out = _ENCODER.encode(self)
        except RecursionError as exc:
            raise EnvelopeEncodeError(
                f"Cannot encode {where}: expected JSON data, got data nested too deeply for the "
                f"encoder - at `envelope.data`; flatten it or store it as a frame"
            ) from exc
        except (
            TypeError,
            ValueError,
            OverflowError,
            NotImplementedError,
            msgspec.EncodeError,
        ) as exc:
            raise EnvelopeEncodeError(
                f"Cannot encode {where}: expected JSON rows, a Polars DataFrame or an Arrow "
                f"Table, got {type(exc).__name__}: {exc} - at `envelope.data`; convert the "
                f"value to a JSON type first"
            ) from exc
        # msgspec writes a non-finite Decimal as a bare NaN/Infinity token (floats become
        # null), which no JSON reader accepts. Only Python rows can hold one (Arrow and
        # Polars decimals are finite). The one-byte tests run at memchr speed and were 10x
        # cheaper than the substring tests alone (0.1 against 2 us for 1.7 KB); the decode
        # runs only when such text is present.
        if (b"N" in out and b"NaN" in out) or (b"I" in out and b"Infinity" in out):
            try:
                msgspec.json.decode(out)
            except msgspec.DecodeError as exc:
                raise EnvelopeEncodeError(
                    f"Cannot encode {where}: expected finite numbers, got a non-finite Decimal "
                    f"(NaN or Infinity has no JSON form) - at `envelope.data`; replace it with "
                    f"None"
                ) from exc
        return out

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        *,
        execution_id: str,
        step_id: str,
        attempt: int = 0,
        lineage: tuple[LineageEntry | str, ...] | list[LineageEntry | str] = (),
        status: StepStatus = "success",
        elapsed_ms: float | None = None,
    ) -> StepEnvelope:
        """An envelope for a Polars DataFrame, Arrow Table or JSON rows, with schema,
        schema hash and metadata (row count, bytes in memory, produced-at now) filled in.

        ``lineage`` takes LineageEntry records or plain step ids of the same execution.

        >>> env = StepEnvelope.from_frame([{"a": 1}], execution_id="run-1", step_id="clean")
        >>> env.metadata.row_count, len(env.schema_hash or "")
        (1, 64)
        """
        from execctx_nb.inference import infer_schema, schema_hash

        frame = step_data(frame, where="from_frame(frame)")
        kind = data_kind(frame)
        rows: int | None
        size: int | None
        if kind == "polars":
            rows, size = int(frame.height), int(frame.estimated_size())
        elif kind == "arrow":
            rows, size = int(frame.num_rows), int(frame.nbytes)
        elif kind == "lazy":
            rows = size = None  # known once the store has written it
        else:
            rows = len(frame) if isinstance(frame, list) else 1
            try:
                size = len(_ENCODER.encode(frame))
            except (TypeError, ValueError, OverflowError, NotImplementedError) as exc:
                raise EnvelopeEncodeError(
                    f"Cannot encode step {step_id!r} data as JSON: {exc} - at"
                    f" `from_frame(frame)`; pass {ACCEPTED}"
                ) from exc
        schema = infer_schema(frame)
        entries = tuple(
            e if isinstance(e, LineageEntry) else LineageEntry(step_id=e) for e in lineage
        )
        return cls(
            execution_id=execution_id,
            step_id=step_id,
            attempt=keys.validate_attempt(attempt),
            data=frame,
            schema=schema,
            schema_hash=schema_hash(schema),
            lineage=entries,
            metadata=StepMetadata(
                row_count=rows,
                bytes=size,
                elapsed_ms=elapsed_ms,
                produced_at=dt.datetime.now(dt.UTC),
            ),
            status=status,
        )

    # -- notebook display (execctx_nb.display is imported only when a notebook asks) -----
    def _repr_html_(self) -> str:
        from execctx_nb.display import envelope_html

        return envelope_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        from execctx_nb.display import envelope_text

        p.text(envelope_text(self))

    def __repr__(self) -> str:
        # Bounded: the repr of 10,000 inline rows was 308,457 characters (a log line, a
        # traceback, a notebook's fallback text). Data and schema are summarised.
        parts = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            text = _short(value, name) if name in ("data", "schema") else repr(value)
            parts.append(f"{name}={text}")
        return f"StepEnvelope({', '.join(parts)})"

    # -- frames -------------------------------------------------------------------------
    def to_arrow(self) -> pa.Table:
        """The data as a pyarrow Table (cold-tier data must be loaded by the store first)."""
        import pyarrow as pa

        data = self._inline_data()
        if isinstance(data, pa.Table):
            return data
        frame = self.to_polars()
        try:
            table: pa.Table = frame.to_arrow()
        except pa.ArrowException as exc:  # e.g. Polars Int128, which pyarrow cannot import
            raise EnvelopeEncodeError(
                f"Cannot convert step {self.step_id!r} data to Arrow: expected dtypes Arrow "
                f"can hold, got {type(exc).__name__}: {exc} - at `envelope.data`; use "
                f"to_polars(), or cast such columns (Int128 to Int64 or Decimal) first"
            ) from exc
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:  # a Rust panic (PanicException), e.g. a NUL in a name
            raise EnvelopeEncodeError(
                f"Cannot convert step {self.step_id!r} data to Arrow: the converter failed"
                f" ({type(exc).__name__}: {exc}) - at `envelope.data`; column names must not"
                " hold NUL characters: use to_polars()"
            ) from exc
        return table

    def to_polars(self) -> pl.DataFrame:
        """The data as a Polars DataFrame.

        JSON rows come back with the dtypes the envelope's schema describes (dates,
        datetimes, durations, decimals, bytes, nested structs and lists: see
        :func:`execctx_nb.schema_to_polars`); a LazyFrame is collected.
        """
        import polars as pl

        data = self._inline_data()
        if isinstance(data, pl.DataFrame):
            return data
        if isinstance(data, pl.LazyFrame):
            return data.collect()
        if type(data).__module__.startswith("pyarrow"):
            frame = pl.from_arrow(data)
            assert isinstance(frame, pl.DataFrame)
            return frame
        return conform(rows_frame(data, self.step_id), self.schema)

    def to_pandas(self) -> pd.DataFrame:
        """The data as a pandas DataFrame with faithful dtypes.

        A frame stored from pandas comes back with its own dtypes (pandas' metadata travels
        with the Parquet file). Otherwise integer and boolean columns holding nulls become
        pandas' nullable ``Int64``/``boolean`` (never floats), Arrow dictionaries become
        categoricals and zoned datetimes keep their zone. Needs pandas installed.
        """
        table = self.to_arrow()
        return arrow_to_pandas(table)

    def _inline_data(self) -> Any:
        if self.data_ref is not None and self.data is None:
            raise EnvelopeDecodeError(
                f"Step {self.step_id!r} keeps its data in the cold tier at {self.data_ref.uri!r};"
                " read it through the store (store.get_step(...)) to load it"
            )
        return self.data


# The slots of StepEnvelope's ``data`` and ``schema`` (member descriptors): they read and set
# the stored value without going through StoredEnvelope's properties.
_DATA = StepEnvelope.__dict__["data"]
_SCHEMA = StepEnvelope.__dict__["schema"]
_NULL = msgspec.Raw(b"null")


class _RawPayload(StepEnvelope, frozen=True, kw_only=True):
    """The wire type of a read envelope: ``data`` and ``schema`` as raw JSON spans."""

    data: msgspec.Raw = _NULL
    schema: msgspec.Raw = _NULL  # type: ignore[assignment]


class StoredEnvelope(_RawPayload, frozen=True, kw_only=True):
    """A :class:`StepEnvelope` read from the wire: ``data`` and ``schema`` stay raw JSON until
    first read, then are decoded once.

    Decoding them into Python objects cost 88-111k instructions per 1.7 KB envelope against
    8.3k for the MGET that fetched it: listings, graphs and batches that look at ids and
    lineage never need them. msgspec still parses the raw spans when the envelope is decoded,
    so malformed or too-deep JSON is refused there, naming the key; ``schema`` is checked to
    be an object or null. It is equal to an eager envelope of the same content, pickles, and
    re-encodes to the very bytes read; :meth:`to_polars` reads inline rows from the raw
    bytes with Polars' JSON reader, building no Python dicts.
    """

    def __post_init__(self) -> None:
        # The attempt's bounds were checked by its type on decode; the ids are checked here.
        self._check_ids()
        schema = _SCHEMA.__get__(self)
        if type(schema) is msgspec.Raw and bytes(memoryview(schema)[:1]) not in (b"{", b"n"):
            got = type(msgspec.json.decode(schema))
            kind = {list: "array", str: "str", bool: "bool", int: "int"}.get(got, "float")
            raise msgspec.ValidationError(f"Expected `object | null`, got `{kind}` - at `$.schema`")

    @property  # type: ignore[misc]
    def data(self) -> Any:
        value = _DATA.__get__(self)
        if type(value) is msgspec.Raw:
            value = msgspec.json.decode(value)
            _DATA.__set__(self, value)  # a racing thread stores an equal value
        return value

    @property  # type: ignore[misc]
    def schema(self) -> dict[str, Any] | None:  # type: ignore[override]
        value = _SCHEMA.__get__(self)
        if type(value) is msgspec.Raw:
            value = msgspec.json.decode(value)
            _SCHEMA.__set__(self, value)
        return value  # type: ignore[no-any-return]

    def eager(self) -> StepEnvelope:
        """The same envelope as a plain :class:`StepEnvelope`, every field decoded."""
        return StepEnvelope(**{name: getattr(self, name) for name in self.__struct_fields__})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StepEnvelope):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.__struct_fields__)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.eager())

    # IPython picks the first of _repr_pretty_ / __repr__ along the MRO: keep the notebook text.
    _repr_pretty_ = StepEnvelope._repr_pretty_

    def __rich_repr__(self) -> Any:
        return self.eager().__rich_repr__()

    def __reduce__(self) -> Any:
        return StepEnvelope.from_json, (self.to_json(),)

    def to_polars(self) -> pl.DataFrame:
        raw = _DATA.__get__(self)
        if type(raw) is msgspec.Raw:
            frame = raw_rows_frame(raw)
            if frame is not None:
                return conform(frame, self.schema)
        return super().to_polars()

    to_polars.__doc__ = StepEnvelope.to_polars.__doc__


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decode(
    cls: type[Any], text: str | bytes | bytearray | memoryview, what: str, where: str | None
) -> Any:
    at = f" (at key {where!r})" if where else ""
    decoder = _DECODERS.get(cls)
    if decoder is None:  # building a Decoder walks the type; a union costs ~4 us a call
        decoder = _DECODERS.setdefault(cls, msgspec.json.Decoder(cls))
    try:
        return decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise EnvelopeDecodeError(f"Invalid {what}{at}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise EnvelopeDecodeError(f"Malformed JSON for a {what}{at}: {exc}") from exc
    except RecursionError as exc:
        # msgspec's depth guard: a corrupt or hostile value must not crash the reader
        raise EnvelopeDecodeError(
            f"Invalid {what}{at}: expected JSON nested under the decoder's depth limit, got a "
            f"value nested too deeply; rewrite the value at that key"
        ) from exc
    except UnicodeEncodeError as exc:
        raise EnvelopeDecodeError(
            f"Malformed text for a {what}{at}: expected Unicode text, got a lone surrogate at "
            f"character {exc.start}; decode the bytes strictly first"
        ) from exc
