"""The ``execctx`` console script.

Subcommands are registered in :data:`COMMANDS` (name -> (add_arguments, run)), so another
module can add one without touching :func:`main`'s parsing::

    execctx infer data.parquet            # schema and its hash as JSON
    execctx infer rows.ndjson --hash-only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from execctx_nb.errors import ExecctxError, SchemaInferenceError

__all__ = ["COMMANDS", "build_parser", "main", "read_for_inference"]

#: name -> (help, add_arguments(parser), run(args) -> exit code)
COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}

_SUFFIXES = {
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


def _detect(path: Path, given: str) -> str:
    if given != "auto":
        return given
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise SchemaInferenceError(
            f"Unknown file type `{path.suffix or path.name}`: expected one of "
            f"{', '.join(sorted(_SUFFIXES))} - at `{path}`; pass --format to say which it is"
        )
    return kind


def read_for_inference(path: Path, kind: str, sample_size: int) -> tuple[Any, int | None]:
    """Open ``path`` for :func:`infer_schema` without reading more than it needs.

    Returns the object to infer from and, for NDJSON (sampled here, by line), the total
    row count. Parquet and CSV are scanned lazily; Arrow IPC files are memory-mapped.
    """
    import msgspec
    import polars as pl
    import pyarrow as pa

    from execctx_nb.inference._sample import even_indices

    where = f"`{path}`"
    if not path.is_file():
        raise SchemaInferenceError(
            f"Cannot read {path}: expected an existing file, got "
            f"{'a directory' if path.is_dir() else 'nothing'} - at {where}"
        )
    try:
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
                    raise _unreadable(kind, exc, f"{where} line {no}") from exc
            return rows, len(lines)
        if kind == "json":
            try:
                return msgspec.json.decode(data), None
            except RecursionError as exc:
                raise _unreadable(kind, exc, where) from exc
            except msgspec.DecodeError as exc:
                hint = (
                    "; one JSON value per line is NDJSON: pass --format ndjson"
                    if "trailing characters" in str(exc)
                    else ""
                )
                raise _unreadable(kind, exc, where, hint) from exc
    except (OSError, pl.exceptions.PolarsError, pa.ArrowException) as exc:
        raise _unreadable(kind, exc, where) from exc
    raise SchemaInferenceError(
        f"Unknown format `{kind}`: expected one of parquet, ipc, csv, ndjson, json - at {where}"
    )


def _unreadable(kind: str, exc: BaseException, where: str, hint: str = "") -> SchemaInferenceError:
    """The error for a file that is not what its format says (``where``: the file, quoted)."""
    detail = " ".join(str(exc).split())  # one line: readers' messages span several
    if isinstance(exc, RecursionError):
        detail = "nested too deeply to read"
    return SchemaInferenceError(
        f"Cannot read {kind} file: expected a readable {kind} file, got "
        f"{type(exc).__name__}: {detail[:300]} - at {where}"
        f"{hint or '; check the file, or pass --format if its suffix is misleading'}"
    )


def _infer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="Parquet, Arrow IPC/Feather, CSV, NDJSON or JSON")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", "parquet", "ipc", "csv", "ndjson", "json"],
        help="file format (default: from the suffix)",
    )
    parser.add_argument("--sample-size", type=int, default=200, help="rows sampled (200)")
    parser.add_argument("--max-depth", type=int, default=8, help="nesting levels walked (8)")
    parser.add_argument("--hash-only", action="store_true", help="print only the schema hash")
    parser.add_argument("--compact", action="store_true", help="one-line JSON output")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    # A damaged file can make Polars' Rust reader panic; the panic hook writes a report to
    # file descriptor 2 before Python sees a PanicException. The CLI says what happened in
    # one line of its own, so fd 2 is set aside while files are read (what Python itself
    # writes to sys.stderr meanwhile is kept).
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _infer_file(path: Path, kind: str, args: argparse.Namespace) -> Any:
    from execctx_nb.inference import infer_schema
    from execctx_nb.inference._infer import make_options, schema_from_rows

    obj, total = read_for_inference(path, kind, args.sample_size)
    if total is not None:  # NDJSON: already sampled by line
        opts = make_options(sample_size=args.sample_size, max_depth=args.max_depth)
        return schema_from_rows(obj, total, opts)
    try:
        return infer_schema(obj, sample_size=args.sample_size, max_depth=args.max_depth)
    except SchemaInferenceError as exc:
        # Parquet and CSV scans are lazy: a broken file only shows once infer_schema
        # reads it, where the path is unknown. Name the file instead of the object.
        if exc.__cause__ is None:
            raise
        raise _unreadable(kind, exc.__cause__, f"`{path}`") from exc.__cause__


def _guarded_infer(path: Path, kind: str, args: argparse.Namespace) -> Any:
    try:
        with _quiet_stderr():
            return _infer_file(path, kind, args)
    except (KeyboardInterrupt, SystemExit, MemoryError, ExecctxError):
        raise
    except BaseException as exc:  # a Rust panic (PanicException) or a reader's own error
        raise _unreadable(kind, exc, f"`{path}`") from exc


def _isolated(fn: Callable[[Path, str, argparse.Namespace], Any], path: Path, kind: str,
              args: argparse.Namespace) -> Any:  # fmt: skip
    """``fn(path, kind, args)`` in a forked child when that is safe, else in this process.

    A damaged file can do worse than make a native reader panic: Polars aborts the whole
    process when a corrupt page header asks it to allocate exabytes. Run as a command
    (one thread, no Polars loaded yet) the CLI forks, the child reads the file and sends
    back the schema (JSON), and a crash ends only the child: it is reported as one line.
    Called in a process that has threads or has loaded Polars (a test, a notebook), a
    fork is not safe, and the file is read here.
    """
    if not hasattr(os, "fork") or threading.active_count() > 1 or "polars" in sys.modules:
        return fn(path, kind, args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        try:
            result = ["ok", fn(path, kind, args)]
        except ExecctxError as exc:
            result = ["error", str(exc)]
        except BaseException as exc:
            result = ["error", str(_unreadable(kind, exc, f"`{path}`"))]
        with os.fdopen(write_end, "wb") as sink:
            sink.write(json.dumps(result, ensure_ascii=False).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        reply = source.read()
    _, status = os.waitpid(pid, 0)
    if not reply:
        how = (
            f"signal {signal.Signals(os.WTERMSIG(status)).name}"
            if os.WIFSIGNALED(status)
            else f"exit status {os.waitstatus_to_exitcode(status)}"
        )
        raise SchemaInferenceError(
            f"Cannot read {kind} file: the reader crashed ({how}) - at `{path}`; the file is"
            " damaged: check it, or pass --format if its suffix is misleading"
        )
    outcome, value = json.loads(reply)
    if outcome != "ok":
        raise SchemaInferenceError(value)
    return value


def _infer_run(args: argparse.Namespace) -> int:
    from execctx_nb.inference import schema_hash

    path: Path = args.path
    kind = _detect(path, args.format)
    schema = _isolated(_guarded_infer, path, kind, args)
    digest = schema_hash(schema)
    if args.hash_only:
        print(digest)
    else:
        out = {"schemaHash": digest, "schema": schema}
        print(json.dumps(out, ensure_ascii=False, indent=None if args.compact else 2))
    return 0


COMMANDS["infer"] = (
    "infer a JSON Schema from a data file and print it with its hash",
    _infer_arguments,
    _infer_run,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="execctx", description="Explore a workflow engine's execution context."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(sp)
        sp.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``execctx``; returns the exit code (2: bad usage or input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ExecctxError as exc:
        message = " ".join(str(exc).split())
        print(f"execctx {args.command}: error: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
