"""What ``execctx infer`` reads: a file, a glob, a (hive-partitioned) directory, a URL, stdin.

Every source is opened lazily where its format allows (Parquet, CSV, NDJSON and IPC scans:
Polars reads the rows the sample needs), so a glob over a thousand files or an ``s3://``
prefix is not downloaded whole. Object-store URLs use Polars' cloud readers, configured from
the environment as obstore is (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...).
"""

from __future__ import annotations

import glob
import sys
import tempfile
from pathlib import Path
from typing import Any

from execctx_nb.errors import SchemaInferenceError

__all__ = ["SUFFIXES", "detect", "read_all", "read_for_inference", "spool_stdin", "unreadable"]

SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
    ".arrows": "ipc",
    ".csv": "csv",
    ".tsv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
}
_GLOB = frozenset("*?[")


def _is_url(source: str) -> bool:
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.isalnum()


def _files(source: str) -> list[str]:
    """The data files a glob or a directory holds (hidden and unknown files skipped)."""
    if any(c in _GLOB for c in source):
        found = sorted(glob.glob(source, recursive=True))
    else:
        found = sorted(str(p) for p in Path(source).rglob("*"))
    return [
        f
        for f in found
        if Path(f).is_file()
        and Path(f).suffix.lower() in SUFFIXES
        and not any(part.startswith((".", "_")) for part in Path(f).parts[-2:])
    ]


def detect(source: str, given: str) -> str:
    """The format of ``source``: ``given`` unless "auto", else from its (first file's) suffix."""
    if given != "auto":
        return given
    probe = source
    if not _is_url(source) and (any(c in _GLOB for c in source) or Path(source).is_dir()):
        files = _files(source)
        if not files:
            raise SchemaInferenceError(
                f"No data files in {source}: expected files ending in"
                f" {', '.join(sorted(SUFFIXES))} - at `{source}`; check the glob or directory"
            )
        probe = files[0]
    suffix = Path(probe.split("?", 1)[0]).suffix.lower()
    kind = SUFFIXES.get(suffix)
    if kind is None:
        raise SchemaInferenceError(
            f"Unknown file type `{suffix or Path(probe).name}`: expected one of "
            f"{', '.join(sorted(SUFFIXES))} - at `{source}`; pass --format to say which it is"
        )
    return kind


def spool_stdin(kind: str) -> tuple[Path, str]:
    """Copy standard input to a temporary file (read like any file); its format is ``kind``
    or sniffed from the first bytes (Parquet, Arrow IPC, JSON, NDJSON, else CSV)."""
    data = sys.stdin.buffer.read()
    if kind == "auto":
        head = data[:4096].lstrip()
        if data[:4] == b"PAR1":
            kind = "parquet"
        elif data[:6] == b"ARROW1" or data[:4] == b"\xff\xff\xff\xff":
            kind = "ipc"
        elif head[:1] in (b"{", b"["):
            lines = [line for line in data.splitlines() if line.strip()]
            kind = "ndjson" if head[:1] == b"{" and len(lines) > 1 else "json"
        else:
            kind = "csv"
    suffix = {"parquet": ".parquet", "ipc": ".arrow", "csv": ".csv"}.get(kind, f".{kind}")
    with tempfile.NamedTemporaryFile(prefix="execctx-stdin-", suffix=suffix, delete=False) as f:
        f.write(data)
    return Path(f.name), kind


def read_for_inference(source: str | Path, kind: str, sample_size: int) -> tuple[Any, int | None]:
    """Open ``source`` for :func:`infer_schema` without reading more than it needs.

    Returns the object to infer from and, for NDJSON files (sampled here, by line), the total
    row count. Parquet, CSV, NDJSON globs and URLs are scanned lazily; Arrow IPC files are
    memory-mapped.
    """
    import polars as pl
    import pyarrow as pa

    text = str(source)
    where = f"`{text}`"
    many = not _is_url(text) and (any(c in _GLOB for c in text) or Path(text).is_dir())
    if _is_url(text) or many:
        target: Any = _files(text) if many else text
        hive = many and Path(text).is_dir()
        try:
            if kind == "parquet":
                return pl.scan_parquet(target, hive_partitioning=hive or None), None
            if kind == "csv":
                return pl.scan_csv(target, infer_schema_length=10_000), None
            if kind == "ndjson":
                return pl.scan_ndjson(target), None
            if kind == "ipc":
                return pl.scan_ipc(target, hive_partitioning=hive or None), None
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise unreadable(kind, exc, where) from exc
        raise SchemaInferenceError(
            f"Cannot read several {kind} documents at once - at {where}; use NDJSON (one"
            " document per line) for globs, directories and URLs, or name one file"
        )
    path = Path(text)
    if not path.is_file():
        raise SchemaInferenceError(
            f"Cannot read {path}: expected an existing file, a glob, a directory, a URL or -"
            f" (stdin), got nothing - at {where}"
        )
    try:
        return _read_file(path, kind, sample_size, where)
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise unreadable(kind, exc, where) from exc


def read_all(source: str, kind: str) -> Any:
    """Every row of ``source`` (for ``execctx validate``): a LazyFrame where Polars scans the
    format, JSON documents decoded whole."""
    import msgspec
    import polars as pl

    if kind == "ndjson" and not _is_url(source):
        many = any(c in _GLOB for c in source) or Path(source).is_dir()
        try:
            return pl.scan_ndjson(_files(source) if many else source)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise unreadable(kind, exc, f"`{source}`") from exc
    if kind == "json":
        try:
            return msgspec.json.decode(Path(source).read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise unreadable(kind, exc, f"`{source}`") from exc
    obj, _ = read_for_inference(source, kind, 0)
    return obj


def _read_file(path: Path, kind: str, sample_size: int, where: str) -> tuple[Any, int | None]:
    import msgspec
    import polars as pl
    import pyarrow as pa

    from execctx_nb.inference._sample import even_indices

    if kind == "parquet":
        return pl.scan_parquet(path), None
    if kind == "csv":
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        return pl.scan_csv(path, separator=sep, infer_schema_length=10_000), None
    if kind == "ipc":
        source = pa.memory_map(str(path))
        try:
            return pa.ipc.open_file(source).read_all(), None
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_stream(source), None
    data = path.read_bytes()
    if kind == "ndjson":
        # line numbers kept so a bad row can be pointed at in the file
        lines = [(no, line) for no, line in enumerate(data.splitlines(), 1) if line.strip()]
        rows = []
        for i in even_indices(len(lines), sample_size):
            no, line = lines[i]
            try:
                rows.append(msgspec.json.decode(line))
            except (msgspec.DecodeError, RecursionError) as exc:
                raise unreadable(kind, exc, f"{where} line {no}") from exc
        return rows, len(lines)
    if kind == "json":
        try:
            return msgspec.json.decode(data), None
        except RecursionError as exc:
            raise unreadable(kind, exc, where) from exc
        except msgspec.DecodeError as exc:
            hint = (
                "; one JSON value per line is NDJSON: pass --format ndjson"
                if "trailing characters" in str(exc)
                else ""
            )
            raise unreadable(kind, exc, where, hint) from exc
    raise SchemaInferenceError(
        f"Unknown format `{kind}`: expected one of parquet, ipc, csv, ndjson, json - at {where}"
    )


def unreadable(kind: str, exc: BaseException, where: str, hint: str = "") -> SchemaInferenceError:
    """The error for a file that is not what its format says (``where``: the file, quoted)."""
    detail = " ".join(str(exc).split())  # one line: readers' messages span several
    if isinstance(exc, RecursionError):
        detail = "nested too deeply to read"
    return SchemaInferenceError(
        f"Cannot read {kind} file: expected a readable {kind} file, got "
        f"{type(exc).__name__}: {detail[:300]} - at {where}"
        f"{hint or '; check the file, or pass --format if its suffix is misleading'}"
    )
