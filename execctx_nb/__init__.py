"""execctx_nb: explore a workflow engine's execution context from Jupyter.

The table of contents:

- records: :class:`StepEnvelope`, :class:`StepMetadata`, :class:`ExecutionScope`,
  :class:`LineageEntry`, the event kinds (:mod:`execctx_nb.events`)
- keys: :mod:`execctx_nb.keys` builds every Valkey key and object-store path
- :func:`idempotency_key`
- event stream: :class:`ExecutionEventPublisher`, :class:`ExecutionEventSubscriber`,
  :class:`AsyncExecutionEventSubscriber`, :class:`EventMeta`, :func:`tail`; consumer groups:
  :func:`group_status` (:class:`StreamStatus`), :func:`replay_dead_letter`,
  :func:`remove_consumer`
- inference: :func:`infer_schema`, :func:`schema_hash`, :func:`merge_schemas`,
  :func:`schema_diff` (:class:`SchemaDiff`), namespace :mod:`execctx_nb.inference`;
  :func:`schema_to_polars` / :func:`schema_to_arrow` (JSON Schema to dtypes);
  contracts: :func:`validate` (whole frames against a schema, :class:`ValidationReport`)
- errors: :class:`ExecctxError` and its tree (:mod:`execctx_nb.errors`)
- notebooks: :mod:`execctx_nb.display` (rich displays), :mod:`execctx_nb.widgets`
  (``EventTail``, ``LineageGraph``; imported on use), :mod:`execctx_nb.demo` (a demo flow),
  ``%load_ext execctx_nb`` for the ``%execctx`` magic (:mod:`execctx_nb.magics`)
"""

from __future__ import annotations

from execctx_nb import demo, display, errors, events, inference, keys
from execctx_nb._connection._health import HealthState
from execctx_nb._dtypes import schema_to_arrow, schema_to_polars
from execctx_nb._events._async_subscriber import AsyncExecutionEventSubscriber
from execctx_nb._events._core import EventMeta
from execctx_nb._events._groups import (
    StreamStatus,
    group_status,
    remove_consumer,
    replay_dead_letter,
)
from execctx_nb._events._publisher import ExecutionEventPublisher
from execctx_nb._events._subscriber import ExecutionEventSubscriber
from execctx_nb._events._tail import TailEntry, tail
from execctx_nb._idempotency import idempotency_key
from execctx_nb._overview import executions_frame, step_history
from execctx_nb._records import DataRef, ExecutionScope, LineageEntry, StepEnvelope, StepMetadata
from execctx_nb._store._async import (
    AsyncExecutionContextStore,
    create_async_valkey_execution_context_store,
)
from execctx_nb._store._common import Lease
from execctx_nb._store._session import connect, disconnect
from execctx_nb._store._sync import (
    ExecutionContextStore,
    create_valkey_execution_context_store,
)
from execctx_nb._version import __version__
from execctx_nb.contracts import ValidationReport, validate
from execctx_nb.errors import (
    EnvelopeDecodeError,
    ExecctxError,
    InvalidKeyError,
    InvalidTenantError,
    StoreUnavailableError,
)
from execctx_nb.inference import (
    SchemaDiff,
    infer_schema,
    merge_schemas,
    schema_diff,
    schema_hash,
)


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext execctx_nb``: register the ``%execctx`` magic (IPython imported only now)."""
    from execctx_nb.magics import load_ipython_extension as load

    load(ipython)


__all__ = [
    "AsyncExecutionContextStore",
    "AsyncExecutionEventSubscriber",
    "DataRef",
    "EnvelopeDecodeError",
    "EventMeta",
    "ExecctxError",
    "ExecutionContextStore",
    "ExecutionEventPublisher",
    "ExecutionEventSubscriber",
    "ExecutionScope",
    "HealthState",
    "InvalidKeyError",
    "InvalidTenantError",
    "Lease",
    "LineageEntry",
    "SchemaDiff",
    "StepEnvelope",
    "StepMetadata",
    "StoreUnavailableError",
    "StreamStatus",
    "TailEntry",
    "ValidationReport",
    "__version__",
    "connect",
    "create_async_valkey_execution_context_store",
    "create_valkey_execution_context_store",
    "demo",
    "disconnect",
    "display",
    "errors",
    "events",
    "executions_frame",
    "group_status",
    "idempotency_key",
    "infer_schema",
    "inference",
    "keys",
    "load_ipython_extension",
    "merge_schemas",
    "remove_consumer",
    "replay_dead_letter",
    "schema_diff",
    "schema_hash",
    "schema_to_arrow",
    "schema_to_polars",
    "step_history",
    "tail",
    "validate",
]
