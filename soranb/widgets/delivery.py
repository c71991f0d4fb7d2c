"""Delivery: the one hand-off from the service thread (and timers) to the thread that owns the views.

Service events arrive on the service's own thread. ipywidgets expects widget state to
change where the kernel runs its observers: the kernel's event loop, on its main thread.
A view built in a kernel cell therefore hands every event to that loop with
`call_soon_threadsafe`, as ipywidgets' "asynchronous widgets" guide does; outside a kernel
(plain Python, tests) all views share one worker thread running its own loop. Either way:
one thread applies every change, in the order it was handed over, and no thread is
started per event or per timer.

In a kernel, a cell that blocks (`service.wait(...)`) holds that loop: the views catch up
when it ends, while the service itself keeps polling on its own thread. A cell that
awaits (`await service.wait_all_async()`) keeps them live.

While the views' thread is busy, many progress events for one job can pile up; `call_latest`
keeps only the newest one still waiting under its key, in its true place (after everything handed
over before it), so a long blocking cell ends with one update per card, not one per tick.

A handler that raises is logged and reported (`on_error`, e.g. an error toast); later
events still arrive. `close()` stops delivery: nothing queued or timed runs afterwards.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["Delivery", "Later", "kernel_loop", "worker_loop"]

_log = logging.getLogger("soranb.widgets")
_worker_lock = threading.Lock()
_worker: asyncio.AbstractEventLoop | None = None


def kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The Jupyter kernel's event loop when called on its thread (a cell, a widget callback); else None."""
    kernelbase = sys.modules.get("ipykernel.kernelbase")
    if kernelbase is None or not kernelbase.Kernel.initialized():
        return None
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # a thread of its own inside the kernel: not the kernel's loop
        return None


def worker_loop() -> asyncio.AbstractEventLoop:
    """The one loop, on one daemon thread, that runs every view's changes outside a kernel."""
    global _worker
    with _worker_lock:
        if _worker is None or _worker.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="soranb-views", daemon=True).start()
            _worker = loop
        return _worker


@dataclasses.dataclass(eq=False)
class _Item:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    key: Hashable | None = None
    dropped: bool = False  # a newer item under the same key came before this one ran


class Later:
    """A timed call that can be cancelled from any thread (it then never runs)."""

    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Delivery:
    """One view's queue of work for the views' thread: run in order, errors reported, stopped by `close`.

    `loop`: where to run; by default the kernel's loop when built on it, else the shared worker.
    `on_error(exc)`: told about a handler that raised (after it is logged).
    """

    def __init__(
        self,
        on_error: Callable[[BaseException], object] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.loop = loop or kernel_loop() or worker_loop()
        self.on_error = on_error
        self._lock = threading.Lock()
        self._queue: collections.deque[_Item] = collections.deque()
        self._waiting: dict[Hashable, _Item] = {}  # key -> its item still in the queue (`call_latest`)
        self._scheduled = False
        self._closed = False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the views' thread after everything handed over before it (any thread)."""
        self._hand_over(_Item(fn, args))

    def call_latest(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> None:
        """As `call`, and an item handed over earlier under the same `key` that has not run yet is dropped."""
        self._hand_over(_Item(fn, args, key))

    def _hand_over(self, item: _Item) -> None:
        with self._lock:
            if self._closed:
                return
            if item.key is not None:
                older = self._waiting.pop(item.key, None)
                if older is not None:
                    older.dropped = True
                self._waiting[item.key] = item
            self._queue.append(item)
            if self._scheduled:  # a drain is already on its way: it will take this one too
                return
            self._scheduled = True
        try:
            self.loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed (its kernel is gone): nothing can show it any more
            self.close()

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> Later:
        """Run `fn(*args)` on the views' thread after `delay` seconds, unless cancelled or closed first."""
        later = Later()

        def fire() -> None:
            if not later.cancelled:
                self.call(fn, *args)

        try:
            self.loop.call_soon_threadsafe(self.loop.call_later, delay, fire)
        except RuntimeError:
            later.cancel()
        return later

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed over so far has run (plain Python and tests; never on the views' thread)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            raise RuntimeError("flush() on the views' own thread would wait for itself; in a kernel, await instead")
        done = threading.Event()
        self.call(done.set)
        return self._closed or done.wait(timeout)

    def close(self) -> None:
        """Stop: queued work is dropped, later hand-offs and timers do nothing."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._waiting.clear()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:  # `close` empties it: nothing queued runs after that
                    self._scheduled = False
                    return
                item = self._queue.popleft()
                if item.key is not None and self._waiting.get(item.key) is item:
                    del self._waiting[item.key]
            if not item.dropped:
                self._run(item.fn, item.args)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:
            _log.exception("soranb view update %s failed", getattr(fn, "__name__", fn))
            if self.on_error is not None:
                try:
                    self.on_error(exc)
                except Exception:
                    _log.exception("reporting a failed view update failed")
