"""What the service tells its views: a small synchronous event bus.

Callbacks run on the thread that emits (the service's background thread); a
callback that raises is logged and never breaks the service or other views.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from .records import GenerationRecord

__all__ = ["EventBus", "EventKind", "ServiceEvent", "Subscribers"]

T = TypeVar("T")

EventKind = Literal["created", "progress", "completed", "failed", "updated", "deleted", "log"]
_log = logging.getLogger("soranb.events")


@dataclass(frozen=True)
class ServiceEvent:
    kind: EventKind
    record: GenerationRecord | None = None
    message: str = ""


class Subscribers(Generic[T]):
    """Callbacks that each get every item emitted; `subscribe` returns the function that unsubscribes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[T], None]] = []

    def subscribe(self, callback: Callable[[T], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def emit(self, item: T) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(item)
            except Exception:  # a broken view must not stop the poller
                _log.exception("subscriber %r failed on %r", callback, item)


EventBus = Subscribers[ServiceEvent]
