"""Run one test table against both APIs: the sync objects, and their async twins driven here.

The async twin of a store or subscriber lives on one event loop in a background thread
(:func:`loop`); :class:`Blocking` forwards every call to it and waits for the result, so a
test written once against the sync API exercises the async code too, on the same real
server. Nothing is faked: the coroutines run for real, on the loop their connections
belong to.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import execctx_nb as ec

__all__ = [
    "APIS",
    "Blocking",
    "async_subscriber",
    "close_all",
    "loop",
    "run_loop_until",
    "store_for",
]

APIS = ["sync", "async"]


@functools.cache
def loop() -> asyncio.AbstractEventLoop:
    """The event loop of the async twins, running in a daemon thread for the session."""
    running = asyncio.new_event_loop()
    threading.Thread(target=running.run_forever, name="twins-loop", daemon=True).start()
    return running


def _wait(awaitable: Any) -> Any:
    async def main() -> Any:
        return await awaitable

    return asyncio.run_coroutine_threadsafe(main(), loop()).result(60)


class Blocking:
    """A sync view of an async object: calls that return awaitables are awaited on the loop."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        if name == "close":
            name = "aclose"
        value = getattr(self._target, name)
        if name == "client":
            return Blocking(value)
        if not callable(value) or isinstance(value, type):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            result = value(*args, **kwargs)
            if inspect.isawaitable(result):
                result = _wait(result)
            if isinstance(result, ec.AsyncExecutionContextStore):
                return Blocking(result)
            return result

        return call

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        _wait(self._target.aclose())

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


def store_for(api: str, url: str, **settings: Any) -> Any:
    """An open store of ``api`` ("sync" or "async") on ``url``."""
    if api == "sync":
        return ec.create_valkey_execution_context_store(url, **settings)

    async def make() -> ec.AsyncExecutionContextStore:
        # Created on the loop: its connections belong to it.
        return ec.create_async_valkey_execution_context_store(url, **settings)

    return Blocking(_wait(make()))


class _BlockingSubscriber(Blocking):
    def run_loop(
        self,
        target: Any,
        handler: Callable[..., object],
        *,
        stop: threading.Event | None = None,
        **kwargs: Any,
    ) -> Any:
        async def main() -> Any:
            # The async loop takes an asyncio.Event: bridge the test's threading.Event to it.
            astop = asyncio.Event()

            async def watch() -> None:
                while stop is None or not stop.is_set():
                    await asyncio.sleep(0.01)
                astop.set()

            watcher = asyncio.create_task(watch())
            try:
                return await self._target.run_loop(target, handler, stop=astop, **kwargs)
            finally:
                watcher.cancel()

        return asyncio.run_coroutine_threadsafe(main(), loop()).result()


_OPEN: list[Any] = []


# Subscriber settings for tests: entries idle 300 ms are reclaimed, checked every 100 ms;
# no signal handlers (pytest owns them).
FAST_RECLAIM: dict[str, Any] = {
    "min_idle_ms": 300,
    "lease_ms": 300,
    "claim_interval_s": 0.1,
    "handle_signals": False,
}


def async_subscriber(url: str, **options: Any) -> Any:
    """An async subscriber on ``url`` (owning its client), driven like the sync one.

    Close what this made with :func:`close_all` (asyncio warns about sockets left open).
    """

    async def make() -> Any:
        return ec.AsyncExecutionEventSubscriber(url=url, **options)

    sub = _wait(make())
    _OPEN.append(sub)
    return _BlockingSubscriber(sub)


def close_all() -> None:
    """Close every async twin :func:`async_subscriber` made."""
    while _OPEN:
        _wait(_OPEN.pop().aclose())


def run_loop_until(
    sub: Any, tenant: Any, handler: Callable[..., object], until: Callable[[], bool],
    timeout: float = 10.0, **loop_kwargs: Any,
) -> None:  # fmt: skip
    """Run ``sub.run_loop`` in a thread until ``until()`` holds, then stop it; fail on timeout
    or if the loop died (it must outlive whatever the test does to it). ``loop_kwargs`` go to
    ``run_loop`` (``block_ms`` defaults to 50)."""
    import time

    stop = threading.Event()
    kwargs = {"stop": stop, "block_ms": 50, **loop_kwargs}
    runner = threading.Thread(target=sub.run_loop, args=(tenant, handler), kwargs=kwargs)
    runner.start()
    end = time.monotonic() + timeout
    try:
        while not until():
            assert runner.is_alive(), "run_loop died"
            assert time.monotonic() < end, "condition not reached in time"
            time.sleep(0.02)
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive(), "run_loop did not return after stop"
