"""The cold tier: large step outputs as Parquet objects in an object store (obstore).

A local directory by default; ``s3://``, ``gs://``, ``az://`` (and ``file://``) URLs go
through ``obstore.store.from_url`` with credentials from the environment. Frames keep
their exact dtypes: a Polars frame is written by Polars (which records its own dtypes,
including Enum and Categorical), an Arrow table by pyarrow (which stores the Arrow
schema); a key-value entry ``execctx.frame`` says which reader gives the frame back.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from execctx_nb._frames import data_kind
from execctx_nb._records import DataRef
from execctx_nb._store._progress import watched, working
from execctx_nb.errors import ColdTierError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["PROGRESS_MIN_BYTES", "ColdTier", "default_cold_location"]

PROGRESS_MIN_BYTES = 8 * 1024 * 1024
"""Transfers this large go in chunks with a byte-exact bar; smaller ones get a bar only if
they take longer than a second (see :mod:`execctx_nb._store._progress`)."""
"""Transfers at least this large show a progress bar (in notebooks only)."""
_CHUNK = 8 * 1024 * 1024
_FRAME_KEY = b"execctx.frame"


def default_cold_location(data_dir: str | os.PathLike[str] | None = None) -> str:
    """``$EXECCTX_COLD_STORE``, else ``{data_dir}/cold``, else ``~/.cache/execctx_nb/cold``."""
    env = os.environ.get("EXECCTX_COLD_STORE")
    if env:
        return env
    if data_dir is not None:
        return str(Path(data_dir).expanduser().resolve() / "cold")
    return str(Path.home() / ".cache" / "execctx_nb" / "cold")


def _in_notebook() -> bool:
    # Progress bars belong in notebooks; in scripts and tests they would be noise on stderr.
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and hasattr(shell, "kernel")


class ColdTier:
    """Parquet objects under one object-store location.

    Parameters
    ----------
    location
        A local directory path, a ``file://`` / ``s3://`` / ``gs://`` / ``az://`` URL, or
        an obstore store object.
    """

    def __init__(self, location: str | os.PathLike[str] | Any, *, timeout: float = 2.0) -> None:
        import obstore.store

        self._store: Any
        self._root: Path | None = None  # set for a local directory: reads take a fast path
        if isinstance(location, str | os.PathLike) and "://" not in str(location):
            root = Path(location).expanduser().resolve()
            try:
                self._store = obstore.store.LocalStore(root, mkdir=True)
            except Exception as exc:  # obstore raises its own and builtin errors
                raise ColdTierError(
                    f"Cannot use {str(root)!r} as the cold tier: {exc} - at `cold_store`;"
                    " pass a writable directory or an object-store URL"
                ) from exc
            self.base_url = root.as_uri().rstrip("/") + "/"
            self._root = root
        elif isinstance(location, str):
            try:
                # Every request is bounded by the store's timeout, retries included: a put
                # with the endpoint down fails within it instead of obstore's 2.7-3.4 s.
                from_url: Any = obstore.store.from_url  # options typed per backend
                self._store = from_url(
                    location,
                    client_options=_client_options(timeout),
                    retry_config={
                        "max_retries": 1,
                        "retry_timeout": dt.timedelta(seconds=timeout),
                        "backoff": {
                            "init_backoff": dt.timedelta(milliseconds=50),
                            "max_backoff": dt.timedelta(seconds=timeout / 4),
                            "base": 2,
                        },
                    },
                )
            except Exception as exc:
                raise ColdTierError(
                    f"Cannot open cold tier {location!r}: {exc} - at `cold_store`; expected a"
                    " directory or an s3://, gs://, az:// or file:// URL with credentials in"
                    " the environment"
                ) from exc
            self.base_url = location.rstrip("/") + "/"
        else:
            store: Any = location
            self._store = store
            self.base_url = portable_base(store)
            if type(store).__name__ == "LocalStore" and store.prefix is not None:
                self._root = Path(str(store.prefix))

    def __repr__(self) -> str:
        return f"ColdTier({self.base_url!r})"

    def uri(self, path: str) -> str:
        """The URI recorded in a DataRef for ``path``."""
        return self.base_url + path

    def names(self, uri: str, path: str) -> bool:
        """Whether a recorded ``uri`` names the object at ``path`` of this cold tier.

        Exactly this tier's URI, or any URL ending in ``/`` + ``path`` (another engine, or
        this bucket opened another way: ``s3://bucket/prefix/...`` against a store object
        or an endpoint URL). Safe because ``path`` is built from the envelope's own tenant,
        execution, step and attempt, and the object is always read from this tier at
        ``path``, never from where the URI points.
        """
        if uri == self.uri(path):
            return True
        scheme, sep, rest = uri.partition("://")
        return bool(sep) and scheme.isalnum() and rest.endswith("/" + path)

    def size(self, path: str) -> int | None:
        """The size of the object at ``path`` in bytes (a stat or HEAD); None when absent."""
        import obstore

        try:
            if self._root is not None:
                return (self._root / path).stat().st_size
            return int(obstore.head(self._store, path)["size"])
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise ColdTierError(f"Could not read {self.uri(path)!r}: {exc}") from exc

    # -- bytes --------------------------------------------------------------------------
    def put_bytes(self, path: str, payload: bytes | memoryview) -> None:
        import obstore

        size = len(payload)
        show = watched(_in_notebook())
        try:
            if size >= PROGRESS_MIN_BYTES and show:
                obstore.put(
                    self._store, path, self._chunks(payload, f"upload {path}"), chunk_size=_CHUNK
                )
            else:
                with working(f"upload {path}", size, show=show) as done:
                    obstore.put(self._store, path, payload)
                    done(size)
        except Exception as exc:
            raise ColdTierError(
                f"Could not write {self.uri(path)!r} ({size} bytes): {exc}"
            ) from exc

    def stage(self, staging: str | None, payload: bytes | memoryview) -> tuple[str | None, str]:
        """Start storing ``payload``, whose final name is its sha256: ``(staged, sha256)``.

        In a local directory the bytes are written under ``staging`` while the sha256 is
        computed (both release the GIL), then :meth:`commit` renames the file. Elsewhere a
        rename is a copy, so the hash comes first and :meth:`commit` uploads.
        """
        if self._root is None or staging is None:
            return None, hashlib.sha256(payload).hexdigest()
        upload = _executor().submit(self.put_bytes, staging, payload)
        digest = hashlib.sha256(payload).hexdigest()
        upload.result()
        return staging, digest

    def commit(self, staged: str | None, path: str, payload: bytes | memoryview) -> None:
        """Finish what :meth:`stage` began: the object is at ``path`` afterwards."""
        import obstore

        if staged is None:
            self.put_bytes(path, payload)
            return
        try:
            obstore.rename(self._store, staged, path)
        except Exception as exc:
            raise ColdTierError(f"Could not write {self.uri(path)!r}: {exc}") from exc

    def discard(self, staged: str | None) -> None:
        """Drop a staged upload that will not be committed (absent is fine)."""
        if staged is not None:
            self.delete(staged)

    def get_bytes(self, path: str, *, missing: str | None = None) -> bytes:
        """The object at ``path``; ``missing`` replaces the explanation when it is absent."""
        import obstore

        try:
            result = obstore.get(self._store, path)
            size = int(result.meta["size"])
            show = watched(_in_notebook())
            if size >= PROGRESS_MIN_BYTES and show:
                return self._collect(result, size, f"download {path}")
            with working(f"download {path}", size, show=show) as done:
                data = bytes(result.bytes())
                done(size)
            return data
        except FileNotFoundError as exc:
            raise ColdTierError(
                missing
                or (
                    f"Cold object {self.uri(path)!r} is missing: the envelope references data that"
                    " was deleted or never written - delete the step or restore the object"
                )
            ) from exc
        except Exception as exc:
            raise ColdTierError(f"Could not read {self.uri(path)!r}: {exc}") from exc

    def list_paths(self, prefix: str) -> list[str]:
        import obstore

        try:
            return [
                str(meta["path"])
                for batch in obstore.list(self._store, prefix=prefix)
                for meta in batch
            ]
        except Exception as exc:
            raise ColdTierError(f"Could not list {self.uri(prefix)!r}: {exc}") from exc

    def delete(self, path: str) -> None:
        """Delete the object at ``path`` (absent is fine)."""
        import obstore

        try:
            obstore.delete(self._store, path)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise ColdTierError(f"Could not delete {self.uri(path)!r}: {exc}") from exc

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix``; return how many."""
        import obstore

        paths = self.list_paths(prefix)
        try:
            for path in paths:
                obstore.delete(self._store, path)
        except Exception as exc:
            raise ColdTierError(f"Could not delete under {self.uri(prefix)!r}: {exc}") from exc
        return len(paths)

    @staticmethod
    def _chunks(payload: bytes | memoryview, label: str) -> Iterator[bytes]:
        from tqdm.auto import tqdm

        view = memoryview(payload)
        with tqdm(total=len(view), unit="B", unit_scale=True, desc=label, leave=False) as bar:
            for start in range(0, len(view), _CHUNK):
                chunk = bytes(view[start : start + _CHUNK])
                bar.update(len(chunk))
                yield chunk

    @staticmethod
    def _collect(result: Any, size: int, label: str) -> bytes:
        from tqdm.auto import tqdm

        buffer = bytearray()
        with tqdm(total=size, unit="B", unit_scale=True, desc=label, leave=False) as bar:
            for chunk in result.stream(min_chunk_size=_CHUNK):
                buffer += chunk
                bar.update(len(chunk))
        return bytes(buffer)

    # -- frames -------------------------------------------------------------------------
    def read_frame(self, ref: DataRef, path: str, *, where: str, decode: bool = True) -> Any:
        """Load the frame ``ref`` points to, which must be the object at ``path``.

        The reference is input read back from Valkey, so it is checked before anything is
        read: it must name exactly ``path`` (the object :mod:`execctx_nb.keys` builds for
        the envelope's own tenant, execution, step and attempt), the object must have the
        referenced size, and its Parquet footer the referenced row count (a small object
        that decodes to millions of rows is refused before it is materialised). The sha256
        is computed in a worker thread while the Parquet is decoded (both release the GIL).
        A local directory is read by path (memory-mapped by Polars), not through a copy.
        """
        expected = self.uri(path)
        if not self.names(ref.uri, path):
            raise ColdTierError(
                f"The envelope at `{where}` references {ref.uri!r}, not the object of its own"
                f" tenant, execution, step and attempt ({expected!r}) - nothing was read; the"
                " reference was altered or written for another store: rewrite the step"
            )
        # Messages name the object read (this tier's), not where another engine put it.
        ref = msgspec.structs.replace(ref, uri=expected)
        size = self.size(path)
        if size is None:
            raise ColdTierError(
                f"Cold object {ref.uri!r} is missing: the envelope at `{where}` references data"
                " that was deleted or never written - delete the step or restore the object"
            )
        if size != ref.bytes:
            raise _mismatch(ref, where, "size")
        source: bytes | Path
        if self._root is not None:
            local = source = self._root / path
            digest_job = _executor().submit(_file_digest, local)
        else:
            payload = source = self.get_bytes(path)
            digest_job = _executor().submit(_bytes_digest, payload)
        try:
            rows = parquet_rows(source, where=ref.uri)
            if ref.row_count is not None and rows != ref.row_count:
                raise _mismatch(ref, where, "row count")
            frame = None
            if decode:
                label, show = f"decode {path.rsplit('/', 3)[-3]}", watched(_in_notebook())
                with working(label, ref.bytes, show=show) as done:
                    frame = decode_parquet(source, where=ref.uri)
                    done(ref.bytes)
        except ColdTierError:
            self._verify(ref, where, *digest_job.result())  # a damaged object: say so first
            raise
        self._verify(ref, where, *digest_job.result())
        if not decode:
            import polars as pl

            # Checked whole (size, row count, sha256) before the scan is handed out; the
            # plan reads the same file (local) or the verified bytes (remote).
            scan_source = io.BytesIO(source) if isinstance(source, bytes) else source
            return pl.scan_parquet(scan_source)
        return frame

    def scan_frame(self, ref: DataRef, path: str, *, where: str) -> Any:
        """A Polars LazyFrame over the object ``ref`` points to, after the checks of
        :meth:`read_frame` (the object is hashed, not decoded)."""
        return self.read_frame(ref, path, where=where, decode=False)

    @staticmethod
    def _verify(ref: DataRef, where: str, size: int, digest: str) -> None:
        if size != ref.bytes or digest != ref.sha256:
            raise _mismatch(ref, where, "sha256")


def _client_options(timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "timeout": f"{timeout}s",
        "connect_timeout": f"{min(timeout, 1.0)}s",
    }
    # Client options given here replace those obstore reads from the environment; keep the
    # one a local S3-compatible endpoint needs (the rest of the config still comes from it).
    if any(
        os.environ.get(name, "").lower() in ("1", "true")
        for name in ("AWS_ALLOW_HTTP", "ALLOW_HTTP", "GOOGLE_ALLOW_HTTP", "AZURE_ALLOW_HTTP")
    ):
        options["allow_http"] = True
    return options


def portable_base(store: Any) -> str:
    """The URL prefix another engine can resolve for an obstore store object
    (``s3://bucket/prefix/``, ``gs://``, ``az://``, ``file://``)."""
    kind = type(store).__name__
    prefix = str(getattr(store, "prefix", None) or "").strip("/")
    config = getattr(store, "config", None) or {}
    if kind == "LocalStore":
        return Path(prefix or "/").as_uri().rstrip("/") + "/"
    bucket = {
        "S3Store": ("s3", config.get("bucket")),
        "GCSStore": ("gs", config.get("bucket")),
        "AzureStore": ("az", config.get("container_name")),
    }.get(kind)
    if bucket is not None and bucket[1]:
        base = f"{bucket[0]}://{bucket[1]}/" + (f"{prefix}/" if prefix else "")
        return base
    return f"obstore:{kind}/" + (f"{prefix}/" if prefix else "")


def _mismatch(ref: DataRef, where: str, what: str) -> ColdTierError:
    # Never the object's real size or hash: they would help forge a matching reference.
    return ColdTierError(
        f"Cold object {ref.uri!r} does not match the reference of the envelope at `{where}`"
        f" ({what} differs) - it was altered or overwritten; rewrite the step"
    )


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="execctx-cold")


def _bytes_digest(payload: bytes) -> tuple[int, str]:
    return len(payload), hashlib.sha256(payload).hexdigest()


def _file_digest(path: Path) -> tuple[int, str]:
    try:
        with path.open("rb") as handle:
            return os.fstat(handle.fileno()).st_size, hashlib.file_digest(
                handle, "sha256"
            ).hexdigest()
    except OSError as exc:
        raise ColdTierError(f"Could not read {path.as_uri()!r}: {exc}") from exc


def encode_parquet(frame: Any) -> tuple[memoryview, int]:
    """Parquet bytes (a view, not a copy) and row count; Polars and Arrow keep exact dtypes."""
    kind = data_kind(frame)
    sink = io.BytesIO()
    if kind == "lazy":
        # Streaming: Polars runs the plan batch by batch into the Parquet writer; the frame
        # is never held whole in memory (the compressed file is).
        frame.sink_parquet(sink, metadata={_FRAME_KEY.decode(): "polars"})
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(io.BytesIO(sink.getbuffer())).metadata.num_rows
        return sink.getbuffer(), int(rows)
    if kind is None:  # JSON rows: read every row, so a key first seen late is kept
        import polars as pl

        rows = frame if isinstance(frame, list) else [frame]
        frame, kind = pl.DataFrame(rows, infer_schema_length=None, strict=False), "polars"
    if kind == "polars":
        frame.write_parquet(sink, metadata={_FRAME_KEY.decode(): "polars"})
        return sink.getbuffer(), int(frame.height)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = frame
    assert isinstance(table, pa.Table)
    metadata = dict(table.schema.metadata or {})
    metadata[_FRAME_KEY] = b"arrow"
    # Non-compliant nested types keep the list item field names the caller chose ("item").
    pq.write_table(
        table.replace_schema_metadata(metadata),
        sink,
        compression="zstd",
        use_compliant_nested_type=False,
    )
    return sink.getbuffer(), int(table.num_rows)


def _untrusted_read(fn: Any, where: str) -> Any:
    """Run a Parquet read of untrusted bytes; any failure, a Rust panic too, is ColdTierError.

    Polars and pyarrow raise many kinds of error on damaged files, and a Rust ``panic``
    surfaces as ``PanicException``, a BaseException: none may escape a reader.
    """
    import polars as pl
    import pyarrow as pa

    try:
        return fn()
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except (OSError, ValueError, pa.ArrowException, pl.exceptions.PolarsError) as exc:
        raise ColdTierError(f"Cold object {where!r} is not readable Parquet: {exc}") from exc
    except BaseException as exc:  # e.g. pyo3's PanicException
        raise ColdTierError(
            f"Cold object {where!r} is not readable Parquet: the reader failed"
            f" ({type(exc).__name__}: {exc})"
        ) from exc


def parquet_rows(source: bytes | Path, *, where: str) -> int:
    """The row count a Parquet object's footer declares (the data pages are not read)."""
    import polars as pl

    def read() -> int:
        # Polars answers a bare row count from the footer (and reads footers pyarrow cannot,
        # such as 128-bit integer columns).
        scan = pl.scan_parquet(io.BytesIO(source) if isinstance(source, bytes) else source)
        return int(scan.select(pl.len()).collect().item())

    rows: int = _untrusted_read(read, where)
    return rows


def decode_parquet(source: bytes | Path, *, where: str) -> Any:
    """A Polars DataFrame or an Arrow Table, as it was written (from bytes or a local file)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    def polars_source() -> Any:
        return io.BytesIO(source) if isinstance(source, bytes) else source

    def read() -> Any:
        # Polars reads the footer of any file, pyarrow not (Int128 columns, for one).
        meta = pl.read_parquet_metadata(polars_source())
        kv = {k.encode(): v.encode() for k, v in meta.items()}
        if kv.get(_FRAME_KEY) == b"polars":
            return pl.read_parquet(polars_source())
        table = pq.read_table(pa.BufferReader(source) if isinstance(source, bytes) else source)
        original = kv.get(b"ARROW:schema")
        if original is not None:
            # Parquet renames map entry fields; the Arrow schema stored beside it is exact.
            schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(original)))
            if str(table.schema) != str(schema):  # equals() ignores nested field names
                table = table.cast(schema)
        metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != _FRAME_KEY}
        return table.replace_schema_metadata(metadata or None)

    return _untrusted_read(read, where)
