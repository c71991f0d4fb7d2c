"""What the service tells its views: a small synchronous event bus.

Callbacks run on the thread that emits (the service's background thread); a
callback that raises is logged and never breaks the service or other views.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .records import GenerationRecord

__all__ = ["EventBus", "EventKind", "ServiceEvent"]

EventKind = Literal["created", "progress", "completed", "failed", "updated", "deleted", "log"]
_log = logging.getLogger("soranb.events")


@dataclass(frozen=True)
class ServiceEvent:
    kind: EventKind
    record: GenerationRecord | None = None
    message: str = ""


class EventBus:
    """Subscribers get every event; `subscribe` returns the function that unsubscribes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[ServiceEvent], None]] = []

    def subscribe(self, callback: Callable[[ServiceEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: ServiceEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken view must not stop the poller
                _log.exception("event subscriber %r failed on %s", callback, event.kind)
