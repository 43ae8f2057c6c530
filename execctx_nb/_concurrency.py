"""The few things sync and async code do differently, each in both forms.

The async modules (the sources) call the ``async_*`` form; ``scripts/unasync.py`` strips the
prefix, so their generated sync twins call the plain form. Nothing else differs between a
module and its twin, so a behaviour is written once.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from execctx_nb._log import LoggerLike

__all__ = [
    "async_call_handler",
    "async_run_blocking",
    "async_shielded",
    "async_stop_on_signals",
    "async_wait_stop",
    "call_handler",
    "run_blocking",
    "shielded",
    "stop_on_signals",
    "wait_stop",
]

T = TypeVar("T")


async def async_run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (Parquet, object-store transfers) in a worker thread."""
    return await asyncio.to_thread(fn, *args)


def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work in the calling thread."""
    return fn(*args)


async def async_shielded(work: Awaitable[T]) -> T:
    """Finish ``work`` even if the task is cancelled meanwhile (recording finished work)."""
    return await asyncio.shield(work)


def shielded(value: T) -> T:
    """Sync code is not cancelled mid-call: the work already ran."""
    return value


async def async_wait_stop(stop: asyncio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``stop``; True when it is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout)
    return stop.is_set()


def wait_stop(stop: threading.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``stop``; True when it is set."""
    return stop.wait(timeout)


async def async_call_handler(handler: Callable[..., object], *args: Any) -> None:
    """Call a handler that may be a plain function or a coroutine function."""
    result = handler(*args)
    if inspect.isawaitable(result):
        await result


def call_handler(handler: Callable[..., object], *args: Any) -> None:
    """Call a plain handler."""
    handler(*args)


def _stopping(sig: int, log: LoggerLike) -> None:
    name = signal.Signals(sig).name
    log.info("Event subscriber: got %s, stopping after the in-flight batch", name)


@contextlib.asynccontextmanager
async def async_stop_on_signals(stop: asyncio.Event, log: LoggerLike) -> AsyncIterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while inside; only in the main thread (else a no-op)."""
    loop = asyncio.get_running_loop()
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(sig: int) -> None:
        _stopping(sig, log)
        stop.set()

    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no add_signal_handler
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, log: LoggerLike) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while inside; only in the main thread (else a no-op).

    A second SIGINT while stopping raises KeyboardInterrupt, as Python does by default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        _stopping(signum, log)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
