"""The ``execctx`` console script.

Subcommands are registered in :data:`COMMANDS` (name -> (add_arguments, run)), so another
module can add one without touching :func:`main`'s parsing::

    execctx infer data.parquet            # schema and its hash as JSON
    execctx infer rows.ndjson --hash-only
    execctx infer 'logs/*.ndjson'         # a glob; a hive directory; s3://...; - (stdin)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from execctx_nb._cli_input import SUFFIXES, detect, read_for_inference, spool_stdin, unreadable
from execctx_nb.errors import ExecctxError, SchemaInferenceError

__all__ = ["COMMANDS", "build_parser", "main", "read_for_inference"]

#: name -> (help, add_arguments(parser), run(args) -> exit code)
COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {}


def _infer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        help="a Parquet, Arrow IPC/Feather, CSV, NDJSON or JSON file; a glob ('logs/*.ndjson');"
        " a directory (hive partitions: year=2026/...); an s3://, gs://, az:// or https:// URL;"
        " or - for standard input",
    )
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


def _infer_file(path: str, kind: str, args: argparse.Namespace) -> Any:
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
        raise unreadable(kind, exc.__cause__, f"`{path}`") from exc.__cause__


def _guarded_infer(path: str, kind: str, args: argparse.Namespace) -> Any:
    try:
        with _quiet_stderr():
            return _infer_file(path, kind, args)
    except (KeyboardInterrupt, SystemExit, MemoryError, ExecctxError):
        raise
    except BaseException as exc:  # a Rust panic (PanicException) or a reader's own error
        raise unreadable(kind, exc, f"`{path}`") from exc


def _isolated(fn: Callable[[str, str, argparse.Namespace], Any], path: str, kind: str,
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
            result = ["error", str(unreadable(kind, exc, f"`{path}`"))]
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

    spooled = None
    if args.path == "-":
        spooled, kind = spool_stdin(args.format)
        path = str(spooled)
    else:
        path, kind = args.path, detect(args.path, args.format)
    try:
        schema = _isolated(_guarded_infer, path, kind, args)
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
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


def _validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="a data file, glob, directory or URL (as for infer)")
    parser.add_argument(
        "schema", help="a JSON Schema file (or the output of `execctx infer`: its `schema`)"
    )
    parser.add_argument(
        "--format", default="auto", choices=["auto", *sorted(set(SUFFIXES.values()))]
    )


def _validate_run(args: argparse.Namespace) -> int:
    """Exit 0 when every row is valid, 1 with one line per failing path, 2 on bad input."""
    import msgspec

    from execctx_nb._cli_input import read_all
    from execctx_nb.contracts import validate

    try:
        loaded = msgspec.json.decode(pathlib.Path(args.schema).read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise SchemaInferenceError(
            f"Cannot read the schema: expected a JSON file, got {type(exc).__name__}: {exc}"
            f" - at `{args.schema}`"
        ) from exc
    schema = (
        loaded.get("schema", loaded)
        if isinstance(loaded, dict) and "schemaHash" in loaded
        else loaded
    )
    data = read_all(args.data, detect(args.data, args.format))
    report = validate(data, schema)
    if report.ok:
        print(f"valid: {report.rows:,} rows")
        return 0
    print(f"invalid: {len(report.invalid_rows):,} of {report.rows:,} rows")
    for line in report.summary_lines():
        print(line)
    return 1


COMMANDS["validate"] = (
    "check every row of a data file against a JSON Schema (exit 1 on violations)",
    _validate_arguments,
    _validate_run,
)


def build_parser() -> argparse.ArgumentParser:
    from execctx_nb._version import __version__

    parser = argparse.ArgumentParser(
        prog="execctx", description="Explore a workflow engine's execution context."
    )
    parser.add_argument("--version", action="version", version=f"execctx {__version__}")
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
