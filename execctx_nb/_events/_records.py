"""Execution events: a tagged union on ``kind``.

Every event carries ``kind``, ``executionId``, ``attempt`` and ``ts`` (RFC 3339, UTC) plus the
fields of its kind. Unknown fields are ignored on decode so newer engines can add fields.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from execctx_nb import keys
from execctx_nb._records import Attempt, SchemaHash, _decode
from execctx_nb.errors import EnvelopeDecodeError

__all__ = [
    "EVENT_KINDS",
    "Event",
    "ExecutionLog",
    "ExecutionStatus",
    "StepCommitted",
    "StepFailed",
    "decode_event",
    "encode_event",
    "event_from_dict",
]

NonNegInt = Annotated[int, msgspec.Meta(ge=0)]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Event(msgspec.Struct, frozen=True, kw_only=True, rename="camel", tag_field="kind"):
    execution_id: str
    attempt: Attempt = 0
    ts: dt.datetime = msgspec.field(default_factory=_now)

    def __post_init__(self) -> None:
        keys.validate_id(self.execution_id, kind="execution id", where="event.executionId")
        keys.validate_attempt(self.attempt, where="event.attempt")  # constraints: decode only
        step = getattr(self, "step_id", None)
        if step is not None:
            keys.validate_id(step, kind="step id", where="event.stepId")

    @property
    def kind(self) -> str:
        """The wire ``kind`` of this event."""
        return str(self.__struct_config__.tag)

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Decode any event kind; raise EnvelopeDecodeError naming the bad path."""
        return decode_event(text)

    def to_json(self) -> bytes:
        """Encode to the wire (compact JSON, camelCase, ``kind`` first)."""
        return encode_event(self)  # type: ignore[arg-type]


class StepCommitted(_Event, frozen=True, kw_only=True, tag="step.committed"):
    """A step's envelope was written."""

    step_id: str
    schema_hash: SchemaHash | None = None
    row_count: NonNegInt | None = None
    bytes: NonNegInt | None = None
    elapsed_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None


class StepFailed(_Event, frozen=True, kw_only=True, tag="step.failed"):
    """A step attempt failed; ``retryable`` says whether the engine will try again."""

    step_id: str
    error: str
    retryable: bool = False


class ExecutionStatus(_Event, frozen=True, kw_only=True, tag="execution.status"):
    """An execution changed state."""

    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    flow_id: str | None = None


class ExecutionLog(_Event, frozen=True, kw_only=True, tag="execution.log"):
    """A log line of an execution (optionally of one step)."""

    message: str
    level: Literal["debug", "info", "warning", "error"] = "info"
    step_id: str | None = None


Event: TypeAlias = StepCommitted | StepFailed | ExecutionStatus | ExecutionLog
EVENT_KINDS: tuple[str, ...] = (
    "step.committed",
    "step.failed",
    "execution.status",
    "execution.log",
)

_ENCODER = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """Encode an event to wire JSON."""
    return _ENCODER.encode(event)


def decode_event(text: str | bytes | bytearray | memoryview, *, where: str | None = None) -> Event:
    """Decode wire JSON into the event record its ``kind`` names."""
    result: Event = _decode(Event, text, "execution event", where)  # type: ignore[arg-type]
    return result


def event_from_dict(value: Event | dict[str, Any]) -> Event:
    """Accept an event record or its camelCase wire dict; validate it the same way as JSON."""
    if isinstance(value, StepCommitted | StepFailed | ExecutionStatus | ExecutionLog):
        return value
    if not isinstance(value, dict):
        raise EnvelopeDecodeError(
            f"Expected an event record or a wire dict, got {type(value).__name__}"
        )
    try:
        result: Event = msgspec.convert(value, Event)
    except msgspec.ValidationError as exc:
        raise EnvelopeDecodeError(f"Invalid execution event: {exc}") from exc
    return result
