"""Execution event records (a tagged union on ``kind``) and their wire codec.

>>> from execctx_nb.events import StepCommitted, decode_event
>>> ev = StepCommitted(execution_id="run-1", step_id="clean")
>>> decode_event(ev.to_json()).kind
'step.committed'
"""

from __future__ import annotations

from execctx_nb._events._records import (
    EVENT_KINDS,
    Event,
    ExecutionLog,
    ExecutionStatus,
    StepCommitted,
    StepFailed,
    decode_event,
    encode_event,
    event_from_dict,
)

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
