"""The ``%execctx`` line magic: one magic, subcommands routed to library functions.

Load it with ``%load_ext execctx_nb``; ``%execctx?`` shows the help (the docstring of
:meth:`ExecctxMagics.execctx`). Bad input raises IPython's ``UsageError``: one red line,
no traceback.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser

from execctx_nb._events._records import EVENT_KINDS
from execctx_nb._records import ExecutionScope, StepEnvelope
from execctx_nb.errors import ExecctxError

if TYPE_CHECKING:
    from execctx_nb._store._sync import ExecutionContextStore

__all__ = ["ExecctxMagics", "load_ipython_extension", "shift_assign"]

_HELP = """Explore execution contexts: %execctx SUBCOMMAND ARGS

Subcommands
-----------
connect [URL]                      use URL (default: $VALKEY_URL, else an embedded server)
infer VAR                          infer the JSON Schema of a variable (frame, rows, dict)
tenants                            the tenants with stored executions
executions TENANT [--last N]       a tenant's executions, newest first: status, started,
                                   duration, steps, failed steps, retries (a DataFrame)
steps TENANT EXEC                  the steps table of an execution
history TENANT STEP [--last N]     one step over the last N executions: rows, bytes,
                                   elapsed, schema hash, where the schema changed
load TENANT EXEC STEP [--attempt N]
                                   a step's data as a Polars DataFrame
schema TENANT EXEC STEP [--attempt N]
                                   a step's schema as a collapsible tree
diff TENANT STEP OLD_EXEC NEW_EXEC [--new-step STEP]
                                   how a step's schema changed between executions
lineage TENANT EXEC [--static] [--direction LR|TB]
                                   the step DAG (live widget; --static: SVG only;
                                   TB: layers top to bottom)
validate VAR [TENANT EXEC STEP] [--schema VAR]
                                   check every row of a frame against a stored step's
                                   schema (or the schema in VAR): a report, worst first
groups TENANT [--live]             the stream's consumer groups: pending, lag, idle
                                   consumers, dead letters (--live: a StreamMonitor)
tail TENANT [--kind KIND ...] [--execution EXEC] [--replay] [--max N]
                                   live event tail (replaces an earlier tail of TENANT)
tail --stop                        stop every running tail

Assign a result with  df = %execctx load acme run-1 clean  or  df << %execctx load ...

Examples
--------
%load_ext execctx_nb
%execctx connect
%execctx executions acme
%execctx steps acme orders-2024-05-01
df << %execctx load acme orders-2024-05-01 clean
%execctx diff acme ingest_orders orders-2024-05-01 orders-2024-05-02
%execctx tail acme --kind step.failed
"""


def _positive_int(text: str) -> int:
    """argparse type for counts: a bad value becomes a one-line UsageError, not a traceback."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return value


def _parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(prog="%execctx", description="see %execctx?")  # type: ignore[no-untyped-call]
    sub = parser.add_subparsers(
        dest="command", metavar="SUBCOMMAND", parser_class=MagicArgumentParser
    )
    p = sub.add_parser("connect")
    p.add_argument("url", nargs="?")
    p = sub.add_parser("infer")
    p.add_argument("var")
    sub.add_parser("tenants")
    p = sub.add_parser("executions")
    p.add_argument("tenant")
    p.add_argument("--last", type=_positive_int, default=50)
    p = sub.add_parser("history")
    p.add_argument("tenant")
    p.add_argument("step")
    p.add_argument("--last", type=_positive_int, default=20)
    p = sub.add_parser("steps")
    p.add_argument("tenant")
    p.add_argument("execution")
    for name in ("load", "schema"):
        p = sub.add_parser(name)
        p.add_argument("tenant")
        p.add_argument("execution")
        p.add_argument("step")
        p.add_argument("--attempt", type=int)
    p = sub.add_parser("diff")
    p.add_argument("tenant")
    p.add_argument("step")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--new-step")
    p = sub.add_parser("validate")
    p.add_argument("var")
    p.add_argument("where", nargs="*", metavar="TENANT EXEC STEP")
    p.add_argument("--schema")
    p = sub.add_parser("lineage")
    p.add_argument("tenant")
    p.add_argument("execution")
    p.add_argument("--static", action="store_true")
    p.add_argument("--direction", choices=("LR", "TB"), default="LR")
    p = sub.add_parser("groups")
    p.add_argument("tenant")
    p.add_argument("--live", action="store_true")
    p = sub.add_parser("tail")
    p.add_argument("tenant", nargs="?")
    # Both `--kind a b` (as the help reads) and `--kind a --kind b`.
    p.add_argument("--kind", action="extend", nargs="+", choices=EVENT_KINDS, default=None)
    p.add_argument("--execution")
    p.add_argument("--replay", action="store_true")
    p.add_argument("--max", type=_positive_int, default=200)
    p.add_argument("--stop", action="store_true")
    return parser


@magics_class
class ExecctxMagics(Magics):
    """Holds the connection of this IPython session and routes ``%execctx`` subcommands."""

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self.store: ExecutionContextStore | None = None
        self._url: str | None = None  # what `%execctx connect` was given
        self._parser = _parser()

    # -- helpers ------------------------------------------------------------------------
    def _store(self) -> ExecutionContextStore:
        from execctx_nb._store._session import connect

        # connect() lends a handle on the kernel's shared store: a cell's
        # `with execctx_nb.connect() as store:` closes its own handle, never this one. A new
        # handle is needed only after execctx_nb.disconnect() closed the store for good.
        if self.store is None or self.store.closed:
            self.store = connect(self._url)
        return self.store

    def _envelope(
        self, tenant: str, execution: str, step: str, attempt: int | None
    ) -> StepEnvelope:
        scope = ExecutionScope(tenant, execution)
        store = self._store()
        env = store.get_step(scope, step, attempt)
        if env is None:
            which = f" attempt {attempt}" if attempt is not None else ""
            steps = store.list_steps(scope)
            if not steps:
                known = store.list_executions(tenant)
                raise UsageError(
                    f"No execution `{execution}` for tenant `{tenant}`"
                    + (
                        _did_you_mean(execution, known)
                        or _did_you_mean(tenant, self._known_tenants())
                    )
                )
            raise UsageError(
                f"No step `{step}`{which} in execution `{execution}` of tenant `{tenant}`"
                + (
                    _did_you_mean(step, steps)
                    or f": `%execctx steps {tenant} {execution}` lists its steps"
                )
            )
        return env

    # -- subcommands --------------------------------------------------------------------
    def _connect(self, a: argparse.Namespace) -> Any:
        from execctx_nb._store._session import connect
        from execctx_nb.errors import StoreError

        try:
            store = connect(a.url)
            # Probe now: a store is lazy, and a notebook user who typed a wrong host or port
            # should hear it here, not at the next subcommand (nor see health='healthy').
            store.check_health()
        except StoreError as exc:  # a malformed URL, or nothing answering at it
            raise UsageError(f"Cannot connect: {exc}") from None
        self.store, self._url = store, a.url
        return store

    def _infer(self, a: argparse.Namespace) -> Any:
        from execctx_nb.display import SchemaView
        from execctx_nb.inference import infer_schema, schema_hash

        user_ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        if a.var not in user_ns:
            raise UsageError(f"No variable `{a.var}` in this notebook: expected a defined name")
        schema = infer_schema(user_ns[a.var])
        return SchemaView(schema, title=a.var, schema_hash=schema_hash(schema))

    def _groups(self, a: argparse.Namespace) -> Any:
        from execctx_nb._events._groups import group_status

        if a.live:
            from execctx_nb.widgets import StreamMonitor

            return StreamMonitor(a.tenant, store=self._store())
        return group_status(a.tenant, store=self._store())

    def _tenants(self, a: argparse.Namespace) -> Any:
        return self._store().list_tenants()

    def _executions(self, a: argparse.Namespace) -> Any:
        from execctx_nb._overview import executions_frame

        frame = executions_frame(self._store(), a.tenant, a.last)
        if frame.is_empty():
            raise UsageError(
                f"No executions stored for tenant `{a.tenant}`"
                + _did_you_mean(a.tenant, self._known_tenants())
            )
        return frame

    def _history(self, a: argparse.Namespace) -> Any:
        from execctx_nb._overview import step_history
        from execctx_nb.display import StepHistoryView

        frame = step_history(self._store(), a.tenant, a.step, a.last)
        if frame.is_empty():
            steps = self._known_steps(a.tenant)
            hint = _did_you_mean(a.step, steps) or (
                f": `%execctx executions {a.tenant}` lists its executions"
            )
            raise UsageError(f"No step `{a.step}` in any execution of `{a.tenant}`{hint}")
        return StepHistoryView(frame, a.tenant, a.step)

    def _known_tenants(self) -> list[str]:
        try:
            return self._store().list_tenants()
        except ExecctxError:  # an ACL that cannot scan: no suggestion
            return []

    def _known_steps(self, tenant: str) -> list[str]:
        store = self._store()
        recent = store.recent_executions(tenant, 5)
        return sorted({s for e, _ in recent for s in store.list_steps(ExecutionScope(tenant, e))})

    def _steps(self, a: argparse.Namespace) -> Any:
        from execctx_nb.display import ExecutionView

        # The steps table shows metadata: no cold-tier data is read.
        envs = self._store().get_execution(ExecutionScope(a.tenant, a.execution), data=False)
        if not envs:
            raise UsageError(
                f"No execution `{a.execution}` for tenant `{a.tenant}`:"
                f" `%execctx executions {a.tenant}` lists them"
            )
        return ExecutionView(envs, a.execution, a.tenant)

    def _load(self, a: argparse.Namespace) -> Any:
        return self._envelope(a.tenant, a.execution, a.step, a.attempt).to_polars()

    def _schema(self, a: argparse.Namespace) -> Any:
        from execctx_nb.display import SchemaView

        env = self._envelope(a.tenant, a.execution, a.step, a.attempt)
        if env.schema is None:
            raise UsageError(f"Step `{a.step}` of `{a.execution}` carries no schema")
        return SchemaView(env.schema, title=a.step, schema_hash=env.schema_hash)

    def _diff(self, a: argparse.Namespace) -> Any:
        from execctx_nb.display import SchemaDiffView
        from execctx_nb.inference import schema_diff

        old = self._envelope(a.tenant, a.old, a.step, None)
        new = self._envelope(a.tenant, a.new, a.new_step or a.step, None)
        if old.schema is None or new.schema is None:
            raise UsageError(f"Step `{a.step}` carries no schema in one of the two executions")
        return SchemaDiffView(
            schema_diff(old.schema, new.schema),
            title=a.step if not a.new_step else f"{a.step} -> {a.new_step}",
            old_label=a.old,
            new_label=a.new,
            old_schema=old.schema,
            new_schema=new.schema,
        )

    def _validate(self, a: argparse.Namespace) -> Any:
        from execctx_nb.contracts import validate

        user_ns: dict[str, Any] = self.shell.user_ns if self.shell is not None else {}
        for name in (a.var, a.schema):
            if name is not None and name not in user_ns:
                raise UsageError(f"No variable `{name}` in this notebook: expected a defined name")
        if a.schema is not None:
            schema = user_ns[a.schema]
        elif len(a.where) == 3:
            tenant, execution, step = a.where
            env = self._envelope(tenant, execution, step, None)
            if env.schema is None:
                raise UsageError(f"Step `{a.where[2]}` of `{a.where[1]}` carries no schema")
            schema = env.schema
        else:
            raise UsageError(
                "Expected TENANT EXEC STEP or --schema VAR\n"
                "usage: %execctx validate var [TENANT EXEC STEP] [--schema VAR]"
            )
        return validate(user_ns[a.var], schema)

    def _lineage(self, a: argparse.Namespace) -> Any:
        store = self._store()
        scope = ExecutionScope(a.tenant, a.execution)
        if not store.list_steps(scope):
            raise UsageError(
                f"No execution `{a.execution}` for tenant `{a.tenant}`:"
                f" `%execctx executions {a.tenant}` lists them"
            )
        if a.static:  # a picture: no widget library needed
            from execctx_nb.display import LineageView

            return LineageView(
                store.get_execution(scope, data=False), a.execution, a.tenant, a.direction
            )
        from execctx_nb.widgets import LineageGraph

        return LineageGraph(a.tenant, a.execution, store=store, live=True, direction=a.direction)

    def _tail(self, a: argparse.Namespace) -> Any:
        from execctx_nb.widgets import EventTail

        if a.stop:
            if a.tenant:
                raise UsageError("`%execctx tail --stop` stops every tail: give no tenant")
            n = EventTail.stop_all()
            print(f"Stopped {n} tail{'' if n == 1 else 's'}.")
            return None
        if not a.tenant:
            raise UsageError(
                "Expected a tenant: `%execctx tail TENANT` (or `%execctx tail --stop`)"
            )
        return EventTail(
            a.tenant,
            store=self._store(),
            kinds=a.kind,
            execution_id=a.execution,
            max_events=a.max,
            from_id="0" if a.replay else "$",
        )

    @line_magic
    def execctx(self, line: str) -> Any:
        if not line.strip():
            raise UsageError("Expected a subcommand; `%execctx?` lists them")
        words = line.split()
        commands = _subcommands(self._parser)
        if not words[0].startswith("-") and words[0] not in commands:
            raise UsageError(
                f"Unknown subcommand `{words[0]}`"
                + (_did_you_mean(words[0], list(commands)) or "; `%execctx?` lists them")
            )
        try:
            args = self._parser.parse_argstring(line)  # type: ignore[no-untyped-call]
        except UsageError as exc:
            sub = commands.get(words[0])
            usage = sub.format_usage().replace("%%", "%").split(maxsplit=1)[-1] if sub else ""
            usage = f"\nusage: {' '.join(usage.split())}" if usage else ""
            raise UsageError(f"{exc}{usage}") from None
        if args.command is None:
            raise UsageError("Expected a subcommand; `%execctx?` lists them")
        try:
            return getattr(self, f"_{args.command}")(args)
        except ExecctxError as exc:
            if isinstance(exc, ValueError):  # bad ids and tenants: the input, not the system
                raise UsageError(str(exc)) from None
            raise

    execctx.__doc__ = _HELP


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _did_you_mean(word: str, known: list[str]) -> str:
    """``: did you mean `acme`?`` for the closest known names, or ""."""
    import difflib

    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    if not close:
        return ""
    return ": did you mean " + " or ".join(f"`{c}`" for c in close) + "?"


_SHIFT_RE = re.compile(r"^(\s*)([A-Za-z_][\w.]*)\s*<<\s*(%execctx\b.*)$")


def shift_assign(lines: list[str]) -> list[str]:
    """Input transformer: ``df << %execctx load ...`` becomes ``df = %execctx load ...``.

    >>> shift_assign(["df << %execctx load acme r1 clean\\n"])
    ['df = %execctx load acme r1 clean\\n']
    """
    return [_SHIFT_RE.sub(r"\1\2 = \3", line) for line in lines]


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%execctx`` and the ``<<`` assignment form on an IPython shell."""
    ipython.register_magics(ExecctxMagics)
    if shift_assign not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(shift_assign)
